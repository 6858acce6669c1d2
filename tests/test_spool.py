"""The spool: one transaction for events + positions, per-sink cursors, audit chain, bounds."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3

import orjson
import pytest

from parsers.events import make_event
from shipper.pipeline import spool_rows
from shipper.pipeline.spool import GENESIS, Spool


def ev(i: int) -> dict:
    return make_event(timestamp="2026-11-25T17:00:00.000000Z", source="redis", category="other",
                      event="unrecognized", message=f"line {i}")


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_events_and_positions_commit_together_and_survive_reopen(tmp_path):
    async def go() -> None:
        sp = Spool(tmp_path)
        await sp.open()
        await sp.register_sink("a")
        await sp.append("h/file:x", [ev(1), ev(2)], {"file:1": {"offset": 20}})
        await sp.close()
        sp = Spool(tmp_path)
        await sp.open()
        assert await sp.positions("file:") == {"file:1": {"offset": 20}}
        batch, _ = await sp.read("a", 1 << 20)
        assert [b.event["message"] for b in batch] == ["line 1", "line 2"]
        await sp.close()

    run(go())


def test_a_failed_transaction_stores_neither_events_nor_position(tmp_path):
    async def go() -> None:
        sp = Spool(tmp_path)
        await sp.open()
        await sp.register_sink("a")
        bad = ev(1)
        bad["fields"] = {"x": object()}  # not serialisable: the transaction must roll back
        with pytest.raises(TypeError):
            await sp.append("s", [ev(0), bad], {"file:1": {"offset": 99}})
        assert await sp.positions() == {}
        assert (await sp.read("a", 1 << 20))[0] == []
        # the chain did not advance either
        await sp.append("s", [ev(2)], {})
        batch, _ = await sp.read("a", 1 << 20)
        assert batch[0].event["seq"] == 1 and batch[0].event["prev_hash"] == GENESIS
        await sp.close()

    run(go())


def test_rows_are_deleted_only_when_every_sink_acknowledged(tmp_path):
    async def go() -> None:
        sp = Spool(tmp_path, gc_rows=0)  # delete on every acknowledgement
        await sp.open()
        await sp.register_sink("a")
        await sp.register_sink("b")
        for i in range(5):  # a row per append here (a row of many events goes with its last one)
            await sp.append("s", [ev(i)], {})
        a, _ = await sp.read("a", 1 << 20)
        await sp.ack("a", a[-1].seq)
        assert (await sp.stats()).events == 5
        assert sp.pending("a") == 0 and sp.pending("b") == 5
        b, _ = await sp.read("b", 1 << 20)
        await sp.ack("b", b[2].seq)
        assert (await sp.stats()).events == 2
        await sp.close()

    run(go())


def test_hash_chain_links_each_event_to_its_predecessor_across_restarts(tmp_path):
    async def go() -> list[bytes]:
        sp = Spool(tmp_path)
        await sp.open()
        await sp.register_sink("a")
        await sp.append("s", [ev(1), ev(2)], {})
        await sp.close()
        sp = Spool(tmp_path)
        await sp.open()
        await sp.append("s", [ev(3)], {})
        await sp.append("other", [ev(4)], {})
        batch, _ = await sp.read("a", 1 << 20)
        await sp.close()
        return [b.raw for b in batch]

    raws = run(go())
    events = [orjson.loads(r) for r in raws]
    s = [e for e, r in zip(events, raws, strict=True) if e["stream"] == "s"]
    s_raw = [r for e, r in zip(events, raws, strict=True) if e["stream"] == "s"]
    assert [e["seq"] for e in s] == [1, 2, 3]
    assert s[0]["prev_hash"] == GENESIS
    assert s[1]["prev_hash"] == hashlib.sha256(s_raw[0]).hexdigest()
    assert s[2]["prev_hash"] == hashlib.sha256(s_raw[1]).hexdigest()
    other = [e for e in events if e["stream"] == "other"]
    assert other[0]["seq"] == 1 and other[0]["prev_hash"] == GENESIS


def test_drop_oldest_records_the_gap_as_an_event(tmp_path):
    async def go() -> list[dict]:
        sp = Spool(tmp_path, max_bytes=3000, when_full="drop_oldest", host="h")
        await sp.open()
        await sp.register_sink("a")
        for i in range(40):
            await sp.append("s", [ev(i)], {})
        batch, _ = await sp.read("a", 1 << 20)
        st = await sp.stats()
        # the newest row id is known without a SELECT, gap events (inserted after the data) included
        assert sp.newest_seq == st.newest_seq == batch[-1].seq
        await sp.close()
        assert st.bytes <= 3000 + 1000
        return [b.event for b in batch]

    events = run(go())
    gaps = [e for e in events if e["event"] == "spool_overflow"]
    assert gaps, "dropping events must leave a spool_overflow event"
    # every row ever dropped is accounted for by the newest gap event's running total:
    # the 40 data events not still present, plus the earlier gap events that were dropped too
    last = max(gaps, key=lambda g: g["seq"])
    present_data = len([e for e in events if e["stream"] == "s"])
    dropped_gap_events = last["seq"] - len(gaps)
    assert last["fields"]["dropped_total"] == (40 - present_data) + dropped_gap_events


def test_block_mode_waits_for_room_then_proceeds(tmp_path):
    async def go() -> None:
        sp = Spool(tmp_path, max_bytes=1500, when_full="block")
        await sp.open()
        await sp.register_sink("a")
        await sp.append("s", [ev(i) for i in range(8)], {})
        t = asyncio.create_task(sp.append("s", [ev(99)], {}))
        await asyncio.sleep(0.3)
        assert not t.done(), "append must block while the spool is full"
        batch, _ = await sp.read("a", 1 << 20)
        await sp.ack("a", batch[-1].seq)
        await asyncio.wait_for(t, 5)
        await sp.close()

    run(go())


def test_positions_mirror_is_human_readable_json(tmp_path):
    async def go() -> None:
        sp = Spool(tmp_path)
        await sp.open()
        await sp.append("s", [], {"file:abc": {"offset": 7, "path": "/var/log/redis/redis.log"}})
        await sp.close()

    run(go())
    data = orjson.loads((tmp_path / "positions.json").read_bytes())
    assert data == {"file:abc": {"offset": 7, "path": "/var/log/redis/redis.log"}}
    # and the database is a plain SQLite file in WAL mode
    db = sqlite3.connect(tmp_path / "spool.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_acknowledged_rows_are_deleted_in_runs_not_after_every_batch(tmp_path):
    async def go() -> list[int]:
        sp = Spool(tmp_path, gc_rows=10, gc_interval=3600)
        await sp.open()
        await sp.register_sink("a")
        for i in range(30):  # a row per append
            await sp.append("s", [ev(i)], {})
        left = []
        await sp.ack("a", 1)  # the first acknowledgement runs the GC (nothing was ever collected)
        left.append((await sp.stats()).events)
        for upto in (5, 10, 11, 12):
            await sp.ack("a", upto)
            left.append((await sp.stats()).events)
        await sp.close()
        return left

    # 29 after row 1; rows 2..5 and 2..10 wait (fewer than 10 since the last run); at 11 the run of
    # 10 rows is deleted; 12 waits again
    assert run(go()) == [29, 29, 29, 19, 19]


def test_deleting_acknowledged_rows_does_not_overwrite_their_pages(tmp_path):
    # secure_delete (on in Debian's libsqlite3) would write the whole deleted volume once more
    async def go() -> int:
        sp = Spool(tmp_path)
        await sp.open()
        value = await sp._run(lambda: sp._db.execute("PRAGMA secure_delete").fetchone()[0])
        await sp.close()
        return value

    assert run(go()) == 0


def test_every_spool_connection_and_the_offload_reader_keep_a_small_page_cache(tmp_path):
    # the rows are read and deleted in order, each page once: SQLite's default 2 MB cache per
    # connection only held pages nobody read again (the catch-up's peak RSS)
    from shipper.pipeline import spool_db
    from shipper.pipeline.offload_child import _Worker

    async def go() -> list[int]:
        sp = Spool(tmp_path)
        await sp.open()
        sizes = [await sp._run(lambda db=db: db.execute("PRAGMA cache_size").fetchone()[0])
                 for db in (sp._db, sp._ack_db)]
        sizes.append(_Worker().connect(str(sp.path)).execute("PRAGMA cache_size").fetchone()[0])
        await sp.close()
        return sizes

    assert run(go()) == [-spool_db.CACHE_KIB] * 3
    assert spool_db.CACHE_KIB < 2000  # below SQLite's default


def _chain_of(sp: Spool, stream: str):  # type: ignore[no-untyped-def]
    rows = sqlite3.connect(sp.path).execute("SELECT raw, codec FROM batches ORDER BY last").fetchall()
    evs = [(orjson.loads(raw), raw) for r in rows for raw in spool_rows.unpack(r[0], r[1]).split(b"\n")]
    return [(e, raw) for e, raw in evs if e["stream"] == stream]


def _assert_linked(chain) -> None:  # type: ignore[no-untyped-def]
    prev = GENESIS
    for k, (e, raw) in enumerate(chain, 1):
        assert e["seq"] == k and e["prev_hash"] == prev
        prev = hashlib.sha256(raw).hexdigest()


def test_concurrent_appends_to_one_stream_stay_one_unbroken_chain(tmp_path):
    async def go() -> list:
        sp = Spool(tmp_path)
        await sp.open()
        # the first is sealed before the spool thread, the others while it is in flight: in the thread
        await asyncio.gather(*(sp.append("agent", [ev(10 * b + i) for i in range(10)], {}) for b in range(5)))
        chain = _chain_of(sp, "agent")
        await sp.close()
        return chain

    chain = run(go())
    assert len(chain) == 50
    _assert_linked(chain)


def test_a_batch_sealed_on_a_head_that_moved_is_sealed_again_in_the_spool_thread(tmp_path):
    async def go() -> list:
        sp = Spool(tmp_path)
        await sp.open()
        stale = sp._seal_batch("s", [ev(100), ev(101)])  # sealed on the empty head...
        await sp.append("s", [ev(1), ev(2), ev(3)], {})  # ...which then moves
        await sp._run(sp._append, "s", [ev(100), ev(101)], {}, stale)
        chain = _chain_of(sp, "s")
        await sp.close()
        return chain

    chain = run(go())
    assert [e["message"] for e, _ in chain] == ["line 1", "line 2", "line 3", "line 100", "line 101"]
    _assert_linked(chain)


def test_sealing_a_batch_at_once_gives_the_bytes_and_head_of_sealing_event_by_event(tmp_path):
    """The loop-thread fast path (_seal_batch) and the spool thread's fallback (_seal) must
    agree byte for byte, or a re-seal after a moved head would fork the chain."""
    sp = Spool(tmp_path, host="h1")
    base = (41, "ab" * 32)
    sp._heads["h1/s"] = base  # noqa: SLF001
    batch = sp._seal_batch("h1/s", [ev(i) for i in range(5)])  # noqa: SLF001
    heads: dict[str, tuple[int, str]] = {}
    one_by_one = [sp._seal("h1/s", ev(i), heads) for i in range(5)]  # noqa: SLF001
    assert batch.raws == one_by_one
    assert batch.base == base and batch.head == heads["h1/s"]
    assert orjson.loads(batch.raws[0])["seq"] == 42 and orjson.loads(batch.raws[0])["prev_hash"] == "ab" * 32


def test_a_gap_event_in_the_stream_being_appended_continues_that_appends_chain(tmp_path):
    """drop_oldest seals its spool_overflow event into the agent's own stream; when the append that
    overflows is itself on that stream (agent events), the gap event comes after the append's
    events in the chain, not beside them on the old head."""
    async def go() -> list:
        sp = Spool(tmp_path, max_bytes=3000, when_full="drop_oldest", host="h")
        await sp.open()
        # concurrent appends: all but the first are sealed in the spool thread, in the transaction
        for r in range(8):
            await asyncio.gather(*(sp.append("h/agent", [ev(10 * r + b)], {}) for b in range(3)))
        chain = _chain_of(sp, "h/agent")
        heads = await sp.chain_heads()
        await sp.close()
        return chain, heads

    chain, heads = run(go())
    assert any(e["event"] == "spool_overflow" for e, _ in chain)
    seqs = [e["seq"] for e, _ in chain]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no seq twice, none skipped among the kept
    for (prev_e, prev_raw), (e, _) in zip(chain, chain[1:], strict=False):
        assert e["prev_hash"] == hashlib.sha256(prev_raw).hexdigest(), (prev_e["seq"], e["seq"])
    assert heads["h/agent"] == (seqs[-1], hashlib.sha256(chain[-1][1]).hexdigest())


def test_a_big_batch_is_stored_in_rows_of_many_events_and_read_back_event_by_event(tmp_path, monkeypatch):
    from shipper.pipeline import spool_rows

    monkeypatch.setattr(spool_rows, "ROW_BYTES", 1000)  # ~3 events per row instead of ~400

    async def go() -> None:
        sp = Spool(tmp_path, gc_rows=0)
        await sp.open()
        await sp.register_sink("a")
        await sp.append("s", [ev(i) for i in range(10)], {})
        await sp.append("s", [ev(i) for i in range(10, 12)], {})
        db = sqlite3.connect(sp.path)
        rows = db.execute("SELECT last, n FROM batches ORDER BY last").fetchall()
        assert len(rows) > 2 and sum(n for _, n in rows) == 12 and rows[-1][0] == 12
        # the row numbers are contiguous: each row starts after the one before
        assert all(last - n == prev for (last, n), (prev, _) in zip(rows[1:], rows, strict=False))
        assert [e.seq for e in await sp.read_rows(3, 7)] == [3, 4, 5, 6, 7]
        # a read that stops inside the second row, and the next one resuming there
        inside = rows[0][0] + 1
        first, _ = await sp.read("a", 1 << 20, max_events=inside)
        assert [e.seq for e in first] == list(range(1, inside + 1))
        await sp.ack("a", inside)
        rest, _ = await sp.read("a", 1 << 20)
        assert [e.seq for e in rest] == list(range(inside + 1, 13))
        assert [e.event["message"] for e in rest] == [f"line {i}" for i in range(inside, 12)]
        # a row goes only when its last event is acknowledged: the second row stays whole
        kept = db.execute("SELECT last - n + 1, last FROM batches ORDER BY last").fetchall()
        assert kept[0] == (rows[0][0] + 1, rows[1][0]) and (await sp.stats()).newest_seq == 12
        await sp.ack("a", 12)
        assert (await sp.stats()).events == 0
        await sp.append("s", [ev(99)], {})  # numbers are never reused after a collection
        again, _ = await sp.read("a", 1 << 20)
        assert [e.seq for e in again] == [13]
        db.close()
        await sp.close()

    run(go())


def test_a_spool_of_one_row_per_event_is_moved_to_rows_of_many_without_loss(tmp_path):
    # the older spool layout: table events, one row per event
    db = sqlite3.connect(tmp_path / "spool.sqlite")
    db.executescript("""
        CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, added REAL NOT NULL,
                             size INTEGER NOT NULL, raw BLOB NOT NULL);
        CREATE TABLE sink_cursors (sink TEXT PRIMARY KEY, acked INTEGER NOT NULL);
    """)
    raws = [orjson.dumps({"message": f"old {i}", "seq": i}) for i in range(1, 8)]
    db.executemany("INSERT INTO events (added, size, raw) VALUES (1.0, ?, ?)", [(len(r), r) for r in raws])
    db.execute("DELETE FROM events WHERE seq <= 2")  # collected already
    db.execute("INSERT INTO sink_cursors VALUES ('a', 4)")
    db.commit()
    db.close()

    async def go() -> tuple[list[bytes], int, int]:
        sp = Spool(tmp_path)
        await sp.open()
        pending, _ = await sp.read("a", 1 << 20)
        await sp.append("s", [ev(1)], {})
        newest = sp.newest_seq
        events = (await sp.stats()).events
        await sp.close()
        return [e.raw for e in pending], newest, events

    pending, newest, events = run(go())
    assert pending == raws[4:]  # rows 5..7, byte for byte
    assert newest == 8 and events == 6  # the numbering goes on after the old rows
    tables = {r[0] for r in sqlite3.connect(tmp_path / "spool.sqlite").execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "events" not in tables and "batches" in tables


def test_a_migrated_spool_keeps_the_numbering_of_rows_already_collected(tmp_path):
    db = sqlite3.connect(tmp_path / "spool.sqlite")
    db.executescript("""
        CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, added REAL NOT NULL,
                             size INTEGER NOT NULL, raw BLOB NOT NULL);
        INSERT INTO events (added, size, raw) VALUES (1.0, 2, X'7B7D'), (1.0, 2, X'7B7D');
        DELETE FROM events;
    """)
    db.commit()
    db.close()

    async def go() -> int:
        sp = Spool(tmp_path)
        await sp.open()
        await sp.append("s", [ev(1)], {})
        top = sp.newest_seq
        await sp.close()
        return top

    assert run(go()) == 3


def test_a_read_only_reader_gets_the_pending_bytes_of_either_layout(tmp_path):
    from shipper.pipeline import spool_rows

    old = sqlite3.connect(tmp_path / "old.sqlite")
    old.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, added REAL, size INTEGER, raw BLOB)")
    old.executemany("INSERT INTO events (added, size, raw) VALUES (1.0, 2, ?)", [(b"{%d}" % i,) for i in range(4)])
    assert spool_rows.stored_raws_after(old, 2) == [b"{2}", b"{3}"]

    async def go() -> list[bytes]:
        sp = Spool(tmp_path / "new")
        await sp.open()
        await sp.append("s", [ev(i) for i in range(4)], {})
        await sp.close()
        return spool_rows.stored_raws_after(sqlite3.connect(sp.path), 2)

    assert [orjson.loads(r)["message"] for r in run(go())] == ["line 2", "line 3"]
