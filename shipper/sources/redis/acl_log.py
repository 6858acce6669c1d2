"""ACL LOG: new security denials only, never ``ACL LOG RESET``.

7.2+ and Valkey give every entry an ``entry-id`` (and ``timestamp-created``): the cursor is the
last id plus the counts of the entries in the last reply, so an entry that groups new failures
(same reason/context/object/user within 60 s) reports the extra ones. 6.x/7.0 have no id: the
cursor remembers (fingerprint, count, approximate last update) of the last reply, see
``parsers.replies.acl_log_events``. Ids restart with the process, so a new run_id resets it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from parsers.events import format_epoch
from parsers.replies import acl_log_events, parse_acl_log, unparsed_event

from .client import RedisConnection
from .poll import Poller, PollResult, PollSetup, now_ms, read_or_disable

#: ACL LOG <n>: bounded read; acllog-max-len defaults to 128
MAX_READ = 128


class AclLogPoller(Poller):
    name = "acl_log"

    def __init__(self, *, key: str, committed: Any, interval: float):
        self.key = key
        self.interval = interval
        c = committed if isinstance(committed, dict) else {}
        self.run_id: str | None = c.get("run_id")
        self.cursor: dict[str, Any] | None = c.get("cursor")
        self.max_len: int | None = None

    def on_identity(self, run_id: str) -> None:
        if self.run_id != run_id:
            if self.run_id is not None:
                self.cursor = None
            self.run_id = run_id

    def on_settings(self, settings: Mapping[str, str | None]) -> None:
        """Read no more than ``acllog-max-len`` entries."""
        acl_len = settings.get("acllog-max-len")
        self.max_len = int(acl_len) if acl_len and acl_len.isdigit() else None

    async def poll(self, conn: RedisConnection, *, role: str | None) -> PollResult:
        count = min(MAX_READ, self.max_len) if self.max_len else MAX_READ
        reply = await read_or_disable(conn, "ACL", "LOG", max(count, 1))
        run_id = self.run_id or ""
        origin = f"redis:{run_id}:acl"
        entries, bad = parse_acl_log(reply)
        t = now_ms()
        events, cursor = acl_log_events(entries, self.cursor, origin=origin, run_id=run_id, now_ms=t, role=role)
        for item in bad:
            events.append(unparsed_event("acl_log", item, origin=origin, position=f"bad:{t}",
                                         timestamp=format_epoch(t / 1000), source="acl", role=role))
        changed = cursor != self.cursor
        self.cursor = cursor
        positions = {self.key: {"run_id": run_id, "cursor": cursor}} if changed else {}
        # the fallback cursor's ages move on every poll: persist it only with events
        return PollResult(events=events, positions=positions, must_persist=bool(events))


def build(setup: PollSetup) -> list[Poller]:
    """The ACL LOG poller of one source (``acl_log:`` in the config)."""
    return [AclLogPoller(key=setup.key("acl_log"), committed=setup.committed("acl_log"),
                         interval=setup.cfg.acl_log.interval)]
