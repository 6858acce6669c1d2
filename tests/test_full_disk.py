"""A full disk under the spool and the appending sinks: retried, never torn, resumed by itself.

These tests need root (they mount a small tmpfs and fill it at a chosen moment): skipped
locally when not root, a failure in CI (CI runs as root).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from tmpfs import PAGE, fill, mounted_tmpfs

from parsers.events import loads, make_event
from shipper.api import RetryableError, SpooledEvent
from shipper.config import FileSinkConfig
from shipper.pipeline import state_guard
from shipper.pipeline.spool import Spool
from shipper.sinks.file import FileSink


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted at teardown."""
    with mounted_tmpfs(tmp_path, "4m") as mnt:
        yield mnt



def ev(i: int) -> dict:
    return make_event(timestamp="2026-11-25T17:00:00.000000Z", source="redis", category="other",
                      event="unrecognized", message=f"line {i} " + "x" * 60)


def test_file_sink_on_a_full_disk_never_leaves_a_torn_line_and_the_retry_writes_the_batch_whole(
        small_disk: Path) -> None:
    out = small_disk / "events.jsonl"
    first = [SpooledEvent(i, ev(i), orjson.dumps(ev(i))) for i in range(1, 41)]
    sink = FileSink(FileSinkConfig.model_validate({"type": "file", "path": str(out)}))
    asyncio.run(sink.start())
    asyncio.run(sink.send(first))
    # leave 100-400 bytes in the file's last page, then fill the rest of the disk
    size = out.stat().st_size
    pad = (PAGE - size % PAGE) - 250
    if pad < 0:
        pad += PAGE
    with open(out, "ab") as f:
        f.write(b"{}" + b" " * (pad - 3) + b"\n")
    filler = fill(small_disk)
    second = [SpooledEvent(i, ev(i), orjson.dumps(ev(i))) for i in range(41, 93)]
    before = out.stat().st_size
    with pytest.raises(RetryableError, match="No space left"):
        asyncio.run(sink.send(second))
    assert out.stat().st_size == before, "the fragment of the failed batch was truncated away"
    filler.unlink()
    asyncio.run(sink.send(second))
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b""
    events = [loads(x) for x in lines[:-1]]  # every line parses: none torn
    messages = [e["message"] for e in events if "message" in e]
    assert messages == [e.event["message"] for e in first + second]


def test_spool_append_and_ack_on_a_full_disk_wait_and_resume_when_space_returns(small_disk: Path) -> None:
    async def go() -> None:
        sp = Spool(small_disk / "state", synchronous="FULL")
        await sp.open()
        await sp.register_sink("a")
        await sp.append("h/file:x", [ev(i) for i in range(100)], {"file:1": {"offset": 100}})
        filler = fill(small_disk)
        big = [ev(i) for i in range(100, 3100)]
        task = asyncio.create_task(sp.append("h/file:x", big, {"file:1": {"offset": 3100}}))
        for _ in range(200):  # the append keeps retrying; the failure is visible meanwhile
            if "spool" in state_guard.failing():
                break
            await asyncio.sleep(0.05)
        assert "disk is full" in state_guard.failing()["spool"]
        assert not task.done()
        filler.unlink()
        await asyncio.wait_for(task, 60)
        assert "spool" not in state_guard.failing()
        batch, _ = await sp.read("a", 64 << 20)
        assert [b.event["message"] for b in batch] == [e["message"] for e in [ev(i) for i in range(3100)]]
        filler = fill(small_disk)
        ack = asyncio.create_task(sp.ack("a", batch[-1].seq))
        await asyncio.sleep(1.0)
        filler.unlink()
        await asyncio.wait_for(ack, 60)
        assert sp.pending("a") == 0
        await sp.close()
        reopened = Spool(small_disk / "state")
        await reopened.open()
        assert await reopened.positions("file:") == {"file:1": {"offset": 3100}}
        assert reopened.pending("a") == 0
        await reopened.close()

    asyncio.run(go())


def test_the_positions_mirror_on_a_full_disk_neither_raises_nor_stops_close(small_disk: Path) -> None:
    async def go() -> None:
        sp = Spool(small_disk / "state")
        await sp.open()
        await sp.append("h/file:x", [ev(1)], {"file:1": {"offset": 1}})
        filler = fill(small_disk)
        await sp.close()  # the forced mirror write fails on ENOSPC: logged, not raised
        assert "positions" in state_guard.failing()
        filler.unlink()
        state_guard.record_success("positions")

    asyncio.run(go())
