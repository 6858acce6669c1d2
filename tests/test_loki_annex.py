"""A Loki body built from the annexes the spool stored at seal time is byte for byte the body the
encoder builds from the parsed events (Loki deduplicates a replay only if it is the same), for
every event of sample-logs/ and for generated events; an event the annex cannot vouch for sends
its batch down the ordinary path."""

from __future__ import annotations

import asyncio
import calendar
import gzip
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from parsers.events import dumps
from parsers.logfile import LogParser
from shipper.api import SpooledEvent
from shipper.config import LokiSinkConfig
from shipper.pipeline import spool_rows
from shipper.pipeline.spool import Spool
from shipper.sinks.loki import LokiSink

SAMPLES = Path(__file__).resolve().parent.parent / "sample-logs"


def loki(**kw: Any) -> LokiSink:
    return LokiSink(LokiSinkConfig(type="loki", url="http://127.0.0.1:1", **kw))


def sample_events() -> list[dict[str, Any]]:
    """Every event of every log in sample-logs/, labelled as the runtime labels them."""
    out: list[dict[str, Any]] = []
    for path in sorted(SAMPLES.rglob("*.log")):
        parser = LogParser(kind="auto", tz=UTC, year=2026)
        offset = 0
        evs: list[dict[str, Any]] = []
        for line in path.read_bytes().splitlines():
            evs.extend(parser.feed(line, offset))
            offset += len(line) + 1
        evs.extend(parser.flush())
        for ev in evs:
            ev["labels"] = {"job": "redis", "instance": path.parent.name, "file_name": path.name}
        out.extend(evs)
    return out


def spooled_through(tmp: Path, sink: LokiSink, events: list[dict[str, Any]],
                    max_bytes: int = 1 << 40) -> list[SpooledEvent]:
    """``events`` appended to a real spool that stores ``sink``'s annexes, read back as the sink
    worker reads them."""

    async def go() -> list[SpooledEvent]:
        sp = Spool(tmp, host="h1")
        annexer = sink.annexer()
        assert annexer is not None
        sp.use_annexer(sink.name, annexer)
        await sp.open()
        await sp.register_sink(sink.name)
        for k in range(0, len(events), 500):
            await sp.append("h1/redis", events[k:k + 500], {})
        batch, _ = await sp.read(sink.name, max_bytes, max_events=1 << 30)
        await sp.close()
        return batch

    return asyncio.run(go())


def parsed(batch: list[SpooledEvent]) -> list[SpooledEvent]:
    """The same events as the ordinary path sees them: parsed from their bytes, no annex."""
    return [SpooledEvent(se.seq, orjson.loads(se.raw), se.raw) for se in batch]


def test_every_sample_log_event_gets_an_annex_and_the_same_body_gzip_and_uncompressed(tmp_path: Path) -> None:
    events = sample_events()
    assert len(events) > 1000
    sink = loki()
    batch = spooled_through(tmp_path, sink, events)
    assert len(batch) == len(events)
    assert all(se.annex for se in batch), "a plain event has an annex"
    fast = sink.encode(batch)
    assert all(se._event is None for se in batch), "the body was built without parsing the events"  # noqa: SLF001
    slow = loki().encoder.encode(parsed(batch))
    assert fast.body == slow.body
    assert (fast.headers, fast.rejected, fast.entries) == (slow.headers, slow.rejected, slow.entries)
    assert gzip.decompress(fast.body) == loki().encoder.build(parsed(batch))[0]


def test_batches_of_every_size_the_worker_reads_give_the_same_bodies(tmp_path: Path) -> None:
    events = sample_events()[:3000]
    sink = loki(stream_labels=["source", "level", "role"], structured_metadata=True)
    batch = spooled_through(tmp_path, sink, events)
    for size in (1, 7, 256, 2000):
        for k in range(0, len(batch), size * 5 + 1):
            part = batch[k:k + size]
            assert sink.encode(part).body == loki(stream_labels=["source", "level", "role"]).encode(parsed(part)).body


def test_without_structured_metadata_the_annexed_body_is_the_same(tmp_path: Path) -> None:
    events = sample_events()[:2000]
    sink = loki(structured_metadata=False)
    batch = spooled_through(tmp_path, sink, events)
    assert all(se.annex for se in batch)
    assert sink.encode(batch).body == loki(structured_metadata=False).encode(parsed(batch)).body


