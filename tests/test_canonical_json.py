"""The canonical bytes of an event (``parsers.events.dumps``): what the audit chain hashes and
every sink ships, so they must never change for the same event."""

from __future__ import annotations

import hashlib
from datetime import UTC
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.events import dumps, event_id
from parsers.logfile import LogParser

SAMPLES = Path(__file__).resolve().parent.parent / "sample-logs"
REFERENCE = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS  # the option dumps used before its fast path


def _sample_events() -> list[dict]:
    out = []
    for path in sorted(SAMPLES.glob("*/*.log")):
        parser = LogParser(kind="auto", tz=UTC, year=2026)
        for off, line in enumerate(path.read_bytes().splitlines()):
            out.extend(parser.feed(line, off))
        out.extend(parser.flush())
    return out


def test_every_sample_event_has_the_same_canonical_bytes_as_with_non_str_keys_allowed():
    events = _sample_events()
    assert len(events) > 1000
    for ev in events:
        ev.update({"labels": {"job": "redis", "instance": "redis://10.0.0.1:6379"}, "seq": 7, "host": "h"})
        assert dumps(ev) == orjson.dumps(ev, option=REFERENCE)


def test_a_key_that_is_not_a_string_is_written_as_one_not_refused():
    assert dumps({"fields": {1: "a", "b": 2}, "a": None}) == b'{"a":null,"fields":{"1":"a","b":2}}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=12))
def test_canonical_bytes_are_sorted_compact_json_for_any_string_keyed_event(ev):
    assert dumps(ev) == orjson.dumps(ev, option=REFERENCE)
    assert orjson.loads(dumps(ev)) == ev


def test_an_event_id_is_blake2b_128_of_origin_nul_position_and_stays_the_same_across_releases() -> None:
    # Elasticsearch's _id and the audit trail key on these: a new release must give the same ids
    assert event_id("file:dev-2049-ino-1234", "81") == hashlib.blake2b(
        b"file:dev-2049-ino-1234\0" b"81", digest_size=16).hexdigest()
    assert event_id("h1/redis", "seq:7") == "864a994ae6e49d20b9158854372ddec8"
    assert event_id("h\udc80", "seq:1") == hashlib.blake2b(b"h\xed\xb2\x80\0seq:1", digest_size=16).hexdigest()
