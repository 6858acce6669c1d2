"""Events about the agent itself (source ``agent``): the one builder every part of the agent uses.

A source that lost its server, a sink that dead-lettered events, a spool that was reset, an audit
anchor: each is an event in the agent's own stream, shipped and audited like a log line, so an
operator reads the agent's troubles next to Redis's. They share one shape (``source="agent"``, a
category, an event name, a level, a message, fields), built here.
"""

from __future__ import annotations

import time
from typing import Any

from parsers.events import Event, format_epoch, make_event


def agent_event(event: str, message: str, *, level: str = "warning", category: str = "other",
                at: float | None = None, **fields: Any) -> Event:
    """An event about the agent itself (source ``agent``), stamped with ``at`` (epoch seconds,
    default now)."""
    return make_event(
        timestamp=format_epoch(time.time() if at is None else at), source="agent", category=category, event=event,
        level=level, message=message, fields=fields,
    )

