"""SLOWLOG GET drained as a cursor: every entry once, oldest first, losses counted exactly.

The ring is read, never reset (other tools read it too). The cursor is ``(run_id, last_id)``;
ids grow by one per entry within a run, so an oldest returned id above ``last_id + 1`` is an
exact count of entries that left the ring unseen. Work per poll is bounded: a small read sized
by the recent rate first, and the full read (``min(max_entries, slowlog-max-len)``) only when the
small one did not reach the cursor. The interval adapts: when the ring fills faster than it is
read the poller speeds up to ``min_interval``; when it is quiet it relaxes to ``interval``.

The same class drains Valkey's ``COMMANDLOG GET <n> large-request|large-reply`` (see
commandlog.py): same entry shape, same id discipline, one cursor per log type.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from redis.exceptions import ResponseError

from parsers.replies import (
    is_self_entry,
    new_log_entries,
    parse_log_reply,
    slowlog_event,
    slowlog_lost_event,
    slowlog_timestamp,
    unparsed_event,
)
from shipper.observe import metrics

from .client import RedisConnection
from .poll import Poller, PollResult, PollSetup, is_unsupported, now_ms, read_or_disable

#: a checkpoint that only skipped the poller's own entries is still written this often
PERSIST_EVERY_S = 1.0
#: after a storm the poller stays fast for a while: the remembered peak rate halves this often
PEAK_HALF_LIFE_S = 60.0


class LogDrainer(Poller):
    """Cursor over one id-ordered log ring (SLOWLOG, or one COMMANDLOG type)."""

    def __init__(
        self,
        *,
        key: str,
        address: str,
        committed: Any,
        max_entries: int,
        redact: str,
        interval: float,
        min_interval: float,
        kind: str = "slow",
    ):
        self.key = key
        self.address = address
        self.kind = kind
        self.name = "slowlog" if kind == "slow" else f"commandlog:{kind}"
        #: servers without COMMANDLOG (Redis, Valkey < 8.1) are normal: no warning for those
        self.warn_when_unsupported = kind == "slow"
        self.max_entries = max_entries
        self.redact = redact
        self.interval = interval
        self.min_interval = min(min_interval, interval)
        c = committed if isinstance(committed, dict) else {}
        self.run_id: str | None = c.get("run_id")
        self.last_id: int | None = c.get("last_id") if isinstance(c.get("last_id"), int) else None
        self.ring_len: int | None = None  # slowlog-max-len when CONFIG GET is allowed
        self._persisted = (self.run_id, self.last_id)
        self._persisted_at = time.monotonic()
        self._recent_new = 0
        self._empty_start = False  # a first start found the ring empty: later entries are owed
        self._rate = 0.0  # entries/s, smoothed
        self._peak = 0.0  # entries/s, decaying peak
        self._last_poll: float | None = None
        #: the pause the fill rate asks for (see _adapt); next_interval() shortens it when hurried
        self.adaptive_interval = interval
        # counters for tests/bench (the metrics carry the same numbers per address)
        self.shipped = 0
        self.self_filtered = 0
        self.lost = 0
        self._unreported_lost = 0
        self._unreported_shipped = 0

    # -- run scoping ---------------------------------------------------------------------------
    def on_identity(self, run_id: str) -> None:
        """A (re)connect read the run_id: a different run restarts ids at 0."""
        if self.run_id is None:
            self.run_id = run_id  # first start: last_id stays None (nothing counts as lost)
        elif self.run_id != run_id:
            self.run_id = run_id
            self.last_id = -1  # new run: expect id 0; anything missing before it was lost

    def on_settings(self, settings: Mapping[str, str | None]) -> None:
        """Bound reads by ``slowlog-max-len`` (COMMANDLOG rings share it)."""
        max_len = settings.get("slowlog-max-len")
        if max_len is not None and max_len.lstrip("-").isdigit():
            ring = int(max_len)
            self.ring_len = ring if ring > 0 else None

    def next_interval(self, result: PollResult) -> float:
        if result.hurry:
            return min(self.adaptive_interval, self.min_interval)
        return self.adaptive_interval

    def _command(self, count: int) -> tuple[Any, ...]:
        if self.kind == "slow":
            return ("SLOWLOG", "GET", count)
        return ("COMMANDLOG", "GET", count, self.kind)

    async def _read(self, conn: RedisConnection, count: int) -> Any:
        return await read_or_disable(conn, *self._command(count))

    # -- one poll ------------------------------------------------------------------------------
    async def poll(self, conn: RedisConnection, *, role: str | None) -> PollResult:
        assert self.run_id is not None, "on_identity() first"
        cap = self.max_entries if not self.ring_len else min(self.max_entries, self.ring_len)
        # first start: read all there is (no cursor to reach); otherwise a read sized by the rate
        guess = cap if self.last_id is None else max(16, min(cap, 2 * self._recent_new + 16))
        reply = await self._read(conn, guess)
        entries, bad = parse_log_reply(reply)
        new, gap = new_log_entries(entries, self.last_id)
        if gap is not None and len(entries) >= guess and guess < cap:
            # the small read did not reach the cursor: the gap may be an artefact of its size
            reply = await self._read(conn, cap)
            entries, bad = parse_log_reply(reply)
            new, gap = new_log_entries(entries, self.last_id)
        if self.last_id is None:
            if not entries:
                self._empty_start = True
            elif self._empty_start and len(entries) >= cap and (not self.ring_len or cap < self.ring_len):
                # we watched an empty ring, so everything in it now is owed, but the bounded read
                # may not reach its oldest entry: count what lies beyond, exactly (LEN then GET)
                try:
                    entries, bad, gap = await self._reach_back(conn, cap)
                    new = entries
                except ResponseError as e:
                    if not is_unsupported(e):
                        raise
                    # no +slowlog|len: ship what the read returned, as a first start does
        run_id = self.run_id
        origin = f"redis:{run_id}:slowlog" if self.kind == "slow" else f"redis:{run_id}:commandlog:{self.kind}"
        events = []
        if gap is not None:
            reason = "rotated"
            if (self.ring_len is None or cap < self.ring_len) and len(entries) >= cap:
                reason = "beyond_max_entries"
            ts = slowlog_timestamp(new[0]) if new else slowlog_timestamp({"time": now_ms() // 1000, "id": 0})
            events.append(slowlog_lost_event(origin=origin, run_id=run_id, first_lost_id=gap[0],
                                             last_lost_id=gap[1], timestamp=ts, role=role, kind=self.kind,
                                             reason=reason))
            self._unreported_lost += gap[1] - gap[0] + 1
        for item in bad:
            events.append(unparsed_event("slowlog" if self.kind == "slow" else "commandlog", item,
                                         origin=origin, position=f"bad:{self.last_id}:{len(events)}",
                                         timestamp=slowlog_timestamp({"time": now_ms() // 1000, "id": 0}),
                                         source="slowlog", role=role))
        shipped = 0
        for e in new:
            if is_self_entry(e):
                self.self_filtered += 1
                continue
            events.append(slowlog_event(e, origin=origin, run_id=run_id, redact=self.redact, role=role,
                                        kind=self.kind))
            shipped += 1
        self._unreported_shipped += shipped
        if new:
            self.last_id = new[-1]["id"]
        # an empty ring on a first start leaves last_id None: ids may be far from 0 (SLOWLOG RESET
        # keeps counting), so the first entry seen later is the start, not a gap
        self._adapt(len(new) + (gap[1] - gap[0] + 1 if gap else 0), gap is not None)

        state = (self.run_id, self.last_id)
        changed = state != self._persisted
        persist = bool(events) or (changed and time.monotonic() - self._persisted_at >= PERSIST_EVERY_S)
        positions = {self.key: {"run_id": self.run_id, "last_id": self.last_id}} if changed else {}
        return PollResult(events=events, positions=positions, must_persist=persist,
                          hurry=gap is not None or len(new) >= guess)

    async def _reach_back(
        self, conn: RedisConnection, cap: int
    ) -> tuple[list[dict[str, Any]], list[Any], tuple[int, int] | None]:
        """``LEN`` then ``GET cap`` in one round trip: the ring holds the newest LEN ids
        ``[n - LEN + 1, n]``, where n is the newest id before our LEN (our own LEN entry, if the
        threshold logged it, is the newest entry GET returns). Ids below the oldest returned
        entry and in the ring were beyond the bounded read."""
        length_cmd = ("SLOWLOG", "LEN") if self.kind == "slow" else ("COMMANDLOG", "LEN", self.kind)
        replies = await conn.pipeline(length_cmd, self._command(cap))
        for r in replies:
            if isinstance(r, ResponseError):
                raise r
        ring_count = replies[0] if isinstance(replies[0], int) else None
        entries, bad = parse_log_reply(replies[1])
        if ring_count is None or not entries:
            return entries, bad, None
        newest = entries[-1]
        n = newest["id"]
        if is_self_entry(newest) and [a.upper() for a in newest["argv"][:2]] == list(length_cmd[:2]):
            n -= 1
        first_owed = n - ring_count + 1
        oldest = entries[0]["id"]
        gap = (first_owed, oldest - 1) if oldest > first_owed else None
        return entries, bad, gap

    def committed(self) -> None:
        """The source calls this once the positions of the last result are durable; only then
        are the entries counted (a batch the spool refused is read, and counted, again)."""
        self._persisted = (self.run_id, self.last_id)
        self._persisted_at = time.monotonic()
        if self._unreported_lost:
            self.lost += self._unreported_lost
            metrics.SLOWLOG_LOST.labels(self.address).inc(self._unreported_lost)
        if self._unreported_shipped:
            self.shipped += self._unreported_shipped
            metrics.SLOWLOG_ENTRIES.labels(self.address).inc(self._unreported_shipped)
        self._unreported_lost = self._unreported_shipped = 0

    def _adapt(self, n_new: int, had_gap: bool) -> None:
        """Next interval: read the ring when about a quarter of it would have filled.

        The rate used is the larger of the recent rate and a peak that halves every
        ``PEAK_HALF_LIFE_S``: a server that just had a storm stays closely watched for a while,
        so the next storm is read from its start instead of losing its first interval.
        """
        now = time.monotonic()
        if self._last_poll is not None:
            dt = max(now - self._last_poll, 1e-3)
            inst = n_new / dt
            self._rate = inst if inst > self._rate else 0.7 * self._rate + 0.3 * inst
            self._peak = max(inst, self._peak * 0.5 ** (dt / PEAK_HALF_LIFE_S))
        self._last_poll = now
        self._recent_new = n_new
        ring = self.ring_len or self.max_entries
        rate = max(self._rate, self._peak)
        if had_gap:
            self.adaptive_interval = self.min_interval
        elif rate <= 0:
            self.adaptive_interval = self.interval
        else:
            self.adaptive_interval = max(self.min_interval, min(self.interval, 0.25 * ring / rate))


def build(setup: PollSetup) -> list[Poller]:
    """The SLOWLOG drainer of one source (``slowlog:`` in the config)."""
    c = setup.cfg.slowlog
    return [LogDrainer(key=setup.key("slowlog"), address=setup.address, committed=setup.committed("slowlog"),
                       max_entries=c.max_entries, redact=c.redact, interval=c.interval,
                       min_interval=c.min_interval)]
