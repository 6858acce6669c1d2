"""How spooled events lie in the spool's SQLite file: one row per run of consecutive events.

Every event has a **row number** (the numbers sink cursors count in; ``SpooledEvent.seq``),
given in append order and never reused. A row of the ``batches`` table holds the events
``last - n + 1 .. last``: their canonical JSON bytes joined by ``\\n`` (canonical JSON never
contains that byte: orjson escapes control characters and writes no whitespace), ``size`` is
the sum of the events' lengths, ``added`` the wall time of the append. ``annex`` (NULL when
there is none) holds the events' annexes for one sink joined the same way (shipper/api.py
``Annexer``: what that sink would otherwise re-derive from each event's bytes); only that sink's
reads take it (:func:`annexed_after`), every other reader reads ``raw`` only.

Why rows of many events and not one row per event: SQLite's work is per row (a B-tree cell to
insert, then to delete once every sink acknowledged it), and the spool thread's inserts and
deletes were a third of the agent's CPU at full speed. Rows of up to :data:`ROW_BYTES` cut the
spool's write + delete CPU from 2.4 to 1.1 µs per event in a micro-bench, and the offload
process's read from 0.75 to 0.4 µs (a micro-bench). A row is deleted
when every sink acknowledged its last event; the events before a cursor inside a row are
skipped on reading.

``codec`` says how ``raw`` and ``annex`` are stored: :data:`PLAIN` as they are, :data:`DEFLATE`
each as one zlib stream (level 1). The agent deflates every row it writes when ISA-L's deflate
is installed (shipper/util/deflate.py), and stores rows plain otherwise: a backlog's events cross
the spool twice on their way out (written to SQLite's write-ahead log, then copied into the
file) and once more on the way back (the offload process reads them), so a row ~6x smaller
saves more kernel copying and SQLite page work than ISA-L spends on it (docs/performance.md
has the measurement); zlib's deflate is 5x slower and would not pay. Readers inflate whatever
a row says, so a spool written either way reads the same.

Free of the agent's heavier imports: the offload process and the audit readers read through
this module too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import orjson

from ..api import Event, SpooledEvent
from ..util import deflate

TABLE = """
CREATE TABLE IF NOT EXISTS batches (
    last    INTEGER PRIMARY KEY AUTOINCREMENT,   -- row number of the row's last event
    n       INTEGER NOT NULL,                    -- events in the row: last - n + 1 .. last
    added   REAL NOT NULL,                       -- wall time of the append (batch max_wait)
    size    INTEGER NOT NULL,                    -- sum of the events' lengths
    raw     BLOB NOT NULL,                       -- canonical JSON of each event, joined by \\n
    annex   BLOB,                                -- one sink's annex of each event, joined by \\n
    codec   INTEGER NOT NULL DEFAULT 0           -- how raw and annex are stored: PLAIN, DEFLATE
);
"""

SEP = b"\n"
#: a row closes once its events reach this many bytes (one big event is a row of its own)
ROW_BYTES = 256 << 10
#: ``codec`` values: the row's bytes as they are, or each of raw and annex as one zlib stream
PLAIN, DEFLATE = 0, 1
#: the codec of the rows this process writes (see the module docstring)
WRITE_CODEC = DEFLATE if deflate.FAST else PLAIN
#: deflate level of the rows: ISA-L's level 1 compresses as fast as its level 0, 20 % smaller
DEFLATE_LEVEL = 1


class CorruptRow(sqlite3.DatabaseError):
    """A row whose bytes do not split into its number of events."""


#: (last, n, size, raw, annex, codec), as stored
Row = tuple[int, int, int, bytes, bytes | None, int]


def pack(raws: list[bytes], top: int, annexes: list[bytes] | None = None,
         codec: int | None = None) -> list[Row]:
    """The rows ``(last, n, size, raw, annex, codec)`` that store ``raws`` (and their ``annexes``,
    one per event, if any), numbered after row number ``top``, stored by ``codec`` (default
    :data:`WRITE_CODEC`)."""
    codec = WRITE_CODEC if codec is None else codec
    squeeze = _compress if codec == DEFLATE else _same
    row_bytes = ROW_BYTES
    rows: list[Row] = []
    start = size = 0
    end = len(raws)
    for i, raw in enumerate(raws):
        size += len(raw)
        if size >= row_bytes or i + 1 == end:
            top += i + 1 - start
            annex = squeeze(SEP.join(annexes[start:i + 1])) if annexes is not None else None
            rows.append((top, i + 1 - start, size, squeeze(SEP.join(raws[start:i + 1])), annex, codec))
            start, size = i + 1, 0
    return rows


def unpack(data: bytes, codec: int) -> bytes:
    """The bytes of a stored ``raw`` or ``annex`` column; raises :class:`CorruptRow` when they do not
    inflate or the codec is unknown (a spool written by a newer agent)."""
    if codec == PLAIN:
        return data
    if codec == DEFLATE:
        try:
            return deflate.module.decompress(data)
        except deflate.module.error as e:
            raise CorruptRow(f"a spool row does not inflate: {e}") from e
    raise CorruptRow(f"a spool row stored by an unknown codec {codec!r} (an agent newer than this one wrote it)")


def _events_of(last: int, n: int, raw: bytes, codec: int) -> list[bytes]:
    """The ``n`` events' canonical bytes of stored row ``last``; raises :class:`CorruptRow`."""
    if codec != PLAIN:
        raw = unpack(raw, codec)
    parts = raw.split(SEP) if n > 1 else [raw]
    if len(parts) != n:
        raise CorruptRow(f"spool row {last} holds {len(parts)} events, not {n}")
    return parts


