"""Who is this Redis right now: INFO -> run_id, role, version, port, master; role/restart events.

Every other poll is scoped by the identity: slowlog, latency and ACL LOG ids restart at 0 when
the process restarts (a new ``run_id``), so their cursors are only meaningful for the run_id they
were taken on. The identity is re-read on every new connection (a restart always breaks the
connection) and every ``info.interval`` (to see a failover, which does not).
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from parsers.events import Event
from parsers.replies import identity_from_info, parse_info, restarted_event, role_changed_event

from .client import RedisConnection
from .poll import Poller, PollResult, now_ms

#: the settings read with every identity, handed to each poller's ``on_settings``
SIZING_SETTINGS = ("slowlog-max-len", "latency-monitor-threshold", "acllog-max-len")


async def fetch_identity(conn: RedisConnection) -> tuple[dict[str, Any], dict[str, str | None]]:
    """INFO server + replication, and the few config values the pollers size themselves by.

    Returns (identity, settings) where settings has ``slowlog-max-len``,
    ``latency-monitor-threshold`` and ``acllog-max-len`` (``None`` when CONFIG GET is denied).
    One round trip; INFO sections are asked one by one because Redis < 7 accepts one section.
    """
    replies = await conn.pipeline(
        ("INFO", "server"),
        ("INFO", "replication"),
        *(("CONFIG", "GET", name) for name in SIZING_SETTINGS),
    )
    if isinstance(replies[0], ResponseError):
        raise replies[0]
    info = parse_info(replies[0])
    if not isinstance(replies[1], ResponseError):
        info.update(parse_info(replies[1]))
    ident = identity_from_info(info)
    settings: dict[str, str | None] = {}
    for name, rep in zip(SIZING_SETTINGS, replies[2:], strict=True):
        value = None
        if isinstance(rep, list) and len(rep) >= 2:
            value = rep[1].decode() if isinstance(rep[1], bytes) else str(rep[1])
        settings[name] = value
    return ident, settings


class IdentityTracker:
    """Compares each INFO with the last committed identity; emits role_changed / restarted."""

    def __init__(self, key: str, origin: str, committed: dict[str, Any] | None):
        self.key = key
        self.origin = origin
        self.current: dict[str, Any] | None = dict(committed) if isinstance(committed, dict) else None

    @property
    def run_id(self) -> str:
        return str((self.current or {}).get("run_id") or "")

    @property
    def role(self) -> str | None:
        return (self.current or {}).get("role")

    @property
    def pid(self) -> int | None:
        """The server's process id: slowlog/latency/ACL events carry it, like its log lines do."""
        pid = (self.current or {}).get("process_id")
        return pid if isinstance(pid, int) else None

    def update(self, ident: dict[str, Any]) -> tuple[PollResult, bool]:
        """Fold a fresh identity in. Returns the events/position and whether the run changed."""
        events: list[Event] = []
        old = self.current
        run_changed = old is not None and bool(old.get("run_id")) and old.get("run_id") != ident.get("run_id")
        if old is not None:
            if run_changed:
                events.append(restarted_event(str(old.get("run_id")), ident, origin=self.origin,
                                              observed_ms=now_ms()))
            if old.get("role") and ident.get("role") and old.get("role") != ident.get("role"):
                events.append(role_changed_event(old, ident, origin=self.origin, observed_ms=now_ms()))
            elif (old.get("role") == "replica" == ident.get("role")
                  and (old.get("master_host"), old.get("master_port"))
                  != (ident.get("master_host"), ident.get("master_port"))):
                # a replica re-pointed at another master (the failover happened elsewhere)
                events.append(role_changed_event(old, ident, origin=self.origin, observed_ms=now_ms()))
        stored = {k: ident.get(k) for k in ("run_id", "role", "server", "version", "tcp_port", "process_id",
                                             "master_host", "master_port")}
        changed = stored != {k: (old or {}).get(k) for k in stored}
        self.current = stored
        return PollResult(events=events, positions={self.key: stored} if changed else {},
                          must_persist=changed), run_changed


class IdentityPoller(Poller):
    """The INFO poll: the identity every other poller is scoped by.

    The source runs it on every new connection, before any other poll, and every
    ``info.interval``; after each run it hands :attr:`run_id` to every poller's ``on_identity``
    and :attr:`settings` to their ``on_settings``.
    """

    name = "info"

    def __init__(self, *, key: str, origin: str, committed: Any, interval: float):
        self.key = key
        self.interval = interval
        self.tracker = IdentityTracker(key, origin, committed)
        self.settings: dict[str, str | None] = {}

    @property
    def run_id(self) -> str:
        return self.tracker.run_id

    @property
    def role(self) -> str | None:
        return self.tracker.role

    @property
    def pid(self) -> int | None:
        return self.tracker.pid

    def on_identity(self, run_id: str) -> None:
        """This poller is where the identity comes from: nothing to follow."""

    async def poll(self, conn: RedisConnection, *, role: str | None) -> PollResult:
        identity, self.settings = await fetch_identity(conn)
        result, _run_changed = self.tracker.update(identity)
        return result
