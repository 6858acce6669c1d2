"""What the ``dead_lettered`` event says, and that events about refused ``dead_lettered`` events
stop after one round (shipper/pipeline/deadletters.py)."""

from __future__ import annotations

from pathlib import Path

from parsers.events import dumps, make_event
from shipper.api import SpooledEvent
from shipper.pipeline.deadletters import IDS_PER_EVENT, merge_seqs, note_fields

PATH = Path("/var/lib/redis-shipper/deadletter/loki.jsonl")
REASON = "loki HTTP 400: Max entry size '4000' bytes exceeded"


def spooled(row: int, ev: dict) -> SpooledEvent:
    return SpooledEvent(row, ev, dumps(ev))


def line(seq: int) -> dict:
    ev = make_event(timestamp="2026-11-25T18:57:04.076000Z", source="redis", category="persistence",
                    event="db_saved", message="DB saved on disk", offset=seq * 50, lines=1)
    return {**ev, "stream": "host/file:/var/log/redis.log", "seq": seq, "id": f"line-{seq}"}


def note(seq: int, fields: dict) -> dict:
    ev = make_event(timestamp="2026-12-07T11:00:00.000000Z", source="agent", category="agent",
                    event="dead_lettered", message="sink loki refused", fields=fields)
    return {**ev, "stream": "host/agent", "seq": seq, "id": f"note-{seq}"}


def test_refused_events_are_declared_by_id_and_seq_range():
    items = [(spooled(10 + i, line(i)), REASON) for i in (1, 2, 3, 7)]
    (f,) = note_fields("loki", items, PATH)
    assert f["ids"] == ["line-1", "line-2", "line-3", "line-7"] and f["events"] == 4
    assert f["seqs"] == {"host/file:/var/log/redis.log": [[1, 3], [7, 7]]}
    assert (f["first_spool_row"], f["last_spool_row"], f["deadletter_file"]) == (11, 17, str(PATH))
    assert "refused_notes" not in f


def test_many_refused_events_are_declared_by_several_small_events_that_name_each_once():
    items = [(spooled(i, line(i)), REASON) for i in range(1, 121)]
    notes = note_fields("loki", items, PATH)
    assert [n["events"] for n in notes] == [IDS_PER_EVENT, IDS_PER_EVENT, 120 - 2 * IDS_PER_EVENT]
    assert [i for n in notes for i in n["ids"]] == [f"line-{i}" for i in range(1, 121)]
    assert [n["seqs"]["host/file:/var/log/redis.log"] for n in notes] == [[[1, 50]], [[51, 100]], [[101, 120]]]
    assert all(len(dumps(note(1, n))) < 4000 for n in notes)  # the small tenant's max_line_size


def test_a_refused_dead_lettered_event_is_declared_with_what_it_declared():
    first = note_fields("loki", [(spooled(10 + i, line(i)), REASON) for i in range(1, 200)], PATH)
    (f,) = note_fields("loki", [(spooled(300, note(4, first[0])), REASON), (spooled(301, line(250)), REASON)], PATH)
    assert f["refused_notes"] == 1 and f["ids"] == ["note-4", "line-250"] and len(f["reason"]) <= 200
    assert f["seqs"] == {"host/agent": [[4, 4]], "host/file:/var/log/redis.log": [[1, 50], [250, 250]]}


def test_the_event_about_refused_dead_lettered_events_is_not_declared_again_when_refused():
    (first,) = note_fields("loki", [(spooled(1, line(1)), REASON)], PATH)
    (second,) = note_fields("loki", [(spooled(2, note(1, first)), REASON)], PATH)
    assert note_fields("loki", [(spooled(3, note(2, second)), REASON)], PATH) == []
    # beside another refused event, it is still declared (with that event)
    (third,) = note_fields("loki", [(spooled(3, note(2, second)), REASON), (spooled(4, line(9)), REASON)], PATH)
    assert third["seqs"]["host/file:/var/log/redis.log"] == [[1, 1], [9, 9]]


def test_merged_seq_ranges_join_overlaps_and_neighbours_and_ignore_anything_else():
    got = merge_seqs([{"a": [[1, 3], [10, 12]]}, {"a": [[4, 5], [11, 20]], "b": [[2, 2]]}, None, {"a": "x"},
                      {"c": [[1, "2"], [True, 3]]}])
    assert got == {"a": [[1, 5], [10, 20]], "b": [[2, 2]]}