def _select(db: sqlite3.Connection, columns: str, after: int) -> sqlite3.Cursor:
    """The rows after row number ``after``, oldest first. A spool that an agent has not opened
    since it was written without ``codec`` (read by ``verify``, which never changes it) has
    plain rows only."""
    query = f"SELECT {columns} FROM batches WHERE last > ? ORDER BY last"
    try:
        return db.execute(query, (after,))
    except sqlite3.OperationalError as e:
        if "codec" not in str(e):
            raise
        return db.execute(query.replace("codec", f"{PLAIN} AS codec"), (after,))


def _compress(data: bytes) -> bytes:
    return deflate.module.compress(data, DEFLATE_LEVEL)


def _same(data: bytes) -> bytes:
    return data


def top_of(db: sqlite3.Connection) -> int:
    """The newest row number ever given (0 before any): AUTOINCREMENT's counter."""
    row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'batches'").fetchone()
    return int(row[0]) if row else 0


def oldest(db: sqlite3.Connection) -> int | None:
    """The row number of the oldest event stored, None when there is none."""
    row = db.execute("SELECT last - n + 1 FROM batches ORDER BY last LIMIT 1").fetchone()
    return int(row[0]) if row else None


def events_after(db: sqlite3.Connection, after: int, upto: int | None = None) -> Iterator[tuple[int, float, bytes]]:
    """``(row number, added, canonical bytes)`` of every stored event after row number ``after``
    (and up to ``upto``), oldest first. Close the generator to end the read transaction early."""
    cur = _select(db, "last, n, added, raw, codec", after)
    try:
        for last, n, added, raw, codec in cur:
            first = last - n + 1
            if upto is not None and first > upto:
                return
            parts = _events_of(last, n, raw, codec)
            for i in range(after - first + 1 if after >= first else 0, n):
                if upto is not None and first + i > upto:
                    return
                yield first + i, added, parts[i]
    finally:
        cur.close()


