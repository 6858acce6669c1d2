"""The durable spool: events, source positions, sink cursors and audit chain heads in one SQLite file.

Why one SQLite database (WAL mode) and not a queue library plus a positions file: the whole
at-least-once argument rests on *one* transaction that stores a batch of events **and** the
source position that produced them. Once it commits, the source may forget the bytes; if the
agent dies before it commits, the source re-reads them from the old position. Nothing else is
needed for "no loss" and "replay is at most the batch in flight".

Events are stored in rows of many (shipper/pipeline/spool_rows.py has the layout and why). Each sink
reads the spool through its own cursor (``sink_cursors``, an event's row number); a row is
deleted when every sink's cursor passed its last event. The spool is bounded by
``max_bytes``: when full, ``append`` waits (the sources block) or, with ``when_full:
drop_oldest``, deletes the oldest rows and records a ``spool_overflow`` gap event in the audit
chain.

Audit chain (docs/audit.md): every appended event gets, per *stream* (host + source), a
sequence number ``seq`` with no holes and ``prev_hash``, the hash of its predecessor's
canonical bytes. Heads are stored in the same transaction, so the chain survives restarts and
a replay after a crash reproduces the same numbers (nothing leaves the agent before commit).

All database work runs on one dedicated thread: SQLite connections are not shared across
threads, and one writer is all SQLite allows anyway.

This module is the queue and its transactions. Around it: the SQLite file's tables and
connection settings (spool_db.py), the layout of the event rows (spool_rows.py), the witness of
what the spool held (spool_stamp.py) and what is done when that state was lost (spool_reset.py),
and ``positions.json`` for humans (positions_mirror.py). It stays one file of ~600 lines
because append, seal, read, ack and collection share one transaction discipline on one thread;
cut apart, each piece would have to re-establish what the others assume.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from parsers.events import Event, dumps, event_id

from ..agent_events import agent_event
from ..api import Annexer, Position, SpooledEvent
from ..audit.verify import seq_ranges_field
from ..observe import metrics
from ..sinks import limits
from . import positions_mirror, spool_db, spool_reset, spool_rows, spool_stamp, state_guard

log = logging.getLogger("shipper.spool")

T = TypeVar("T")

GENESIS = "0" * 64


def _annex_of(annex: Callable[[Event, bytes], bytes], ev: Event, raw: bytes) -> bytes:
    """The annex of a sealed event, or b"" (the sink's ordinary path) if the annexer fails: an
    annex is a shortcut, never a reason to refuse an event."""
    try:
        return annex(ev, raw)
    except Exception:  # noqa: BLE001 - a bug in an annexer must not stop the spool
        log.exception("annex of an event failed; its batch is built from the event")
        return b""


def chain_hash(raw: bytes) -> str:
    """Hash of an event's canonical bytes (sha256, hex): the next event's ``prev_hash``."""
    return hashlib.sha256(raw).hexdigest()


@dataclass
class _Sealed:
    """A batch sealed before it reached the spool thread: valid while the stream's head is ``base``."""

    base: tuple[int, str]
    head: tuple[int, str]
    raws: list[bytes]
    #: the annex sink's annex of each event, None without an annex sink
    annexes: list[bytes] | None = None


@dataclass
class SpoolStats:
    events: int
    bytes: int
    oldest_seq: int | None
    newest_seq: int | None


class Spool:
    """Durable queue + positions + per-sink cursors + audit chain heads."""

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        *,
        max_bytes: int = 512 << 20,
        when_full: str = "block",
        synchronous: str = "FULL",
        host: str = "",
        gc_rows: int = 20_000,
        gc_interval: float = 1.0,
        max_event_bytes: int | None = None,
    ) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / "spool.sqlite"
        self.max_bytes = max_bytes
        self.when_full = when_full
        self.synchronous = synchronous
        self.host = host
        #: an event's canonical bytes are cut to this before sealing (shipper/sinks/limits.py)
        self.max_event_bytes = max_event_bytes
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self._db: sqlite3.Connection | None = None
        #: a second connection, synchronous=NORMAL, for the sinks' cursor moves (see ack)
        self._ack_db: sqlite3.Connection | None = None
        self._bytes = 0
        self._events = 0
        self._subscribers: list[asyncio.Event] = []
        self._room = asyncio.Event()
        self._cursors: dict[str, int] = {}
        self._heads: dict[str, tuple[int, str]] = {}
        self._positions_mirror = positions_mirror.PositionsMirror(self.dir)
        self._top = 0
        #: per sink, the split row its last :meth:`encode_rows` ended in (spool_rows.annexed_rows_after)
        self._kept_rows: dict[str, dict[int, Any]] = {}
        #: acknowledged rows are deleted in runs of at least this many (see _gc)
        self.gc_rows = gc_rows
        self.gc_interval = gc_interval
        self._gc_low = 0
        #: appends in flight per stream (a batch is sealed before the spool thread only when 0)
        self._sealing: dict[str, int] = {}
        self._gc_at = float("-inf")  # the first acknowledgement collects
        #: the witness of what this spool held, for the next start (shipper/pipeline/spool_stamp.py)
        self._stamp = spool_stamp.StampWriter(self.dir, self.path)
        self._vanish_reported: asyncio.Task[None] | None = None
        #: per sink, when (monotonic) it last made progress: acknowledged, or had nothing to send
        self._progress_at: dict[str, float] = {}
        #: the one sink whose annexes are stored beside the events (see use_annexer)
        self._annex_sink: str | None = None
        self._annexer: Annexer | None = None

    @property
    def annex_sink(self) -> str | None:
        """The sink whose annexes are stored beside the events, if any."""
        return self._annex_sink

    def use_annexer(self, sink: str, annexer: Annexer) -> None:
        """Store ``annexer``'s annex of every event sealed from now on, for ``sink`` (shipper/api.py
        ``Annexer``). One per spool: called before :meth:`open`, which drops the annexes stored
        for another sink or another fingerprint."""
        self._annex_sink, self._annexer = sink, annexer

    # ---- lifecycle -----------------------------------------------------------------------
    async def open(self) -> None:
        reset = await self._run(self._open_or_reset)
        metrics.SPOOL_MAX_BYTES.set(self.max_bytes)
        self._update_gauges()
        if reset is not None:
            await self._report_reset(reset)

    async def _report_reset(self, reset: spool_reset.Reset) -> None:
        """Log lost state and ship it as a ``state_reset`` agent event."""
        log.error("state_reset: %s", reset.message, extra={"state_reset": reset.fields})
        await self.append(f"{self.host}/agent", [reset.event()], {})

    def _open_or_reset(self) -> spool_reset.Reset | None:
        """Open the spool and check it against the last run's stamp (shipper/pipeline/spool_reset.py
        says what is done when state was lost, and why). Returns the reset, or None."""
        stamp = spool_stamp.read(self.dir)
        reason = spool_stamp.missing_or_empty(self.path, stamp)
        if reason is None:
            try:
                self._open()
                return self._opened(spool_reset.rows_lost(self.path, self._top, stamp))
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and state_guard.is_disk_error(exc):
                    raise
                reason = f"{self.path.name} unreadable: {exc}"
        for db in (self._db, self._ack_db):
            if db is not None:
                db.close()
        self._db = self._ack_db = None
        moved = spool_reset.set_aside(self.path)
        self._open()
        positions = positions_mirror.read(self._positions_mirror.path)
        if positions:
            assert self._db is not None
            self._db.executemany("INSERT OR REPLACE INTO positions VALUES (?, ?)",
                                 [(k, orjson.dumps(v)) for k, v in positions.items()])
        return self._opened(spool_reset.fresh_start(self.path, reason, moved=moved,
                                                    positions_restored=len(positions), stamp=stamp))

    def _opened(self, reset: spool_reset.Reset | None) -> spool_reset.Reset | None:
        self._stamp.opened()
        self._stamp.write(self._top, self._cursors, force=True)
        return reset

    def _open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        db = spool_db.connect(self.path, self.synchronous)
        db.executescript(spool_db.SCHEMA)
        self._db = db
        self._kept_rows.clear()  # a reopened (or replaced) file: only its own rows count
        self._ack_db = spool_db.connect(self.path, "NORMAL")
        spool_db.migrate_event_rows(db)
        spool_db.migrate_annex_column(db)
        spool_db.migrate_codec_column(db)
        owner = orjson.dumps([self._annex_sink, self._annexer.fingerprint]).decode() if self._annexer else ""
        spool_db.keep_annexes_of(db, owner)
        row = db.execute("SELECT COALESCE(SUM(n), 0), COALESCE(SUM(size), 0) FROM batches").fetchone()
        self._events, self._bytes = int(row[0]), int(row[1])
        self._cursors = dict(db.execute("SELECT sink, acked FROM sink_cursors").fetchall())
        self._heads = {s: (q, h) for s, q, h in db.execute("SELECT stream, seq, hash FROM chain")}
        self._top = self._max_seq()

    async def close(self) -> None:
        def _close() -> None:
            if self._ack_db is not None:
                self._ack_db.close()
                self._ack_db = None
            if self._db is not None:
                self._write_positions_mirror(force=True)
                self._stamp.write(self._top, self._cursors, force=True)
                self._db.close()
                self._db = None

        await self._run(_close)
        self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    # ---- positions -----------------------------------------------------------------------
    async def positions(self, prefix: str = "") -> dict[str, Position]:
        def _get() -> dict[str, Position]:
            assert self._db is not None
            rows = self._db.execute(
                "SELECT key, value FROM positions WHERE substr(key, 1, ?) = ?", (len(prefix), prefix)
            ).fetchall()
            return {k: orjson.loads(v) for k, v in rows}

        return await self._run(_get)

    # ---- sinks ---------------------------------------------------------------------------
    async def register_sink(self, name: str) -> None:
        """A new sink starts at the oldest event still in the spool (nothing is skipped)."""

        def _reg() -> None:
            assert self._db is not None
            if name in self._cursors:
                return
            first = spool_rows.oldest(self._db)
            acked = first - 1 if first is not None else self._max_seq()
            self._db.execute("INSERT OR REPLACE INTO sink_cursors VALUES (?, ?)", (name, acked))
            self._cursors[name] = acked

        await self._run(_reg)
        self._progress_at[name] = time.monotonic()
        self._update_gauges()

    def _max_seq(self) -> int:
        assert self._db is not None
        return spool_rows.top_of(self._db)

    async def forget_sinks(self, keep: Iterable[str]) -> None:
        """Drop cursors of sinks no longer configured, so they do not pin the spool forever."""
        keep = set(keep)

        def _forget() -> None:
            assert self._db is not None
            for name in list(self._cursors):
                if name not in keep:
                    self._db.execute("DELETE FROM sink_cursors WHERE sink = ?", (name,))
                    del self._cursors[name]
            self._gc()

        await self._run(_forget)

    # ---- append --------------------------------------------------------------------------
    async def append(self, stream: str, events: list[Event], positions: dict[str, Position]) -> None:
        """Store events (with chain numbers) and positions in ONE transaction.

        Returns when durable. Blocks while the spool is full (``when_full: block``).
        """
        size_hint = sum(len(e.get("message", "")) + 200 for e in events)
        if events and self.when_full == "block":
            waited = time.monotonic()
            while self._bytes + size_hint > self.max_bytes and self._bytes > 0:
                self._room.clear()
                try:
                    await asyncio.wait_for(self._room.wait(), 1.0)
                except TimeoutError:
                    pass
            blocked = time.monotonic() - waited
            if blocked > 0.001:
                metrics.SPOOL_BLOCKED_SECONDS.inc(blocked)
        # Seal here, on the event loop's thread, when no other append of this stream is in flight
        # (a source's batches never are): the spool thread then only runs SQLite. That thread was
        # the agent's bottleneck (docs/performance-agent.md); the loop's thread was mostly idle.
        sealed = None
        if events and not self._sealing.get(stream):
            sealed = self._seal_batch(stream, events)
        self._sealing[stream] = self._sealing.get(stream, 0) + 1
        caught_up = [s for s, c in self._cursors.items() if c >= self._top]  # their wait starts now
        try:
            await state_guard.retry_disk_errors(
                "spool", str(self.path), lambda: self._run(self._append, stream, events, positions, sealed))
        finally:
            self._sealing[stream] -= 1
        now = time.monotonic()
        for sink in caught_up:
            self._progress_at[sink] = now
        self._update_gauges()
        if events:
            self.notify()

    def _seal_batch(self, stream: str, events: list[Event],
                    base: tuple[int, str] | None = None) -> _Sealed:
        """Give each event its chain position (after ``base``, default the stream's committed
        head) and its canonical bytes. One loop for the batch: it runs once per event on the
        agent's busiest path, so the chain head lives in locals."""
        base = base or self._heads.get(stream) or (0, GENESIS)
        seq, prev = base
        host = self.host
        max_event = self.max_event_bytes
        raws: list[bytes] = []
        append = raws.append
        annex = self._annexer.annex if self._annexer is not None else None
        annexes: list[bytes] | None = [] if annex is not None else None
        for ev in events:
            seq += 1
            ev["stream"] = stream
            ev["seq"] = seq
            ev["prev_hash"] = prev
            if host and "host" not in ev:
                ev["host"] = host
            if "id" not in ev:
                ev["id"] = event_id(stream, f"seq:{seq}")
            raw = dumps(ev)
            if max_event is not None and len(raw) > max_event:
                raw = limits.fit(ev, raw, max_event)
                if annex is not None:
                    annexes.append(_annex_of(annex, orjson.loads(raw), raw))  # type: ignore[union-attr]
            elif annex is not None:
                try:
                    annexes.append(annex(ev, raw))  # type: ignore[union-attr]
                except Exception:  # noqa: BLE001 - a bug in an annexer must not stop the spool
                    annexes.append(_annex_of(annex, ev, raw))  # type: ignore[union-attr]
            prev = chain_hash(raw)
            append(raw)
        return _Sealed(base, (seq, prev), raws, annexes)

    def _append(self, stream: str, events: list[Event], positions: dict[str, Position],
                sealed: _Sealed | None = None) -> None:
        db = self._db
        assert db is not None
        now = time.time()
        # _drop_oldest moves the cursors and the byte count in memory: restored if COMMIT fails
        cursors, size = dict(self._cursors), self._bytes
        db.execute("BEGIN IMMEDIATE")
        try:
            heads_changed: dict[str, tuple[int, str]] = {}
            raws: list[bytes] = []
            annexes: list[bytes] | None = None
            if events:
                if sealed is None or sealed.base != (self._heads.get(stream) or (0, GENESIS)):
                    # not sealed yet, or the head moved meanwhile (a drop_oldest gap event): seal now
                    sealed = self._seal_batch(stream, events)
                raws, annexes = sealed.raws, sealed.annexes
                heads_changed[stream] = sealed.head
            added_bytes = sum(map(len, raws))
            top = self._insert_rows(now, raws, self._top, annexes) if raws else self._top
            for key, value in positions.items():
                if value is None:
                    db.execute("DELETE FROM positions WHERE key = ?", (key,))
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO positions VALUES (?, ?)", (key, orjson.dumps(value))
                    )
            dropped = 0
            if self.when_full == "drop_oldest" and self._bytes + added_bytes > self.max_bytes:
                dropped, top = self._drop_oldest(self._bytes + added_bytes - self.max_bytes, heads_changed, top)
            for s, (q, h) in heads_changed.items():
                db.execute("INSERT OR REPLACE INTO chain VALUES (?, ?, ?)", (s, q, h))
            db.execute("COMMIT")
        except BaseException:
            spool_db.rollback(db)
            self._cursors, self._bytes = cursors, size
            # the chain heads in memory were only staged in heads_changed: nothing to undo
            raise
        self._heads.update(heads_changed)
        self._top = max(self._top, top)
        self._events += len(raws) - dropped
        self._bytes += added_bytes
        self._write_positions_mirror()
        self._stamp.write(self._top, self._cursors)

    def _insert_rows(self, added: float, raws: list[bytes], top: int, annexes: list[bytes] | None = None) -> int:
        """INSERT ``raws`` as the events after row number ``top`` (rows of many events, see
        shipper/pipeline/spool_rows.py); returns the new top.

        One statement for all the rows of an append: SQLite releases and re-takes the GIL around
        every step, and with the follower parsing on another thread each re-take waits for up to
        a switch interval (``executemany`` of 2,000 rows: 415 ms instead of 6 ms; one INSERT per
        row of many instead of one for all: 10-15 % slower end to end; docs/performance-agent.md)."""
        db = self._db
        assert db is not None
        rows = spool_rows.pack(raws, top, annexes)
        for i in range(0, len(rows), 140):  # 7 variables a row: within SQLite's 999 before 3.32
            chunk = rows[i:i + 140]
            params = [v for last, n, size, raw, annex, codec in chunk
                      for v in (last, n, added, size, raw, annex, codec)]
            db.execute("INSERT INTO batches (last, n, added, size, raw, annex, codec) VALUES "
                       + ",".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(chunk)), params)
        return rows[-1][0] if rows else top

    def _seal(self, stream: str, ev: Event, heads_changed: dict[str, tuple[int, str]]) -> bytes:
        """:meth:`_seal_one`'s canonical bytes."""
        return self._seal_one(stream, ev, heads_changed).raws[0]

    def _seal_one(self, stream: str, ev: Event, heads_changed: dict[str, tuple[int, str]]) -> _Sealed:
        """:meth:`_seal_batch` for one event after ``heads_changed``'s head of ``stream`` (staged in
        the caller's transaction), which it moves on."""
        sealed = self._seal_batch(stream, [ev], heads_changed.get(stream))
        heads_changed[stream] = sealed.head
        return sealed

    def _drop_oldest(self, need: int, heads_changed: dict[str, tuple[int, str]], top: int) -> tuple[int, int]:
        """Delete the oldest rows to make ``need`` bytes of room; record the gap in the chain.

        Whole rows go (a row holds many events). The gap event is sealed after the heads
        staged in ``heads_changed`` (the caller's transaction may be appending to the agent's
        own stream) and staged there too; its row number follows ``top``, the newest in this
        transaction. Returns (events dropped net of the gap event, the new top)."""
        db = self._db
        assert db is not None
        freed = 0
        dropped = 0
        first = last = None
        pairs: list[tuple[str, int]] = []
        for row_last, n, size, raw, codec in db.execute("SELECT last, n, size, raw, codec FROM batches ORDER BY last"):
            if freed >= need:
                break
            freed += size
            dropped += n
            first = row_last - n + 1 if first is None else first
            last = row_last
            try:
                raw = spool_rows.unpack(raw, codec)
            except spool_rows.CorruptRow:
                raw = b""  # dropped all the same; its pairs are unknown, as for a row that is not JSON
            for one in raw.split(spool_rows.SEP):
                try:
                    sealed = orjson.loads(one)
                    pairs.append((sealed.get("stream"), sealed.get("seq")))
                except orjson.JSONDecodeError:
                    pass
        if dropped:
            db.execute("DELETE FROM batches WHERE last <= ?", (last,))
            for name, acked in list(self._cursors.items()):
                if acked < last:  # type: ignore[operator]
                    db.execute("UPDATE sink_cursors SET acked = ? WHERE sink = ?", (last, name))
                    self._cursors[name] = last  # type: ignore[assignment]
            self._bytes -= freed
            metrics.SPOOL_DROPPED.inc(dropped)
            row = db.execute("SELECT value FROM meta WHERE key = 'dropped_total'").fetchone()
            total = (int(row[0]) if row else 0) + dropped
            db.execute("INSERT OR REPLACE INTO meta VALUES ('dropped_total', ?)", (str(total),))
            gap = agent_event(
                "spool_overflow", f"spool full: dropped {dropped} oldest events (spool rows {first}..{last})",
                level="warning", dropped_events=dropped, dropped_bytes=freed, first_row=first, last_row=last,
                dropped_total=total, seqs=seq_ranges_field(pairs))
            sealed = self._seal_one(f"{self.host}/agent", gap, heads_changed)
            top = self._insert_rows(time.time(), sealed.raws, top, sealed.annexes)
            self._bytes += len(sealed.raws[0])
            dropped -= 1  # the gap event itself is a new event
        return dropped, top

    # ---- reading for sinks ---------------------------------------------------------------
    async def read(self, sink: str, max_bytes: int, max_events: int = 100_000,
                   after: int | None = None) -> tuple[list[SpooledEvent], float]:
        """Events after ``sink``'s cursor (or after row ``after``: a worker whose last
        acknowledgement is still being committed), up to ``max_bytes``; also the ``added`` time of
        the first."""

        def _read() -> tuple[list[SpooledEvent], float]:
            assert self._db is not None
            start = self._cursors[sink] if after is None else max(after, self._cursors[sink])
            if sink == self._annex_sink:  # the events come parsed when the sink asks for them
                out, _total, first_added = spool_rows.annexed_after(self._db, start, max_bytes, max_events)
            else:
                out, _total, first_added = spool_rows.read_after(self._db, start, max_bytes, max_events)
            return out, first_added

        return await self._run(_read)

    async def encode_rows(self, sink: str, encode: Callable[[Iterable[spool_rows.AnnexedRow], int, int], Any],
                          after: int, max_bytes: int, max_events: int = 100_000) -> Any:
        """``encode`` (the sink's ``Annexer.encode_rows``) over the rows after row ``after`` (or
        after ``sink``'s cursor, if further), on the spool's thread: the next body of a backlog,
        built from the stored rows without a SpooledEvent per event, as the offload process builds
        it. None when the spool keeps no annexes for ``sink`` or the batch must be read as events."""
        if sink != self._annex_sink:
            return None

        def _encode() -> Any:
            assert self._db is not None
            start = max(after, self._cursors[sink])
            rows = spool_rows.annexed_rows_after(self._db, start, self._kept_rows.setdefault(sink, {}))
            try:
                return encode(rows, max_bytes, max_events)
            finally:
                rows.close()  # ends the read transaction

        return await self._run(_encode)

    async def read_rows(self, first_seq: int, last_seq: int) -> list[SpooledEvent]:
        """The rows ``first_seq..last_seq`` still in the spool (a batch built elsewhere, e.g. by the
        offload process, needed again for its dead letters)."""

        def _rows() -> list[SpooledEvent]:
            assert self._db is not None
            rows = spool_rows.events_after(self._db, first_seq - 1, last_seq)
            return [SpooledEvent(num, orjson.loads(raw), raw) for num, _added, raw in rows]

        return await self._run(_rows)

    def cursor(self, sink: str) -> int:
        """The last row ``sink`` acknowledged."""
        return self._cursors[sink]

    def mean_event_bytes(self) -> float:
        """Average size of the events in the spool (0 when empty): batch sizes from counts."""
        return self._bytes / self._events if self._events > 0 else 0.0

    async def ack(self, sink: str, upto_seq: int) -> None:
        """Move ``sink``'s cursor forward (never back: a drop_oldest may have passed it meanwhile);
        delete rows every sink has acknowledged."""

        def _ack() -> None:
            # On the second connection (synchronous=NORMAL): no fsync for a cursor move. It
            # survives a crash of the agent (the WAL is in the page cache) and the next append's
            # fsync makes it durable; only a power loss in between can undo it, and that re-sends
            # one batch (at-least-once). Usually ONE statement (its own transaction): each
            # statement is a GIL hand-off on the spool thread, which the sources' appends wait
            # for.
            db = self._ack_db
            assert db is not None
            old = self._cursors.get(sink, -1)
            if upto_seq <= old:
                return
            self._cursors[sink] = upto_seq
            update = "UPDATE sink_cursors SET acked = ? WHERE sink = ?"
            try:
                if not self._gc_due():
                    db.execute(update, (upto_seq, sink))
                    return
                db.execute("BEGIN IMMEDIATE")
                try:
                    db.execute(update, (upto_seq, sink))
                    freed = self._collect(db)
                    db.execute("COMMIT")
                except BaseException:
                    spool_db.rollback(db)
                    raise
            except BaseException:
                self._cursors[sink] = old
                raise
            self._events -= freed[0]
            self._bytes -= freed[1]
            self._stamp.write(self._top, self._cursors)

        await state_guard.retry_disk_errors("spool", str(self.path), lambda: self._run(_ack))
        self._progress_at[sink] = time.monotonic()
        self._update_gauges()
        self._room.set()

    def _gc(self) -> None:
        """Delete the rows every sink has acknowledged, now."""
        assert self._db is not None
        if self._cursors:
            freed = self._collect(self._db)
            self._events -= freed[0]
            self._bytes -= freed[1]

    def _gc_due(self) -> bool:
        """Whether an acknowledgement should also collect: one DELETE per ``gc_rows`` events (or
        per ``gc_interval`` seconds, or when the spool is half full) costs the spool thread less
        than one per batch, and the rows in between are simply skipped by every cursor."""
        low = min(self._cursors.values())
        return low - self._gc_low >= self.gc_rows or time.monotonic() - self._gc_at >= self.gc_interval \
            or self._bytes >= self.max_bytes // 2

    def _collect(self, db: sqlite3.Connection) -> tuple[int, int]:
        """DELETE the rows whose last event every sink acknowledged; returns (events, bytes) freed
        (for the caller to count once its transaction committed)."""
        low = min(self._cursors.values())
        self._gc_low, self._gc_at = low, time.monotonic()
        n, size = db.execute(
            "SELECT COALESCE(SUM(n), 0), COALESCE(SUM(size), 0) FROM batches WHERE last <= ?", (low,)
        ).fetchone()
        if n:
            db.execute("DELETE FROM batches WHERE last <= ?", (low,))
        return int(n), int(size)

    @property
    def newest_seq(self) -> int:
        """The row id of the last event appended (0 before any)."""
        return self._top

    def pending(self, sink: str) -> int:
        """Events not yet acknowledged by ``sink``."""
        return self.pending_after(self._cursors.get(sink, self._top))

    def stalled_for(self, sink: str, now: float | None = None) -> float:
        """Seconds ``sink`` has had events waiting without acknowledging any (0 when it has
        nothing to send): a sink worker dead, stuck or failing shows here, whatever it is stuck in."""
        if self.pending(sink) == 0:
            return 0.0
        now = time.monotonic() if now is None else now
        return max(0.0, now - self._progress_at.get(sink, now))

    @property
    def top(self) -> int:
        """The last row number given (rows are numbered by event: its growth is the input rate)."""
        return self._top

    def pending_after(self, seq: int) -> int:
        """Events appended after row ``seq``."""
        return max(0, self._top - seq)

    def subscribe(self) -> asyncio.Event:
        """An event set whenever rows are appended (one per sink worker: no lost wake-ups)."""
        ev = asyncio.Event()
        self._subscribers.append(ev)
        return ev

    def notify(self) -> None:
        for ev in self._subscribers:
            ev.set()

    async def stats(self) -> SpoolStats:
        def _s() -> SpoolStats:
            assert self._db is not None
            r = self._db.execute("SELECT COALESCE(SUM(n), 0), COALESCE(SUM(size), 0), MIN(last - n + 1), MAX(last) "
                                 "FROM batches").fetchone()
            return SpoolStats(int(r[0]), int(r[1]), r[2], r[3])

        return await self._run(_s)

    def all_acked(self) -> bool:
        return all(v >= self._top for v in self._cursors.values())

    async def chain_heads(self) -> dict[str, tuple[int, str]]:
        return dict(self._heads)

    def _update_gauges(self) -> None:
        if self._stamp.vanished is not None and self._vanish_reported is None:
            self._report_vanished(self._stamp.vanished)
        state_guard.update_free_bytes(str(self.dir))
        metrics.SPOOL_BYTES.set(self._bytes)
        metrics.SPOOL_EVENTS.set(self._events)
        # from the cursors, not from the sink workers: a worker retrying through an outage does
        # not get back to its loop to update it, while the spool grows
        for sink in self._cursors:
            metrics.SINK_LAG_EVENTS.labels(sink).set(self.pending(sink))

    def _report_vanished(self, reason: str) -> None:
        """The spool file was deleted or replaced under the running agent: SQLite goes on in the
        unlinked file, so nothing stops now, but all of it is lost when the agent exits. Said
        once: logged, a state_reset event (shipped from the file still open), /ready 503."""
        reset = spool_reset.vanished(self.path, reason, unshipped=self._events)
        state_guard.record_problem("spool_file", reset.message)
        self._vanish_reported = asyncio.ensure_future(self._report_reset(reset))

    def _write_positions_mirror(self, force: bool = False) -> None:
        """``positions.json`` for humans (shipper/pipeline/positions_mirror.py), at most once a second."""
        assert self._db is not None
        self._positions_mirror.write(self._db, force=force)