def test_an_event_without_a_usable_timestamp_sends_its_batch_down_the_ordinary_path_and_is_rejected(
        tmp_path: Path) -> None:
    events = sample_events()[:50]
    events[10]["timestamp"] = "yesterday at noon"
    del events[20]["timestamp"]
    sink = loki()
    batch = spooled_through(tmp_path, sink, events)
    assert batch[10].annex == b"" and batch[20].annex == b""
    enc = sink.encode(batch)
    assert [i for i, _ in enc.rejected] == [10, 20]
    assert enc.rejected[0][1].startswith("loki: event has no usable timestamp")
    assert enc.body == loki().encode(parsed(batch)).body and enc.entries == 48


def test_protobuf_has_no_annex() -> None:
    assert loki(encoding="protobuf").annexer() is None


def test_the_annex_never_holds_a_newline_or_a_tab_outside_its_separators(tmp_path: Path) -> None:
    events = sample_events()[:20]
    events[3]["labels"] = {"job": "a\tb\nc", "instance": "x"}
    events[4]["role"] = "m\n\t"
    batch = spooled_through(tmp_path, loki(), events)
    for se in batch:
        assert b"\n" not in se.annex and se.annex.count(b"\t") == 2  # type: ignore[union-attr]
    assert loki().encode(batch).body == loki().encode(parsed(batch)).body


# ---------------------------------------------------------------------------- generated events
_scalar = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True), st.text(max_size=6),
                    st.sampled_from(["", "warning", "notice", "0"]))
_value = st.one_of(_scalar, st.lists(_scalar, max_size=2), st.dictionaries(st.text(max_size=3), _scalar, max_size=2))
_label_name = st.one_of(st.text(max_size=6), st.sampled_from(["job", "1st", "a.b", "a_b", "level", "source", ""]))
_canonical_ts = st.datetimes(datetime(1971, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
_odd_ts = st.one_of(
    st.sampled_from(["2026-12-07T10:00:00.000001Z", "2026-12-07T09:59:59.999999Z", "2026-12-07T10:00:00+02:00",
                     "1969-12-31T23:59:59.000000Z", "2026-12-07 10:00:00", "2026-13-07T10:00:00.000000Z",
                     "not a time", ""]),
    st.integers(), st.none(),
)


def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any], one_in: int) -> st.SearchStrategy[Any]:
    """``odd`` once in ``one_in`` draws, else ``usual``: most generated events are plain (what the
    agent makes), the others odd, in any mix within a batch."""
    return st.integers(1, one_in).flatmap(lambda k: odd if k == 1 else usual)


