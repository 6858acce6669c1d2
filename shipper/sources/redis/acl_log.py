"""ACL LOG: new security denials only, never ``ACL LOG RESET``.

7.2+ and Valkey give every entry an ``entry-id`` (and ``timestamp-created``): the cursor is the
last id plus the counts of the entries in the last reply, so an entry that groups new failures
(same reason/context/object/user within 60 s) reports the extra ones. 6.x/7.0 have no id: the
cursor remembers (fingerprint, count, approximate last update) of the last reply, see
``parsers.replies.acl_log_events``. Ids restart with the process, so a new run_id resets it.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from parsers.replies import acl_log_events, parse_acl_log, unparsed_event

from .client import RedisConnection
from .poll import PollDisabled, PollResult, is_unsupported, now_ms

#: ACL LOG <n>: bounded read; acllog-max-len defaults to 128
MAX_READ = 128


class AclLogPoller:
    def __init__(self, *, key: str, committed: Any):
        self.key = key
        c = committed if isinstance(committed, dict) else {}
        self.run_id: str | None = c.get("run_id")
        self.cursor: dict[str, Any] | None = c.get("cursor")
        self.max_len: int | None = None

    def on_identity(self, run_id: str) -> None:
        if self.run_id != run_id:
            if self.run_id is not None:
                self.cursor = None
            self.run_id = run_id

    async def poll(self, conn: RedisConnection, *, role: str | None) -> PollResult:
        count = min(MAX_READ, self.max_len) if self.max_len else MAX_READ
        try:
            reply = await conn.call("ACL", "LOG", max(count, 1))
        except ResponseError as e:
            if is_unsupported(e):
                raise PollDisabled(str(e)) from e
            raise
        run_id = self.run_id or ""
        origin = f"redis:{run_id}:acl"
        entries, bad = parse_acl_log(reply)
        t = now_ms()
        events, cursor = acl_log_events(entries, self.cursor, origin=origin, run_id=run_id, now_ms=t, role=role)
        for item in bad:
            from parsers.events import format_epoch

            events.append(unparsed_event("acl_log", item, origin=origin, position=f"bad:{t}",
                                         timestamp=format_epoch(t / 1000), source="acl", role=role))
        changed = cursor != self.cursor
        self.cursor = cursor
        positions = {self.key: {"run_id": run_id, "cursor": cursor}} if changed else {}
        # the fallback cursor's ages move on every poll: persist it only with events
        return PollResult(events=events, positions=positions, must_persist=bool(events))
