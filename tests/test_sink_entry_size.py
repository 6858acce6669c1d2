"""Every sink declares the largest event it takes (``max_entry_bytes``); an event over the
smallest of them is cut when it is sealed into the spool, never dead-lettered for its size.

The cut keeps valid UTF-8, says what it removed in ``fields.truncated_bytes`` (the follower's
field for an over-long line, added to what the follower already cut), is counted in
``redis_shipper_events_truncated_total``, and happens before the hash chain is computed, so
the chain covers the bytes every sink ships.
"""

from __future__ import annotations

import asyncio
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from parsers.events import dumps, make_event
from parsers.logfile import parse_lines
from shipper.config.sinks import ElasticsearchSinkConfig, FileSinkConfig, LocalSinkConfig, LokiSinkConfig
from shipper.observe import metrics
from shipper.pipeline.spool import GENESIS, Spool, chain_hash
from shipper.sinks import limits

from conftest import SAMPLE_LOGS

REAL_LINE = "DB saved on disk"


def crash_event() -> dict[str, Any]:
    evs = parse_lines((SAMPLE_LOGS / "redis-7.0/crash-segfault.log").read_bytes(), tz=UTC)
    (crash,) = [e for e in evs if e["event"] == "crash_report"]
    return crash


def truncated_count(source: str) -> float:
    return metrics.REGISTRY.get_sample_value("redis_shipper_events_truncated_total", {"source": source}) or 0.0


def line_event(message: str, **fields: Any) -> dict[str, Any]:
    return make_event(timestamp="2026-11-25T17:36:54.151000Z", source="redis", category="persistence",
                      event="rdb_saved", level="notice", message=message, fields=dict(fields), offset=0, lines=1)


# --------------------------------------------------------------------------- what each sink declares


def test_each_sink_type_declares_its_default_and_a_config_can_match_its_server() -> None:
    sinks = [LokiSinkConfig(type="loki", url="http://127.0.0.1:3100"),
             LokiSinkConfig(type="loki", url="http://127.0.0.1:3101", max_entry_bytes="64KiB"),
             ElasticsearchSinkConfig(type="elasticsearch", url="http://127.0.0.1:9200"),
             FileSinkConfig(type="file", path="/tmp/x.jsonl"), LocalSinkConfig(type="local")]
    assert [s.max_entry_bytes for s in sinks] == [262_144, 65_536, 1 << 20, 1 << 20, 1 << 20]
    assert limits.spool_limit(sinks) == 65_536  # the smallest: one set of bytes fits every sink
    assert limits.spool_limit([]) == limits.FILE_MAX_ENTRY_BYTES


def test_a_max_entry_bytes_too_small_for_any_event_is_refused() -> None:
    with pytest.raises(ValidationError):
        LokiSinkConfig(type="loki", url="http://127.0.0.1:3100", max_entry_bytes=100)


# --------------------------------------------------------------------------- the cut


def test_an_event_under_the_limit_is_left_byte_for_byte_alone() -> None:
    ev = line_event(REAL_LINE)
    raw = dumps(ev)
    assert limits.fit(ev, raw, len(raw)) is raw and "truncated_bytes" not in ev["fields"]


def test_a_600_kb_line_is_cut_to_the_limit_and_says_how_many_bytes_went() -> None:
    message = "x" * 600_000
    ev = line_event(message)
    raw = dumps(ev)
    before = truncated_count("redis")
    out = limits.fit(ev, raw, limits.LOKI_MAX_ENTRY_BYTES)
    assert limits.LOKI_MAX_ENTRY_BYTES - 100 < len(out) <= limits.LOKI_MAX_ENTRY_BYTES
    got = orjson.loads(out)
    assert got == ev  # the event object matches the bytes it now has
    assert message.startswith(got["message"])  # the head of the text is kept, nothing added
    assert got["fields"]["truncated_bytes"] == len(message) - len(got["message"])
    assert truncated_count("redis") == before + 1


