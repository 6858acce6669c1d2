"""Valkey 8.1+ ``COMMANDLOG``: the large-request and large-reply logs.

``COMMANDLOG GET <n> slow`` is the same ring as ``SLOWLOG GET`` (Valkey made SLOWLOG an alias of
it), so the slow type is drained once, by slowlog.py, and this module drains the two size-based
types with the same cursor discipline (:class:`~.slowlog.LogDrainer`), one cursor each. Servers
without the command (Redis, Valkey < 8.1) answer "unknown command" on the first poll and the
kind is switched off until the next reconnect, without an event: absence is normal there.
"""

from __future__ import annotations

from typing import Any

from .slowlog import LogDrainer

COMMANDLOG_TYPES = ("large-request", "large-reply")


def make_drainers(
    *, prefix: str, address: str, committed: dict[str, Any], max_entries: int, redact: str, interval: float,
    min_interval: float,
) -> list[LogDrainer]:
    """One drainer per COMMANDLOG type, keyed ``<prefix>commandlog:<type>``."""
    out = []
    for kind in COMMANDLOG_TYPES:
        key = f"{prefix}commandlog:{kind}"
        out.append(LogDrainer(key=key, address=address, committed=committed.get(key), max_entries=max_entries,
                              redact=redact, interval=interval, min_interval=min_interval, kind=kind))
    return out
