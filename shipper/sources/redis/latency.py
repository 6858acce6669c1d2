"""LATENCY LATEST: one event per new spike (an event name whose latest timestamp moved).

Cursor ``{run_id, last: {event_name: unix_time}}``: latency series live in memory and restart
with the process, so a new run_id starts from an empty cursor. Redis records nothing while
``latency-monitor-threshold`` is 0 (the default); the source warns once about that (from the
identity read), because an empty LATENCY LATEST would otherwise look like good news.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from parsers.replies import latency_events, parse_latency_latest, unparsed_event

from .client import RedisConnection
from .poll import PollDisabled, PollResult, is_unsupported, now_ms


class LatencyPoller:
    def __init__(self, *, key: str, committed: Any):
        self.key = key
        c = committed if isinstance(committed, dict) else {}
        self.run_id: str | None = c.get("run_id")
        self.last: dict[str, int] = dict(c.get("last") or {})

    def on_identity(self, run_id: str) -> None:
        if self.run_id != run_id:
            if self.run_id is not None:
                self.last = {}
            self.run_id = run_id

    async def poll(self, conn: RedisConnection, *, role: str | None) -> PollResult:
        try:
            reply = await conn.call("LATENCY", "LATEST")
        except ResponseError as e:
            if is_unsupported(e):
                raise PollDisabled(str(e)) from e
            raise
        run_id = self.run_id or ""
        origin = f"redis:{run_id}:latency"
        spikes, bad = parse_latency_latest(reply)
        events, cursor = latency_events(spikes, self.last, origin=origin, run_id=run_id, role=role)
        for item in bad:
            events.append(unparsed_event("latency", item, origin=origin, position=f"bad:{now_ms()}",
                                         timestamp=_now_ts(), source="latency", role=role))
        changed = cursor != self.last
        self.last = cursor
        positions = {self.key: {"run_id": run_id, "last": cursor}} if changed else {}
        return PollResult(events=events, positions=positions, must_persist=bool(events) or changed)


def _now_ts() -> str:
    from parsers.events import format_epoch

    return format_epoch(now_ms() / 1000)
