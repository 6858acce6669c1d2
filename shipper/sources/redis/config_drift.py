"""CONFIG GET * snapshots, diffed: one ``config_changed`` event per parameter that changed.

The last snapshot is a checkpoint (not scoped by run_id: a change in redis.conf across a
restart is drift too), so changes made while the agent was down are reported at start. Secret
parameters are stored as a salted hash (the salt is random per agent state and kept in the
same checkpoint) and reported as changed, never with their value. The first snapshot ever is
a baseline: it produces no events.
"""

from __future__ import annotations

import secrets
from typing import Any

from parsers.events import format_epoch
from parsers.replies import config_changes, config_snapshot, parse_config_get, unparsed_event

from .client import RedisConnection
from .poll import Poller, PollResult, PollSetup, now_ms, read_or_disable


class ConfigDriftPoller(Poller):
    name = "config"

    def __init__(self, *, key: str, committed: Any, interval: float):
        self.key = key
        self.interval = interval
        c = committed if isinstance(committed, dict) else {}
        self.salt: str = c.get("salt") or secrets.token_hex(16)
        self.values: dict[str, str] | None = c.get("values") if isinstance(c.get("values"), dict) else None
        self.run_id: str | None = None
        #: the last raw values seen (latency-monitor-threshold etc. for other checks); secrets hashed
        self.latest: dict[str, str] = {}

    def on_identity(self, run_id: str) -> None:
        """Drift is not scoped by run: a restart keeps the snapshot (redis.conf edits are drift)."""
        self.run_id = run_id

    async def poll(self, conn: RedisConnection, *, role: str | None) -> PollResult:
        reply = await read_or_disable(conn, "CONFIG", "GET", "*")
        t = now_ms()
        run_id = self.run_id or ""
        origin = f"redis:{conn.address}:config"
        values = parse_config_get(reply)
        if values is None:
            return PollResult(events=[unparsed_event("config", reply, origin=origin, position=f"bad:{t}",
                                                     timestamp=format_epoch(t / 1000), source="config",
                                                     role=role)])
        snap = config_snapshot(values, self.salt)
        self.latest = snap
        if self.values is None:
            self.values = snap
            return PollResult(positions={self.key: {"salt": self.salt, "values": snap}})
        events = config_changes(self.values, snap, origin=origin, run_id=run_id, observed_ms=t, role=role)
        if not events:
            return PollResult(must_persist=False)
        self.values = snap
        return PollResult(events=events, positions={self.key: {"salt": self.salt, "values": snap}})


def build(setup: PollSetup) -> list[Poller]:
    """The CONFIG drift poller of one source (``config:`` in the config)."""
    return [ConfigDriftPoller(key=setup.key("config"), committed=setup.committed("config"),
                              interval=setup.cfg.config.interval)]