def stored_raws_after(db: sqlite3.Connection, after: int) -> list[bytes]:
    """Every stored event's canonical bytes after row number ``after``, in either layout: a spool
    last written by an agent before rows of many events (table ``events``, one row per event,
    migrated when an agent opens it) is read as it is, for a read-only reader such as ``verify``."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'batches'").fetchone():
        return [raw for _num, _added, raw in events_after(db, after)]
    return [bytes(r[0]) for r in db.execute("SELECT raw FROM events WHERE seq > ? ORDER BY seq", (after,))]


#: a row of :func:`annexed_rows_after`
AnnexedRow = tuple[int, float, list[bytes], list[bytes] | None, int]


def annexed_rows_after(db: sqlite3.Connection, after: int,
                       keep: dict[int, tuple[list[bytes], list[bytes] | None]] | None = None) -> Iterator[AnnexedRow]:
    """``(first row number, added, events' bytes, their annexes or None, index of the first event
    after row number after)`` of each row holding an event after ``after``, oldest first: the rows
    as stored, for the sink whose annexes the spool stores (None for a row stored without, or
    whose annexes are damaged: a damaged annex only costs the fast path). Close the generator to
    end the read transaction early.

    ``keep`` (the caller's, empty at first) holds the split bytes of the last row read: a batch
    ends inside a row more often than not, and the next read starts in that row, which is then
    not inflated and split again. A row never changes once written and its number is never
    given again, so its number is its key."""
    cur = _select(db, "last, n, added, raw, annex, codec", after)
    try:
        for last, n, added, raw, annex, codec in cur:
            first = last - n + 1
            kept = keep.get(last) if keep is not None else None
            if kept is not None:
                yield first, added, kept[0], kept[1], after - first + 1 if after >= first else 0
                continue
            parts = _events_of(last, n, raw, codec)
            if annex is not None and codec != PLAIN:
                try:
                    annex = unpack(annex, codec)
                except CorruptRow:
                    annex = None
            annexes = (annex.split(SEP) if n > 1 else [annex]) if annex is not None else None
            if annexes is not None and len(annexes) != n:
                annexes = None
            if keep is not None:
                keep.clear()
                keep[last] = (parts, annexes)
            yield first, added, parts, annexes, after - first + 1 if after >= first else 0
    finally:
        cur.close()


def annexed_after(db: sqlite3.Connection, after: int,
                  max_bytes: int, max_events: int) -> tuple[list[SpooledEvent], int, float]:
    """:func:`read_after` for the sink whose annexes the spool stores: each event with its annex
    (None for a row stored without: that event's batch is built from the parsed event) and its
    dict parsed only if the sink asks for it."""
    out: list[SpooledEvent] = []
    total = 0
    first_added = 0.0
    rows = annexed_rows_after(db, after)
    try:
        for first, added, parts, annexes, start in rows:
            for i in range(start, len(parts)):
                one = parts[i]
                size = len(one)
                if out and (total + size > max_bytes or len(out) >= max_events):
                    return out, total, first_added
                if not out:
                    first_added = added
                out.append(SpooledEvent(first + i, None, one, annexes[i] if annexes is not None else None))
                total += size
    finally:
        rows.close()
    return out, total, first_added


def read_after(db: sqlite3.Connection, after: int, max_bytes: int,
               max_events: int) -> tuple[list[SpooledEvent], int, float]:
    """The events after row number ``after``, up to ``max_bytes`` (at least one) and
    ``max_events``, parsed; with their total size and the ``added`` time of the first."""
    nums: list[int] = []
    raws: list[bytes] = []
    total = 0
    first_added = 0.0
    rows = events_after(db, after)
    try:
        for num, added, raw in rows:
            size = len(raw)
            if raws and (total + size > max_bytes or len(raws) >= max_events):
                break
            if not raws:
                first_added = added
            nums.append(num)
            raws.append(raw)
            total += size
    finally:
        rows.close()
    return [SpooledEvent(*t) for t in zip(nums, loads_all(raws), raws, strict=True)], total, first_added


def loads_all(raws: list[bytes]) -> list[Event]:
    """``[orjson.loads(r) for r in raws]`` as one call on the bytes joined into an array.

    Why: one call per batch instead of one per event saves orjson's per-call work: 3.00 instead
    of 3.19 µs per event on the promtail_compare backlog (bench/stage_costs.py, same run). The
    result is the same list;
    if the joined text does not parse into exactly one value per event (a corrupt row), each
    event is parsed alone, so the error is the one of the event at fault."""
    if not raws:
        return []
    try:
        events = orjson.loads(b"[" + b",".join(raws) + b"]")
    except orjson.JSONDecodeError:
        events = None
    if type(events) is not list or len(events) != len(raws):
        events = [orjson.loads(r) for r in raws]
    return events