_timestamp = mostly(_canonical_ts, _odd_ts, 30)
_plain_value = st.one_of(st.text(max_size=6), st.integers(-3, 3), st.none())
_field = mostly(_plain_value, _value, 40)
_labels = mostly(
    st.one_of(st.dictionaries(_label_name, st.text(max_size=4), max_size=20),
              st.dictionaries(_label_name, st.text(max_size=4), max_size=4)),
    st.one_of(st.dictionaries(_label_name, st.one_of(st.text(max_size=4), _scalar), max_size=20), _value),
    10,
)
_event = st.fixed_dictionaries(
    {"timestamp": _timestamp, "message": st.text(max_size=20)},
    optional={
        "labels": _labels,
        "source": mostly(st.sampled_from(["redis", "sentinel"]), _value, 20),
        "level": mostly(st.sampled_from(["warning", "notice", "verbose", ""]), _value, 20),
        "role": _field, "pid": _field, "category": _field, "event": _field, "origin": _field,
        "file": _field, "offset": _field,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(_event, min_size=1, max_size=25), order=st.randoms())
def test_generated_events_give_the_same_body_whether_annexed_or_not(tmp_path_factory: Any,
                                                                    events: list[dict[str, Any]], order: Any) -> None:
    order.shuffle(events)  # out-of-order timestamps within a stream
    events = [e for e in events if _dumpable(e)]
    if not events:
        return
    sink = loki()
    batch = spooled_through(tmp_path_factory.mktemp("spool"), sink, events)
    slow = loki().encode(parsed(batch))
    fast = sink.encode(batch)
    assert fast.body == slow.body
    assert fast.rejected == slow.rejected and fast.entries == slow.entries
    # and each annexed event alone, where its batch has only annexed events
    annexed = [se for se in batch if se.annex]
    event(f"annexed events: {min(len(annexed), 3)}+, rejected: {bool(slow.rejected)}")
    if annexed:
        assert sink.encode(annexed).body == loki().encode(parsed(annexed)).body


def test_more_than_fifteen_labels_overflow_to_metadata_the_same_way(tmp_path: Path) -> None:
    events = sample_events()[:30]
    for i, ev in enumerate(events):
        ev["labels"] = {f"l{k:02d}": f"v{k}{i % 3}" for k in range(18)}
    sink = loki()
    batch = spooled_through(tmp_path, sink, events)
    assert all(se.annex for se in batch)
    body = sink.encode(batch).body
    assert body == loki().encode(parsed(batch)).body
    first = orjson.loads(gzip.decompress(body))["streams"][0]
    assert len(first["stream"]) == 15 and "l17" in first["values"][0][2]


def _dumpable(ev: dict[str, Any]) -> bool:
    try:
        dumps(ev)
    except TypeError:
        return False
    return True


def test_a_spool_without_the_annex_column_is_migrated_and_its_rows_take_the_ordinary_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = sample_events()[:40]
    sink = loki()
    monkeypatch.setattr(spool_rows, "WRITE_CODEC", spool_rows.PLAIN)  # that agent stored rows plain

    async def write_old() -> None:
        sp = Spool(tmp_path, host="h1")  # no annexer: rows without annexes
        await sp.open()
        await sp.register_sink(sink.name)
        await sp.append("h1/redis", events[:20], {})
        await sp.close()

    asyncio.run(write_old())
    db = sqlite3.connect(tmp_path / "spool.sqlite", isolation_level=None)
    # the layout of a spool written before annexes (same row numbers, same AUTOINCREMENT counter)
    db.executescript("""
        BEGIN;
        CREATE TABLE old (last INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER NOT NULL, added REAL NOT NULL,
                          size INTEGER NOT NULL, raw BLOB NOT NULL);
        INSERT INTO old SELECT last, n, added, size, raw FROM batches;
        DROP TABLE batches;
        ALTER TABLE old RENAME TO batches;
        COMMIT;
    """)
    assert "annex" not in {r[1] for r in db.execute("PRAGMA table_info(batches)")}
    db.close()
    batch = spooled_through(tmp_path, sink, events[20:])
    assert [bool(se.annex) for se in batch] == [False] * 20 + [True] * 20
    assert sink.encode(batch).body == loki().encode(parsed(batch)).body
    assert sink.encode(batch[20:]).body == loki().encode(parsed(batch[20:])).body


def test_annexes_written_under_other_settings_are_dropped_when_the_spool_opens(tmp_path: Path) -> None:
    events = sample_events()[:40]
    old = loki(stream_labels=["source"])
    spooled_through(tmp_path, old, events[:20])
    new = loki(stream_labels=["source", "level"])
    batch = spooled_through(tmp_path, new, events[20:])
    assert [bool(se.annex) for se in batch] == [False] * 20 + [True] * 20
    assert new.encode(batch).body == loki().encode(parsed(batch)).body


def test_another_sink_reads_the_events_without_annexes(tmp_path: Path) -> None:
    events = sample_events()[:10]
    sink = loki()

    async def go() -> tuple[list[SpooledEvent], list[SpooledEvent]]:
        sp = Spool(tmp_path, host="h1")
        sp.use_annexer(sink.name, sink.annexer())  # type: ignore[arg-type]
        await sp.open()
        await sp.register_sink(sink.name)
        await sp.register_sink("local")
        await sp.append("h1/redis", events, {})
        mine, _ = await sp.read(sink.name, 1 << 30)
        other, _ = await sp.read("local", 1 << 30)
        await sp.close()
        return mine, other

    mine, other = asyncio.run(go())
    assert all(se.annex for se in mine) and all(se.annex is None for se in other)
    assert [se.raw for se in mine] == [se.raw for se in other]
    assert [se.event for se in mine] == [se.event for se in other]


# ---------------------------------------------------------------------------- timestamps
def reference_ns(ts: str) -> int:
    """A canonical timestamp's nanoseconds by the plain route: the six fields through timegm."""
    tt = (int(ts[0:4]), int(ts[5:7]), int(ts[8:10]), int(ts[11:13]), int(ts[14:16]), int(ts[17:19]))
    if not (1 <= tt[1] <= 12 and 1 <= tt[2] <= 31 and tt[3] < 24 and tt[4] < 60 and tt[5] < 61):
        raise ValueError(ts)
    if not ts[20:26].isdigit():
        raise ValueError(ts)
    return calendar.timegm(tt + (0, 0, 0)) * 1_000_000_000 + int(ts[20:26]) * 1000


_digit_or_odd = st.sampled_from(list("0123456789") * 4 + [" ", "-", "+", "x", "٣", "_"])
_canonical_shape = st.tuples(*[_digit_or_odd] * 19).map(
    lambda c: "{}{}{}{}-{}{}-{}{}T{}{}:{}{}:{}{}.{}{}{}{}{}Z".format(*c[:4], *c[4:6], *c[6:8], *c[8:10], *c[10:12],
                                                                *c[12:14], *c[14:19]))


@settings(max_examples=400, deadline=None)
@given(ts=st.one_of(_canonical_ts, _canonical_shape.map(lambda t: t[:26] + "0Z")))
def test_the_timestamp_fast_paths_agree_with_the_plain_computation(ts: str) -> None:
    from shipper.sinks.loki import timestamp_ns

    try:
        want: int | None = reference_ns(ts)
    except ValueError:
        want = None
    for _ in range(2):  # the minute's first (cache miss) and a later (cache hit) timestamp
        try:
            got: int | None = timestamp_ns(ts)
        except ValueError:
            got = None
        assert got == want
    if want is not None:
        ev = {"timestamp": ts, "labels": {"job": "t"}, "source": "redis"}
        raw = dumps(ev)
        annex = loki().annexer().annex(ev, raw)  # type: ignore[union-attr]
        assert annex.split(b"\t")[0] == str(want).encode()
        batch = [SpooledEvent(1, orjson.loads(raw), raw)]
        assert loki().encode(batch).entries == 1


def test_a_body_built_straight_from_the_stored_rows_is_the_body_of_the_batch_read_as_events(tmp_path: Path) -> None:
    events = sample_events()
    sink = loki()
    spooled_through(tmp_path, sink, events)  # rows of many events, with their annexes
    db = sqlite3.connect(tmp_path / "spool.sqlite")
    rows = db.execute("SELECT last, n FROM batches ORDER BY last").fetchall()
    assert len(rows) > 2 and max(n for _l, n in rows) > 100
    cursors = [0, 1, rows[0][0] - 1, rows[0][0], rows[0][0] + 7, rows[1][0] + 1, rows[-1][0] - 1]
    for after in cursors:
        for max_bytes, max_events in [(1 << 30, 1 << 30), (64 << 10, 1 << 30), (1, 1 << 30), (1 << 30, 333)]:
            batch, total, first_added = spool_rows.annexed_after(db, after, max_bytes, max_events)
            built = sink.encoder.encode_rows(spool_rows.annexed_rows_after(db, after), max_bytes, max_events)
            assert built is not None
            encoded, taken = built
            assert (taken.first, taken.last, taken.count, taken.size, taken.first_added) == (
                batch[0].seq, batch[-1].seq, len(batch), total, first_added)
            annexer = sink.annexer()
            assert annexer is not None
            from_events = sink.encode([SpooledEvent(se.seq, orjson.loads(se.raw), se.raw) for se in batch])
            assert gzip.decompress(encoded.body) == gzip.decompress(annexer.encode_annexed(batch).body) \
                == gzip.decompress(from_events.body)
    assert sink.encoder.encode_rows(spool_rows.annexed_rows_after(db, rows[-1][0]), 1 << 30, 1 << 30) is None
    db.close()


def test_a_batch_with_an_event_without_its_annex_is_not_built_from_the_rows(tmp_path: Path) -> None:
    events = sample_events()[:50]
    sink = loki()
    events[30]["timestamp"] = 1.5  # not plain: no annex for it; its batch takes the ordinary path
    spooled_through(tmp_path, sink, events)
    db = sqlite3.connect(tmp_path / "spool.sqlite")
    assert sink.encoder.encode_rows(spool_rows.annexed_rows_after(db, 0), 1 << 30, 1 << 30) is None
    built = sink.encoder.encode_rows(spool_rows.annexed_rows_after(db, 0), 1 << 30, 30)  # before it
    assert built is not None and built[1].count == 30
    db.close()


def test_consecutive_bodies_that_reuse_the_row_the_last_one_ended_in_are_the_same_bodies(tmp_path: Path) -> None:
    sink = loki()
    spooled_through(tmp_path, sink, sample_events())
    db = sqlite3.connect(tmp_path / "spool.sqlite")

    def bodies(keep: dict[int, Any] | None) -> list[tuple[bytes, int]]:
        out, after = [], 0
        while (built := sink.encoder.encode_rows(spool_rows.annexed_rows_after(db, after, keep), 50_000, 1 << 30)):
            out.append((gzip.decompress(built[0].body), built[1].count))
            after = built[1].last
        return out

    keep: dict[int, Any] = {}
    reused = bodies(keep)
    assert keep and len(reused) > 10
    assert reused == bodies(None)
    assert sum(n for _b, n in reused) == len(sample_events())
    db.close()
