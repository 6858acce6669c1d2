"""LATENCY LATEST: one event per new spike (an event name whose latest timestamp moved).

Cursor ``{run_id, last: {event_name: unix_time}}``: latency series live in memory and restart
with the process, so a new run_id starts from an empty cursor. Redis records nothing while
``latency-monitor-threshold`` is 0 (the default); the source warns once about that (from the
identity read), because an empty LATENCY LATEST would otherwise look like good news.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parsers.events import format_epoch
from parsers.replies import latency_events, parse_latency_latest, unparsed_event

from .client import RedisConnection
from .poll import AgentWarning, Poller, PollResult, PollSetup, now_ms, read_or_disable


class LatencyPoller(Poller):
    name = "latency"

    def __init__(self, *, key: str, committed: Any, interval: float, address: str):
        self.key = key
        self.interval = interval
        self.address = address
        c = committed if isinstance(committed, dict) else {}
        self.run_id: str | None = c.get("run_id")
        self.last: dict[str, int] = dict(c.get("last") or {})

    def on_identity(self, run_id: str) -> None:
        if self.run_id != run_id:
            if self.run_id is not None:
                self.last = {}
            self.run_id = run_id

    def on_settings(self, settings: Mapping[str, str | None]) -> AgentWarning | None:
        if settings.get("latency-monitor-threshold") != "0":
            return None
        return AgentWarning(
            "latency_monitor_disabled",
            f"latency-monitor-threshold is 0 on {self.address}: Redis records no latency "
            "spikes, so none can be shipped (CONFIG SET latency-monitor-threshold 100)",
            category="latency")

    async def poll(self, conn: RedisConnection, *, role: str | None) -> PollResult:
        reply = await read_or_disable(conn, "LATENCY", "LATEST")
        run_id = self.run_id or ""
        origin = f"redis:{run_id}:latency"
        spikes, bad = parse_latency_latest(reply)
        events, cursor = latency_events(spikes, self.last, origin=origin, run_id=run_id, role=role)
        for item in bad:
            events.append(unparsed_event("latency", item, origin=origin, position=f"bad:{now_ms()}",
                                         timestamp=format_epoch(now_ms() / 1000), source="latency", role=role))
        changed = cursor != self.last
        self.last = cursor
        positions = {self.key: {"run_id": run_id, "last": cursor}} if changed else {}
        return PollResult(events=events, positions=positions, must_persist=bool(events) or changed)



def build(setup: PollSetup) -> list[Poller]:
    """The LATENCY LATEST poller of one source (``latency:`` in the config)."""
    return [LatencyPoller(key=setup.key("latency"), committed=setup.committed("latency"),
                          interval=setup.cfg.latency.interval, address=setup.address)]