def test_a_cut_through_multibyte_characters_keeps_valid_utf8_and_counts_bytes_not_characters() -> None:
    message = "é€😀" * 40_000  # 2 + 3 + 4 bytes: any cut point may fall inside a character
    for limit in range(20_000, 20_009):
        ev = line_event(message)
        out = limits.fit(ev, dumps(ev), limit)
        assert len(out) <= limit
        got = orjson.loads(out)  # orjson refuses invalid UTF-8
        assert message.startswith(got["message"])
        assert got["fields"]["truncated_bytes"] == len(message.encode()) - len(got["message"].encode())


def test_text_with_escapes_is_cut_by_its_json_size() -> None:
    message = "\x01\n\t\"\\" * 50_000  # 6 + 2 + 2 + 2 + 2 JSON bytes for 5 UTF-8 bytes
    ev = line_event(message)
    out = limits.fit(ev, dumps(ev), 30_000)
    assert len(out) <= 30_000
    assert message.startswith(orjson.loads(out)["message"])


def test_bytes_the_follower_already_cut_are_added_to_not_replaced() -> None:
    ev = line_event("y" * 300_000, truncated_bytes=5_000)  # the reader kept 1 MiB of a longer line
    out = orjson.loads(limits.fit(ev, dumps(ev), limits.LOKI_MAX_ENTRY_BYTES))
    assert out["fields"]["truncated_bytes"] == 5_000 + 300_000 - len(out["message"])


def test_a_real_crash_report_is_cut_in_its_longest_text_and_keeps_its_head_and_findings() -> None:
    ev = crash_event()
    whole = dict(ev, fields=dict(ev["fields"]))
    out = orjson.loads(limits.fit(ev, dumps(ev), 4096))
    f = out["fields"]
    assert len(dumps(out)) <= 4096
    assert whole["fields"]["report"].startswith(f["report"]) and len(f["report"]) < len(whole["fields"]["report"])
    # the short findings are untouched: the cut takes the longest texts first
    assert f["signal"] == 11 and f["crashed_by"] == whole["fields"]["crashed_by"] and out["message"] == whole["message"]
    cut = sum(len(whole["fields"][k].encode()) - len(f[k].encode()) for k in ("report", "stack_trace"))
    assert f["truncated_bytes"] == cut


def test_an_event_of_many_small_fields_keeps_only_the_count_of_what_went() -> None:
    fields = {f"k{i}": i for i in range(5_000)}  # no text to cut: numbers only
    ev = line_event(REAL_LINE, **fields)
    out = orjson.loads(limits.fit(ev, dumps(ev), 2048))
    assert len(dumps(out)) <= 2048
    assert list(out["fields"]) == ["truncated_bytes"] and out["fields"]["truncated_bytes"] > 40_000


# --------------------------------------------------------------------------- in the spool, before the chain


def test_the_spool_cuts_before_sealing_so_the_chain_hashes_the_bytes_the_sinks_get(tmp_path: Path) -> None:
    async def go() -> list[bytes]:
        sp = Spool(tmp_path, max_event_bytes=limits.LOKI_MAX_ENTRY_BYTES)
        await sp.open()
        await sp.register_sink("loki")
        await sp.append("db1/file:a.log", [line_event(REAL_LINE), line_event("z" * 600_000), line_event(REAL_LINE)], {})
        rows, _ = await sp.read("loki", 10 << 20)
        await sp.close()
        return [r.raw for r in rows]

    raws = asyncio.run(go())
    assert [len(r) <= limits.LOKI_MAX_ENTRY_BYTES for r in raws] == [True, True, True]
    evs = [orjson.loads(r) for r in raws]
    assert evs[1]["fields"]["truncated_bytes"] > 330_000 and "truncated_bytes" not in evs[2]["fields"]
    assert evs[0]["prev_hash"] == GENESIS
    assert [e["prev_hash"] for e in evs[1:]] == [chain_hash(r) for r in raws[:-1]]
