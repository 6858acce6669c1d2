"""The ``type: file`` sink: the spooled bytes, one event per line, durable before the ack."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from parsers.events import dumps, loads
from parsers.logfile import LogParser
from shipper.api import RetryableError, SpooledEvent
from shipper.config import FileSinkConfig
from shipper.sinks.file import FileSink

from conftest import SAMPLE_LOGS


def _sink(path: Path) -> FileSink:
    return FileSink(FileSinkConfig.model_validate({"type": "file", "path": str(path)}))


def _spooled_sample_events() -> list[SpooledEvent]:
    """Real events (a crash report among them: a long multi-line event) as the spool holds them."""
    from datetime import UTC

    parser = LogParser(tz=UTC)
    events = []
    for p in sorted(SAMPLE_LOGS.glob("*/*.log"))[:6]:
        off = 0
        for line in p.read_bytes().split(b"\n")[:-1]:
            events.extend(parser.feed(line, off))
            off += len(line) + 1
        events.extend(parser.flush())
    return [SpooledEvent(i + 1, ev, dumps(ev)) for i, ev in enumerate(events)]


def test_file_sink_writes_each_spooled_event_byte_for_byte_on_its_own_line(tmp_path: Path) -> None:
    batch = _spooled_sample_events()
    assert len(batch) > 20
    out = tmp_path / "out" / "events.jsonl"
    sink = _sink(out)

    async def go() -> None:
        await sink.start()
        await sink.send(batch[:7])
        await sink.send(batch[7:])

    asyncio.run(go())
    data = out.read_bytes()
    assert data.endswith(b"\n")
    lines = data.split(b"\n")[:-1]
    assert lines == [e.raw for e in batch]
    assert [loads(x) for x in lines] == [e.event for e in batch]


def test_file_sink_empty_batch_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    out.write_bytes(b'{"a":1}\n')
    asyncio.run(_sink(out).send([]))
    assert out.read_bytes() == b'{"a":1}\n'


def test_file_sink_ends_a_torn_last_line_before_appending(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    out.write_bytes(b'{"a":1}\n{"b":')  # a crash in the middle of a write
    ev = SpooledEvent(1, {"x": 1}, b'{"x":1}')
    sink = _sink(out)

    async def go() -> None:
        await sink.start()
        await sink.send([ev])

    asyncio.run(go())
    assert out.read_bytes() == b'{"a":1}\n{"b":\n{"x":1}\n'


def test_file_sink_unwritable_path_is_a_retryable_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_bytes(b"")
    sink = _sink(blocker / "events.jsonl")
    with pytest.raises(RetryableError, match="cannot write"):
        asyncio.run(sink.send([SpooledEvent(1, {"x": 1}, b'{"x":1}')]))
