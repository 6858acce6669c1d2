"""Events about the agent itself (source ``agent``): the one builder every part of the agent uses.

A source that lost its server, a sink that dead-lettered events, a spool that was reset, an audit
anchor: each is an event in the agent's own stream, shipped and audited like a log line, so an
operator reads the agent's troubles next to Redis's. They share one shape (``source="agent"``, a
category, an event name, a level, a message, fields), built here; every name is documented in the
agent-events table of docs/events.md (tests/test_agent_events.py lists the names the code emits and
checks both ways).

The pure parsers of server replies (``parsers/replies/info.py``, ``parsers/cluster_topology.py``)
build their own ``agent`` events with :func:`parsers.events.make_event`: ``parsers`` never imports
``shipper``. Their names are in the same table and checked by the same test.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from parsers.events import Event, format_epoch, make_event

#: the levels of agent events: those of log lines (parsers.events.LEVELS) and ``error``, for state
#: the agent lost (``state_reset``)
Level = Literal["debug", "verbose", "notice", "warning", "error"]
#: parsers.events.CATEGORIES, as a type
Category = Literal["startup", "shutdown", "config", "replication", "failover", "persistence", "cluster",
                   "security", "memory", "crash", "connection", "slowlog", "latency", "other"]


def agent_event(name: str, message: str, *, level: Level = "warning", category: Category = "other",
                at: float | None = None, **fields: Any) -> Event:
    """The agent event ``name`` (documented in docs/events.md), stamped with ``at`` (epoch seconds,
    default now); ``fields`` become its ``fields``. The caller adds ``origin``/``id`` where the event
    needs a stable identity (a data gap read again after a restart is the same event)."""
    return make_event(
        timestamp=format_epoch(time.time() if at is None else at), source="agent", category=category, event=name,
        level=level, message=message, fields=fields,
    )
