"""Valkey 8.1+ ``COMMANDLOG``: the large-request and large-reply logs.

``COMMANDLOG GET <n> slow`` is the same ring as ``SLOWLOG GET`` (Valkey made SLOWLOG an alias of
it), so the slow type is drained once, by slowlog.py, and this module drains the two size-based
types with the same cursor discipline (:class:`~.slowlog.LogDrainer`), one cursor each. Servers
without the command (Redis, Valkey < 8.1) answer "unknown command" on the first poll and the
kind is switched off until the next reconnect, without an event: absence is normal there.
"""

from __future__ import annotations

from .poll import Poller, PollSetup
from .slowlog import LogDrainer

COMMANDLOG_TYPES = ("large-request", "large-reply")


def build(setup: PollSetup) -> list[Poller]:
    """One drainer per COMMANDLOG type, keyed ``<prefix>commandlog:<type>``; they bound and
    redact entries like the slowlog (``slowlog.max_entries``, ``slowlog.redact``)."""
    cfg = setup.cfg
    out: list[Poller] = []
    for kind in COMMANDLOG_TYPES:
        suffix = f"commandlog:{kind}"
        out.append(LogDrainer(key=setup.key(suffix), address=setup.address, committed=setup.committed(suffix),
                              max_entries=cfg.slowlog.max_entries, redact=cfg.slowlog.redact,
                              interval=cfg.commandlog.interval,
                              min_interval=min(cfg.slowlog.min_interval, cfg.commandlog.interval), kind=kind))
    return out
