"""The embedded local sink: JSON Lines under state_dir/events, rotated by size, bounded by age and total."""

from __future__ import annotations

import asyncio
import os
import time

import orjson

from parsers.events import dumps, make_event
from shipper.api import SpooledEvent
from shipper.config import LocalSinkConfig
from shipper.sinks.local import LocalSink, event_files


def batch(start: int, n: int, pad: int = 0) -> list[SpooledEvent]:
    out = []
    for i in range(start, start + n):
        ev = make_event(timestamp="2026-11-25T17:00:00.000000Z", source="redis", category="other",
                        event="unrecognized", message=f"line {i}" + "x" * pad)
        out.append(SpooledEvent(i, ev, dumps(ev)))
    return out


def test_events_are_written_byte_for_byte_one_per_line(tmp_path):
    sink = LocalSink(LocalSinkConfig(type="local"), state_dir=str(tmp_path))

    async def go() -> None:
        await sink.start()
        await sink.send(batch(0, 3))
        await sink.close()

    asyncio.run(go())
    files = event_files(tmp_path / "events")
    assert len(files) == 1
    assert files[0].read_bytes() == b"".join(e.raw + b"\n" for e in batch(0, 3))


def test_a_new_file_starts_at_max_file_bytes_and_old_files_go_beyond_max_total_bytes(tmp_path):
    cfg = LocalSinkConfig(type="local", max_file_bytes=2000, max_total_bytes=5000)
    sink = LocalSink(cfg, state_dir=str(tmp_path))

    async def go() -> None:
        await sink.start()
        for k in range(30):
            await sink.send(batch(k * 3, 3, pad=100))
            time.sleep(0.002)  # distinct file names (microsecond stamps)

    asyncio.run(go())
    files = event_files(tmp_path / "events")
    assert len(files) > 1
    assert all(f.stat().st_size <= 2000 + 3 * 400 for f in files)
    assert sum(f.stat().st_size for f in files) <= 5000 + 2000
    # what is kept is the newest part of the trail, complete and in order
    msgs = [orjson.loads(x)["message"] for f in files for x in f.read_bytes().splitlines()]
    nums = [int(m.split()[1].rstrip("x")) for m in msgs]
    assert nums == list(range(nums[0], 90))


def test_files_older_than_retention_are_deleted_at_the_next_rotation(tmp_path):
    cfg = LocalSinkConfig(type="local", max_file_bytes=500, retention=3600)
    sink = LocalSink(cfg, state_dir=str(tmp_path))

    async def go() -> None:
        await sink.start()
        await sink.send(batch(0, 3, pad=200))
        old = event_files(tmp_path / "events")[0]
        os.utime(old, (time.time() - 7200, time.time() - 7200))
        time.sleep(0.002)
        await sink.send(batch(3, 3, pad=200))
        time.sleep(0.002)
        await sink.send(batch(6, 3, pad=200))
        assert not old.exists()

    asyncio.run(go())


def test_a_restart_appends_to_the_current_file_and_ends_a_torn_last_line(tmp_path):
    async def write(n0: int) -> None:
        sink = LocalSink(LocalSinkConfig(type="local"), state_dir=str(tmp_path))
        await sink.start()
        await sink.send(batch(n0, 2))

    asyncio.run(write(0))
    f = event_files(tmp_path / "events")[0]
    with open(f, "ab") as fh:
        fh.write(b'{"torn":')  # a crash mid-write
    asyncio.run(write(2))
    lines = f.read_bytes().splitlines()
    assert lines[2] == b'{"torn":'
    assert [orjson.loads(x)["message"] for x in lines[3:]] == ["line 2", "line 3"]
