"""The batch-level shortcuts of the sink path give what the per-event path gives: the Loki
encoder's stream lookup by stream values, and the spool read-back's one parse per batch."""

from __future__ import annotations

import sqlite3
from datetime import UTC
from pathlib import Path

import orjson
import pytest

from parsers.events import dumps
from parsers.logfile import LogParser
from shipper.api import SpooledEvent
from shipper.pipeline import spool_rows
from shipper.sinks.loki import LokiEncoder

SAMPLES = Path(__file__).resolve().parent.parent / "sample-logs"


def real_events(name: str, labels: dict[str, str]) -> list[dict]:
    parser = LogParser(kind="auto", tz=UTC, year=2026)
    out: list[dict] = []
    offset = 0
    for line in (SAMPLES / name).read_bytes().splitlines():
        out.extend(parser.feed(line, offset))
        offset += len(line) + 1
    out.extend(parser.flush())
    for ev in out:
        ev["labels"] = dict(labels)
    return out


def test_events_whose_level_alternates_and_whose_labels_change_land_in_their_own_streams() -> None:
    evs = real_events("redis-7.0/replication-master.log", {"job": "redis", "instance": "a"}) \
        + real_events("sentinel-7.0/sentinel-1.log", {"job": "sentinel", "instance": "b"}) \
        + real_events("redis-7.0/replication-master.log", {"job": "redis", "instance": "a"})[:5]
    assert len({ev["level"] for ev in evs}) > 1
    batch = [SpooledEvent(i + 1, ev, dumps(ev)) for i, ev in enumerate(evs)]
    streams, rejected = LokiEncoder().group(batch)
    assert rejected == []
    placed = 0
    for st in streams:
        for _ns, i, line, _md in st.entries:
            ev = evs[i]
            assert st.labels == {**ev["labels"], "source": ev["source"], "level": ev["level"]}
            assert line == batch[i].raw.decode()
            placed += 1
    assert placed == len(evs)
    assert len(streams) == len({(ev["labels"]["job"], ev["source"], ev["level"]) for ev in evs})


def test_an_unhashable_stream_value_is_still_grouped_by_its_labels() -> None:
    evs = real_events("redis-7.0/replication-master.log", {"job": "redis"})[:3]
    evs[1]["level"] = ["not", "a", "label"]  # a list is no label value: the stream has no level
    batch = [SpooledEvent(i + 1, ev, dumps(ev)) for i, ev in enumerate(evs)]
    streams, _ = LokiEncoder().group(batch)
    by_index = {i: st.labels for st in streams for _ns, i, _line, _md in st.entries}
    assert "level" not in by_index[1]
    assert by_index[0]["level"] == evs[0]["level"]


def test_label_values_equal_in_python_but_not_as_text_get_their_own_streams() -> None:
    """1 == True == 1.0 in Python (one dict key), but they are the labels "1", "true" and "1.0"."""
    evs = real_events("redis-7.0/replication-master.log", {"job": "redis"})[:4]
    for ev, value in zip(evs, [1, True, 1.0, "1"], strict=True):
        ev["labels"] = {"job": "redis", "shard": value}
    batch = [SpooledEvent(i + 1, ev, dumps(ev)) for i, ev in enumerate(evs)]
    encoder = LokiEncoder()
    for _ in range(2):  # the second time from the encoder's cache
        streams, _ = encoder.group(batch)
        by_index = {i: st.labels["shard"] for st in streams for _ns, i, _line, _md in st.entries}
        assert by_index == {0: "1", 1: "true", 2: "1.0", 3: "1"}


def spool_with(raws: list[bytes]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.executescript(spool_rows.TABLE)
    for last, n, size, raw, _annex, codec in spool_rows.pack(raws, 0):
        db.execute("INSERT INTO batches (last, n, added, size, raw, codec) VALUES (?, ?, ?, ?, ?, ?)",
                   (last, n, 1.0, size, raw, codec))
    return db


def test_the_read_back_of_a_batch_parses_to_the_same_events_as_one_parse_per_event() -> None:
    raws = [dumps(ev) for ev in real_events("redis-7.0/replication-master.log", {"job": "redis"})]
    batch, total, _ = spool_rows.read_after(spool_with(raws), 3, 1 << 30, 100_000)
    assert [se.seq for se in batch] == list(range(4, len(raws) + 1))
    assert [se.event for se in batch] == [orjson.loads(r) for r in raws[3:]]
    assert [se.raw for se in batch] == raws[3:]
    assert total == sum(map(len, raws[3:]))


def test_a_corrupt_event_in_a_row_fails_the_read_back_as_its_own_parse_would() -> None:
    raws = [dumps(ev) for ev in real_events("redis-7.0/replication-master.log", {"job": "redis"})[:4]]
    raws[2] = b'{"a":1},{"b":2}'  # would join into one more value than events
    with pytest.raises(orjson.JSONDecodeError):
        spool_rows.read_after(spool_with(raws), 0, 1 << 30, 100_000)
    assert spool_rows.loads_all(raws[:2]) == [orjson.loads(r) for r in raws[:2]]
