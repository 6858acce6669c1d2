"""The spool's rows are stored deflated (shipper/pipeline/spool_rows.py ``codec``): smaller on disk,
read back as the same bytes, and a spool written plain (an older agent, or no ISA-L) reads the same."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson
import pytest

from parsers.logfile import LogParser
from shipper.pipeline import spool_rows
from shipper.pipeline.spool import Spool
from shipper.util import deflate

SAMPLES = Path(__file__).resolve().parent.parent / "sample-logs"


def real_events() -> list[dict[str, Any]]:
    """The events of a real Redis 7.0 log with a crash report, labelled as the runtime does."""
    parser = LogParser(kind="auto", tz=UTC, year=2026)
    out: list[dict[str, Any]] = []
    offset = 0
    for name in ("redis-7.0/replication-master.log", "redis-7.0/crash-assert.log"):
        for line in (SAMPLES / name).read_bytes().splitlines():
            out.extend(parser.feed(line, offset))
            offset += len(line) + 1
    out.extend(parser.flush())
    for ev in out:
        ev["labels"] = {"job": "redis", "instance": "redis://10.0.0.5:6379"}
    return out


def write(tmp: Path, events: list[dict[str, Any]]) -> list[bytes]:
    """``events`` appended to a spool in ``tmp`` (two appends), read back: their stored bytes."""

    async def go() -> list[bytes]:
        sp = Spool(tmp, host="h1")
        await sp.open()
        await sp.register_sink("s")
        half = len(events) // 2
        await sp.append("h1/redis", events[:half], {})
        await sp.append("h1/redis", events[half:], {})
        batch, _ = await sp.read("s", 1 << 40, max_events=1 << 30)
        await sp.close()
        return [se.raw for se in batch]

    return asyncio.run(go())


def stored(tmp: Path) -> list[tuple[int, bytes, int]]:
    db = sqlite3.connect(tmp / "spool.sqlite")
    try:
        rows = db.execute("SELECT n, raw, codec FROM batches ORDER BY last")
        return [(n, bytes(raw), codec) for n, raw, codec in rows]
    finally:
        db.close()


def test_rows_are_stored_deflated_several_times_smaller_and_read_back_as_the_same_bytes(tmp_path: Path) -> None:
    if not deflate.FAST:
        pytest.fail("the isal wheel is a dependency on this platform: the spool should deflate its rows")
    events = real_events()
    read = write(tmp_path, events)
    rows = stored(tmp_path)
    assert {codec for _n, _raw, codec in rows} == {spool_rows.DEFLATE}
    plain = [spool_rows.unpack(raw, codec) for _n, raw, codec in rows]
    assert b"\n".join(plain) == b"\n".join(read)
    assert sum(len(r) for _n, r, _c in rows) * 3 < sum(map(len, plain))
    assert [orjson.loads(r)["message"] for r in read] == [e["message"] for e in events]


def test_a_spool_written_plain_by_an_agent_without_the_codec_column_is_migrated_and_reads_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = real_events()
    with monkeypatch.context() as m:
        m.setattr(spool_rows, "WRITE_CODEC", spool_rows.PLAIN)
        first = write(tmp_path, events[:10])
    db = sqlite3.connect(tmp_path / "spool.sqlite", isolation_level=None)
    db.executescript("""
        BEGIN;
        CREATE TABLE old (last INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL, added REAL NOT NULL,
                          size INTEGER NOT NULL, raw BLOB NOT NULL, annex BLOB);
        INSERT INTO old SELECT last, n, added, size, raw, annex FROM batches;
        DROP TABLE batches;
        ALTER TABLE old RENAME TO batches;
        COMMIT;
    """)
    # a read-only reader (verify) of that spool, before any agent migrated it
    assert [raw for _num, _added, raw in spool_rows.events_after(db, 0)] == first
    db.close()
    both = write(tmp_path, events[10:])  # the agent migrates it and appends deflated rows after
    assert both == first + both[len(first):]
    assert [c for _n, _r, c in stored(tmp_path)] == [0, 0] + [spool_rows.WRITE_CODEC] * 2
    assert len(both) == len(events)


def test_a_row_that_does_not_inflate_or_names_an_unknown_codec_is_a_corrupt_row_not_garbage(tmp_path: Path) -> None:
    write(tmp_path, real_events()[:4])
    db = sqlite3.connect(tmp_path / "spool.sqlite", isolation_level=None)
    db.execute("UPDATE batches SET raw = ?, codec = ?", (b"{\"not\":\"deflated\"}", spool_rows.DEFLATE))
    with pytest.raises(spool_rows.CorruptRow, match="does not inflate"):
        list(spool_rows.events_after(db, 0))
    db.execute("UPDATE batches SET codec = 7")
    with pytest.raises(spool_rows.CorruptRow, match="unknown codec 7"):
        spool_rows.annexed_after(db, 0, 1 << 30, 1 << 30)
    db.close()
