"""FileSource scenarios, each a rotation or failure mode from the issue, on real files.

The agent runs against the fake runtime of test_files_harness (events and checkpoints
committed together, like the spool does); "restart" builds a new FileSource from what was
committed, exactly what the real runtime hands it.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
from pathlib import Path
from typing import Any

from test_files_harness import Agent, FakeRuntime, file_config

from parsers.events import event_id
from parsers.logfile import parse_lines
from shipper.observe.metrics import DATA_GAP_BYTES, DATA_GAPS, REGISTRY, ROTATIONS

from conftest import SAMPLE_LOGS

SAMPLE = SAMPLE_LOGS / "redis-7.0" / "replication-master.log"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def write_lines(path: Path, lines: list[str]) -> None:
    with open(path, "ab") as f:  # Redis-like: open, append, close
        f.write("".join(x + "\n" for x in lines).encode())


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_rename_rotation_drains_a_late_write_to_the_old_file(tmp_path: Path):
    log = tmp_path / "redis.log"
    write_lines(log, [f"a{i}" for i in range(100)])

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)), rotate_wait=0.5)
        agent.start()
        assert await agent.wait_for(lambda: len(agent.rt.lines()) == 100)
        before = metric("redis_shipper_file_rotations_total", path=str(log), kind="rename")
        log.rename(tmp_path / "redis.log.1")
        write_lines(log, ["b0"])
        await asyncio.sleep(0.1)
        write_lines(tmp_path / "redis.log.1", ["a-late"])  # a writer still holding the old file
        assert await agent.wait_for(lambda: {"b0", "a-late"} <= set(agent.rt.lines()))
        assert metric("redis_shipper_file_rotations_total", path=str(log), kind="rename") == before + 1
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert sorted(rt.lines()) == sorted([f"a{i}" for i in range(100)] + ["a-late", "b0"])
    late = next(e for e in rt.events if e["message"] == "a-late")
    first = next(e for e in rt.events if e["message"] == "a0")
    assert late["origin"] == first["origin"] and late["file"].endswith("redis.log.1")


def test_copytruncate_while_down_continues_in_the_copy_and_reads_the_new_file_whole(tmp_path: Path):
    log = tmp_path / "redis.log"
    write_lines(log, [f"a{i}" for i in range(50)])

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)))
        agent.start()
        assert await agent.wait_for(lambda: len(agent.rt.lines()) == 50)
        await agent.stop()
        write_lines(log, [f"a{i}" for i in range(50, 80)])  # written while the agent is down
        shutil.copyfile(log, tmp_path / "redis.log.1")
        with open(log, "r+b") as f:
            f.truncate(0)
        write_lines(log, ["b0", "b1"])
        agent.start()
        assert await agent.wait_for(lambda: len(agent.rt.lines()) >= 82)
        await asyncio.sleep(0.2)
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert rt.lines() == [f"a{i}" for i in range(80)] + ["b0", "b1"]  # none twice, none lost, in order
    origins = {e["message"][0]: e["origin"] for e in rt.events}
    assert origins["a"] != origins["b"]
    assert len({e["origin"] for e in rt.events if e["message"].startswith("a")}) == 1
    assert not rt.gaps()


def test_copytruncate_while_running_lines_before_the_copy_are_read_once(tmp_path: Path):
    log = tmp_path / "redis.log"

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)))
        write_lines(log, ["x0"])
        agent.start()
        assert await agent.wait_for(lambda: agent.rt.lines() == ["x0"])
        for gen in range(5):
            write_lines(log, [f"g{gen}-{i}" for i in range(200)])
            for i in range(gen, 0, -1):  # logrotate shifts the older copies first
                os.rename(tmp_path / f"redis.log.{i}", tmp_path / f"redis.log.{i + 1}")
            shutil.copyfile(log, tmp_path / "redis.log.1")
            with open(log, "r+b") as f:
                f.truncate(0)
            write_lines(log, [f"n{gen}"])
            await asyncio.sleep(0.15)
        assert await agent.wait_for(lambda: "n4" in agent.rt.lines())
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    got = rt.lines()
    assert len(got) == len(set(got))
    assert set(got) == {"x0"} | {f"g{g}-{i}" for g in range(5) for i in range(200)} | {f"n{g}" for g in range(5)}


def _count_discoveries(monkeypatch: Any) -> list[int]:
    """Counts the follower's directory listings (one per discovery pass), so a test can wait
    until the follower has certainly looked at the files, instead of sleeping."""
    from shipper.sources.files import paths as source_mod

    calls = [0]
    real = source_mod.siblings

    def counting(*args: Any, **kw: Any) -> list[str]:
        calls[0] += 1
        return real(*args, **kw)

    monkeypatch.setattr(source_mod, "siblings", counting)
    return calls


def _logrotate_creates_the_copy(path: Path) -> int:
    """What logrotate's copytruncate does first (createOutputFile): create the copy, empty.
    It writes the copy only after fchmod/fsetxattr; a loaded machine can stall it right here."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def _logrotate_copies_and_truncates(fd: int, log: Path) -> None:
    os.write(fd, log.read_bytes())
    os.fsync(fd)
    os.close(fd)
    with open(log, "r+b") as f:
        f.truncate(0)


def test_a_copytruncate_copy_seen_while_still_empty_is_not_read_again_from_its_first_byte(
    tmp_path: Path, monkeypatch: Any
):
    log = tmp_path / "redis.log"
    before = [f"a{i}" for i in range(100)]
    write_lines(log, before)
    looked = _count_discoveries(monkeypatch)

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)))
        agent.start()
        assert await agent.wait_for(lambda: agent.rt.lines() == before)
        fd = _logrotate_creates_the_copy(tmp_path / "redis.log.1")
        seen = looked[0]
        assert await agent.wait_for(lambda: looked[0] >= seen + 2)  # it saw the empty copy
        _logrotate_copies_and_truncates(fd, log)
        write_lines(log, ["b0"])
        assert await agent.wait_for(lambda: "b0" in agent.rt.lines())
        seen = looked[0]
        assert await agent.wait_for(lambda: looked[0] >= seen + 10)  # time to read the copy twice
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert sorted(rt.lines()) == sorted([*before, "b0"])
    assert rt.gaps() == []


def test_a_copytruncate_copy_still_empty_at_startup_is_not_read_again_from_its_first_byte(
    tmp_path: Path, monkeypatch: Any
):
    log = tmp_path / "redis.log"
    before = [f"a{i}" for i in range(100)]
    write_lines(log, before)
    looked = _count_discoveries(monkeypatch)

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)))
        agent.start()
        assert await agent.wait_for(lambda: agent.rt.lines() == before)
        await agent.stop()
        fd = _logrotate_creates_the_copy(tmp_path / "redis.log.1")
        agent.start()
        seen = looked[0]
        assert await agent.wait_for(lambda: looked[0] >= seen + 2)
        _logrotate_copies_and_truncates(fd, log)
        write_lines(log, ["b0"])
        assert await agent.wait_for(lambda: "b0" in agent.rt.lines())
        seen = looked[0]
        assert await agent.wait_for(lambda: looked[0] >= seen + 10)
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert sorted(rt.lines()) == sorted([*before, "b0"])
    assert rt.gaps() == []


def test_a_copytruncate_between_a_read_and_the_head_update_is_still_seen(tmp_path: Path, monkeypatch: Any):
    """The stream remembers its first bytes after a read. If logrotate copies and truncates
    the file between that read and the update, the stream must keep the bytes it read as its
    head: with the new content's head it would miss the truncation, read on in the new content
    from the old offset (a fragment, lost lines) and take the copy for a new file (duplicates)."""
    from shipper.sources.files import follower as follower_mod

    log = tmp_path / "redis.log"
    log.write_bytes(b"")  # followed from empty: the head grows from the first read
    first = [f"a{i}" for i in range(5)]
    after = [f"b{i} written after the copytruncate, longer than the lines before it" for i in range(5)]
    armed = [True]
    real = follower_mod.Stream._extend_head

    def copytruncate_right_after_the_read(self: Any) -> None:
        if armed[0] and self.splitter.end_offset > 0:
            armed[0] = False
            shutil.copyfile(log, tmp_path / "redis.log.1")
            with open(log, "r+b") as f:
                f.truncate(0)
            write_lines(log, after)
        real(self)

    monkeypatch.setattr(follower_mod.Stream, "_extend_head", copytruncate_right_after_the_read)
    looked = _count_discoveries(monkeypatch)

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)))
        agent.start()
        assert await agent.wait_for(lambda: looked[0] > 0)
        write_lines(log, first)
        await agent.wait_for(lambda: set(first + after) <= set(agent.rt.lines()), 5)
        seen = looked[0]
        assert await agent.wait_for(lambda: looked[0] >= seen + 10)
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert not armed[0]
    assert sorted(rt.lines()) == sorted(first + after)


def test_a_copytruncate_right_after_the_live_file_was_checked_is_still_seen(tmp_path: Path, monkeypatch: Any):
    """One discovery pass checks the live file, then lists the rotated files. A copytruncate
    between the two, on a file still shorter than the fingerprint, leaves a copy that starts
    with the stream's bytes but is longer than what the stream knows: it is the stream's copy
    (its own file lost those bytes), not a new file to read from byte 0."""
    from shipper.sources.files import paths as source_mod

    log = tmp_path / "redis.log"
    write_lines(log, ["a0", "a1", "a2"])
    armed = [False]
    real = source_mod.siblings

    def copytruncate_before_the_listing(live: str, patterns: Any, *, compressed: bool = False) -> list[str]:
        if armed[0] and not compressed:
            armed[0] = False
            write_lines(log, ["a3", "a4", "a5"])
            shutil.copyfile(log, tmp_path / "redis.log.1")
            with open(log, "r+b") as f:
                f.truncate(0)
        return real(live, patterns, compressed=compressed)

    monkeypatch.setattr(source_mod, "siblings", copytruncate_before_the_listing)
    looked = _count_discoveries(monkeypatch)

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)))
        agent.start()
        assert await agent.wait_for(lambda: len(agent.rt.lines()) == 3)
        armed[0] = True
        assert await agent.wait_for(lambda: not armed[0])
        write_lines(log, ["b0"])
        assert await agent.wait_for(lambda: "b0" in agent.rt.lines())
        seen = looked[0]
        assert await agent.wait_for(lambda: looked[0] >= seen + 10)
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert sorted(rt.lines()) == ["a0", "a1", "a2", "a3", "a4", "a5", "b0"]
    a3 = next(e for e in rt.events if e["message"] == "a3")
    a0 = next(e for e in rt.events if e["message"] == "a0")
    assert a3["origin"] == a0["origin"] and a3["file"].endswith("redis.log.1")


def test_a_copytruncate_copy_shorter_than_what_was_read_is_recognised_by_its_bytes(tmp_path: Path, monkeypatch: Any):
    """The follower read a line written between logrotate's copy and its truncate, so the copy
    is shorter than the stream's head and its checksum cannot match: the copy's bytes, a prefix
    of what the stream read, still say it is the stream's copy and holds nothing new."""
    log = tmp_path / "redis.log"
    write_lines(log, ["a0", "a1"])
    looked = _count_discoveries(monkeypatch)

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)))
        agent.start()
        assert await agent.wait_for(lambda: agent.rt.lines() == ["a0", "a1"])
        hidden = tmp_path / "copy-in-progress"  # not a rotated name: the follower cannot list it early
        shutil.copyfile(log, hidden)
        write_lines(log, ["a2"])  # in the race window, and read
        assert await agent.wait_for(lambda: agent.rt.lines() == ["a0", "a1", "a2"])
        os.rename(hidden, tmp_path / "redis.log.1")  # the copy (no await: the follower sees both
        with open(log, "r+b") as f:                  # steps at once, as if it slept through them)
            f.truncate(0)
        write_lines(log, ["b0"])
        assert await agent.wait_for(lambda: "b0" in agent.rt.lines())
        await agent.stop()
        agent.start()  # a restart must not take the copy for a new file either
        write_lines(log, ["b1"])
        assert await agent.wait_for(lambda: "b1" in agent.rt.lines())
        seen = looked[0]
        assert await agent.wait_for(lambda: looked[0] >= seen + 10)
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert rt.lines() == ["a0", "a1", "a2", "b0", "b1"]
    assert rt.gaps() == []


def test_a_copytruncate_copy_shorter_than_what_was_read_is_recognised_after_a_restart(
    tmp_path: Path, monkeypatch: Any
):
    """As above, but the agent stopped before it saw the truncation: only the checkpoint is
    left, and it keeps the head's bytes (not just their checksum) for exactly this."""
    log = tmp_path / "redis.log"
    write_lines(log, ["a0", "a1"])
    looked = _count_discoveries(monkeypatch)

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)))
        agent.start()
        assert await agent.wait_for(lambda: agent.rt.lines() == ["a0", "a1"])
        shutil.copyfile(log, tmp_path / "redis.log.1")
        write_lines(log, ["a2"])  # in the race window, and read
        assert await agent.wait_for(lambda: agent.rt.lines() == ["a0", "a1", "a2"])
        await agent.stop()
        with open(log, "r+b") as f:
            f.truncate(0)
        write_lines(log, ["b0"])
        agent.start()
        assert await agent.wait_for(lambda: "b0" in agent.rt.lines())
        seen = looked[0]
        assert await agent.wait_for(lambda: looked[0] >= seen + 10)
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert rt.lines() == ["a0", "a1", "a2", "b0"]
    assert rt.gaps() == []


def test_a_file_the_writer_recreated_before_logrotate_create_is_read_from_its_backup_name(tmp_path: Path):
    """logrotate ``create`` renames the log, then creates a new one with O_EXCL. A writer that
    reopens its log for every line (Redis does) can create it in between; logrotate then renames
    that file to ``<name>-YYYYMMDDHH.backup`` and creates its own. Lines in the backup reached the
    disk: they must arrive, even if the follower never saw that file under the live name."""
    log = tmp_path / "redis.log"
    write_lines(log, [f"a{i}" for i in range(10)])

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)))
        agent.start()
        assert await agent.wait_for(lambda: len(agent.rt.lines()) == 10)
        # no await in between: the follower sees only the end result, as when it is slow
        os.rename(log, tmp_path / "redis.log.1")  # logrotate: rename
        write_lines(log, [f"w{i}" for i in range(5)])  # the writer recreates the log
        os.rename(log, tmp_path / "redis.log-2026112520.backup")  # logrotate: "already exists"
        os.close(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640))  # logrotate: create
        write_lines(log, ["n0"])
        want = {f"a{i}" for i in range(10)} | {f"w{i}" for i in range(5)} | {"n0"}
        assert await agent.wait_for(lambda: want <= set(agent.rt.lines()))
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert sorted(rt.lines()) == sorted([f"a{i}" for i in range(10)] + [f"w{i}" for i in range(5)] + ["n0"])


def _copy_ending_mid_line_then_truncate(log: Path, copy: Path, cut_from_end: int) -> None:
    """logrotate's copy read the file while a write was landing (a line across a page boundary
    is visible half-written for a moment): the copy ends mid-line; the truncate then waits for
    the write to finish and removes the whole line from the live file."""
    data = log.read_bytes()
    copy.write_bytes(data[: len(data) - cut_from_end])
    with open(log, "r+b") as f:
        f.truncate(0)


def test_a_copy_ending_mid_line_behind_the_reader_ships_the_fragment_once_flagged_partial(tmp_path: Path):
    log = tmp_path / "redis.log"
    write_lines(log, [f"a{i}" for i in range(5)])

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)))
        agent.start()
        assert await agent.wait_for(lambda: len(agent.rt.lines()) == 5)
        write_lines(log, ["a5", "a6-cut-by-the-copy"])  # not read yet: all at once below
        _copy_ending_mid_line_then_truncate(log, tmp_path / "redis.log.1", len("by-the-copy\n"))
        write_lines(log, ["b0"])
        assert await agent.wait_for(lambda: any(e["fields"]["partial"] for e in agent.rt.events))
        assert await agent.wait_for(lambda: "b0" in agent.rt.lines())
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    whole = [e["message"] for e in rt.events if not e["fields"]["partial"]]
    partial = [e["message"] for e in rt.events if e["fields"]["partial"]]
    assert sorted(whole) == sorted([f"a{i}" for i in range(6)] + ["b0"])
    assert partial == ["a6-cut-"]  # the rest of the line is nowhere on disk: the fragment, once


def test_a_copy_ending_mid_line_before_what_was_read_adds_nothing(tmp_path: Path, monkeypatch: Any):
    log = tmp_path / "redis.log"
    write_lines(log, [f"a{i}" for i in range(5)])
    looked = _count_discoveries(monkeypatch)

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)))
        agent.start()
        write_lines(log, ["a5", "a6-cut-by-the-copy"])
        assert await agent.wait_for(lambda: len(agent.rt.lines()) == 7)  # read before the truncate
        _copy_ending_mid_line_then_truncate(log, tmp_path / "redis.log.1", len("by-the-copy\n"))
        write_lines(log, ["b0"])
        assert await agent.wait_for(lambda: "b0" in agent.rt.lines())
        seen = looked[0]
        assert await agent.wait_for(lambda: looked[0] >= seen + 15)  # past rotate_wait: the copy is finished
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert sorted(rt.lines()) == sorted([f"a{i}" for i in range(6)] + ["a6-cut-by-the-copy", "b0"])
    assert not any(e["fields"]["partial"] for e in rt.events)


def test_a_checkpoint_written_before_it_kept_the_head_bytes_still_resumes(tmp_path: Path):
    log = tmp_path / "redis.log"
    write_lines(log, ["a0", "a1"])

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)))
        agent.start()
        assert await agent.wait_for(lambda: agent.rt.lines() == ["a0", "a1"])
        await agent.stop()
        stripped = 0
        for value in agent.rt.committed.values():
            if isinstance(value, dict) and "start" in value:
                del value["start"]
                stripped += 1
        assert stripped
        write_lines(log, ["a2"])
        agent.start()
        assert await agent.wait_for(lambda: "a2" in agent.rt.lines())
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert rt.lines() == ["a0", "a1", "a2"]


def test_rotated_and_compressed_while_down_is_a_data_gap_with_the_exact_byte_range(tmp_path: Path):
    log = tmp_path / "redis.log"
    write_lines(log, [f"a{i}" for i in range(10)])

    async def scenario() -> tuple[FakeRuntime, int, int]:
        agent = Agent(file_config(str(log)))
        agent.start()
        assert await agent.wait_for(lambda: len(agent.rt.lines()) == 10)
        await agent.stop()
        read_up_to = log.stat().st_size
        write_lines(log, [f"lost{i}" for i in range(7)])
        total = log.stat().st_size
        with open(log, "rb") as src, gzip.open(str(tmp_path / "redis.log.1.gz"), "wb") as dst:  # compress, no delay
            shutil.copyfileobj(src, dst)
        log.unlink()
        write_lines(log, ["new0"])
        agent.start()
        assert await agent.wait_for(lambda: "new0" in agent.rt.lines() and agent.rt.gaps())
        await agent.stop()
        return agent.rt, read_up_to, total

    gaps_before = metric("redis_shipper_data_gaps_total", path=str(log))
    bytes_before = metric("redis_shipper_data_gap_bytes_total", path=str(log))
    rt, start, end = run(scenario())
    (gap,) = rt.gaps()
    assert gap["source"] == "agent" and gap["level"] == "warning" and gap["category"] == "other"
    assert gap["fields"] == {"file": str(tmp_path / "redis.log.1.gz"), "start": start, "end": end,
                             "bytes": end - start, "reason": "rotated_compressed"}
    assert metric("redis_shipper_data_gaps_total", path=str(log)) == gaps_before + 1
    assert metric("redis_shipper_data_gap_bytes_total", path=str(log)) == bytes_before + end - start
    assert DATA_GAPS is not None and DATA_GAP_BYTES is not None
    assert "lost0" not in rt.lines() and "new0" in rt.lines()


def test_truncation_that_overtook_the_reader_is_a_data_gap(tmp_path: Path):
    log = tmp_path / "redis.log"
    write_lines(log, [f"a{i:04d}" for i in range(3000)])

    async def scenario() -> FakeRuntime:
        rt = FakeRuntime()
        gate = asyncio.Event()
        emit = rt.emit

        async def slow_emit(batch: Any) -> None:  # a sink that blocks after the first batch
            if rt.batches:
                await gate.wait()
            await emit(batch)

        rt.emit = slow_emit  # type: ignore[method-assign]
        agent = Agent(file_config(str(log), max_batch_events=100, read_chunk=600), rt)
        agent.start()
        assert await agent.wait_for(lambda: len(rt.batches) >= 1)
        await asyncio.sleep(0.1)  # it has seen the file's size, and is stuck in emit
        with open(log, "r+b") as f:
            f.truncate(0)
        write_lines(log, ["after"])
        gate.set()
        assert await agent.wait_for(lambda: "after" in rt.lines() and rt.gaps())
        await agent.stop()
        return rt

    rt = run(scenario())
    (gap,) = rt.gaps()
    f = gap["fields"]
    assert f["reason"] == "truncated" and f["end"] == 3000 * 6 and f["bytes"] == f["end"] - f["start"] > 0
    delivered = [e for e in rt.events if e.get("event") == "line" and e["origin"] == gap["origin"]]
    assert max(e["offset"] for e in delivered) < f["start"]  # never claims a delivered line
    assert len(delivered) * 6 == f["start"]  # and everything before it was delivered


def test_start_at_end_then_a_restart_resumes_from_the_checkpoint_not_the_end(tmp_path: Path):
    log = tmp_path / "redis.log"
    write_lines(log, ["old1", "old2"])
    with open(log, "ab") as f:
        f.write(b"half-writ")  # start_at: end never starts in the middle of a line

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log), start_at="end"))
        agent.start()
        assert await agent.wait_for(lambda: len(agent.rt.batches) >= 1)
        with open(log, "ab") as f:
            f.write(b"ten\n")
        write_lines(log, ["new1"])
        assert await agent.wait_for(lambda: "new1" in agent.rt.lines())
        await agent.kill()
        write_lines(log, ["while-down-1", "while-down-2"])
        agent.start()
        assert await agent.wait_for(lambda: "while-down-2" in agent.rt.lines())
        await agent.stop()
        return agent.rt

    assert run(scenario()).lines() == ["half-written", "new1", "while-down-1", "while-down-2"]


def test_start_at_end_survives_a_kill_before_the_first_line(tmp_path: Path):
    log = tmp_path / "redis.log"
    write_lines(log, [f"old{i}" for i in range(10)])

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log), start_at="end"))
        agent.start()
        assert await agent.wait_for(lambda: len(agent.rt.batches) >= 1)
        await agent.kill()
        write_lines(log, ["new"])
        agent.start()
        assert await agent.wait_for(lambda: "new" in agent.rt.lines())
        await agent.stop()
        return agent.rt

    assert run(scenario()).lines() == ["new"]


def test_a_half_written_line_waits_for_its_newline(tmp_path: Path):
    log = tmp_path / "redis.log"

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log), partial_line_timeout=30))
        log.write_bytes(b"one\ntw")
        agent.start()
        assert await agent.wait_for(lambda: agent.rt.lines() == ["one"])
        await asyncio.sleep(0.3)
        assert agent.rt.lines() == ["one"]
        await agent.kill()  # the held half is not checkpointed: a restart reads it again whole
        with open(log, "ab") as f:
            f.write(b"o\nthree\n")
        agent.start()
        assert await agent.wait_for(lambda: "three" in agent.rt.lines())
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert rt.lines() == ["one", "two", "three"]
    assert not any(e["fields"]["partial"] for e in rt.events)


def test_a_line_never_finished_is_shipped_after_the_timeout_flagged_partial(tmp_path: Path):
    log = tmp_path / "redis.log"
    log.write_bytes(b"one\nhalf a li")

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log), partial_line_timeout=0.3))
        agent.start()
        assert await agent.wait_for(lambda: len(agent.rt.lines()) == 2)
        with open(log, "ab") as f:
            f.write(b"ne\nnext\n")
        assert await agent.wait_for(lambda: "next" in agent.rt.lines())
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert rt.lines() == ["one", "half a li", "ne", "next"]
    assert [e["fields"]["partial"] for e in rt.events] == [False, True, False, False]
    assert [e["offset"] for e in rt.events] == [0, 4, 13, 16]


def test_invalid_utf8_and_nul_bytes_never_stop_the_follower(tmp_path: Path):
    log = tmp_path / "redis.log"
    bad = b"1:M 25 Nov 2026 17:00:00.000 * bad \xff\xfe\xc3( bytes \x00 here\n"
    good = b"1:M 25 Nov 2026 17:00:01.000 * Ready to accept connections\n"
    log.write_bytes(bad + good + b"\xff\n" + good)

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)), parser_factory=None)  # the real parsers.logfile.LogParser
        agent.start()
        assert await agent.wait_for(lambda: sum(e.get("lines", 0) for e in agent.rt.events) == 4)
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert sum(e["lines"] for e in rt.events) == 4
    assert "\ufffd" in rt.events[0]["message"]
    assert rt.events[-1]["message"] == "Ready to accept connections"


def test_a_crash_report_is_one_event_whatever_the_read_size(tmp_path: Path):
    sample = SAMPLE_LOGS / "redis-7.0" / "crash-assert.log"
    log = tmp_path / "redis.log"
    data = sample.read_bytes()

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log), read_chunk=64), parser_factory=None)
        agent.start()
        with open(log, "ab") as f:  # arrives in pieces, as a crashing server writes it
            for i in range(0, len(data), 700):
                f.write(data[i:i + 700])
                f.flush()
                await asyncio.sleep(0.005)
        assert await agent.wait_for(lambda: sum(e.get("lines", 0) for e in agent.rt.events) == data.count(b"\n"))
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    expected = parse_lines(data, tz=__import__("datetime").UTC)
    strip = lambda evs: [{k: v for k, v in e.items() if k not in ("file", "origin", "id")} for e in evs]  # noqa: E731
    assert strip(rt.events) == strip(expected)
    assert any(e["category"] == "crash" and e["lines"] > 20 for e in rt.events)


def test_a_reused_inode_with_other_content_is_read_from_its_first_byte(tmp_path: Path):
    log = tmp_path / "redis.log"
    write_lines(log, ["new-file-line-1", "new-file-line-2", "new-file-line-3"])
    st = log.stat()
    rt = FakeRuntime()
    agent = Agent(file_config(str(log)), rt)
    # a checkpoint left by a deleted file whose inode number the filesystem handed to this one
    key = f"{agent.source_key_prefix()}{st.st_dev}:{st.st_ino}:0123456789abcdef"
    rt.committed[key] = {"origin": "old", "live": str(log), "path": str(log), "dev": st.st_dev,
                         "ino": st.st_ino, "head_len": 20, "head": "0123456789abcdef", "offset": 32, "size": 40}

    async def scenario() -> None:
        agent.start()
        assert await agent.wait_for(lambda: len(rt.lines()) == 3)
        await agent.stop()

    run(scenario())
    assert rt.lines() == ["new-file-line-1", "new-file-line-2", "new-file-line-3"]


def test_several_rotations_while_down_are_finished_oldest_first(tmp_path: Path):
    log = tmp_path / "redis.log"
    write_lines(log, ["g0-0"])

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)))
        agent.start()
        assert await agent.wait_for(lambda: agent.rt.lines() == ["g0-0"])
        await agent.stop()
        write_lines(log, ["g0-1"])
        for gen in (1, 2, 3):  # logrotate `create` three times while the agent is down
            for i in range(gen - 1, 0, -1):
                os.rename(tmp_path / f"redis.log.{i}", tmp_path / f"redis.log.{i + 1}")
            log.rename(tmp_path / "redis.log.1")
            write_lines(log, [f"g{gen}-0", f"g{gen}-1"])
        agent.start()
        assert await agent.wait_for(lambda: len(agent.rt.lines()) == 8)
        await asyncio.sleep(0.2)
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert rt.lines() == ["g0-0", "g0-1", "g1-0", "g1-1", "g2-0", "g2-1", "g3-0", "g3-1"]


def test_rotated_files_present_at_the_first_start_are_history(tmp_path: Path):
    log = tmp_path / "redis.log"
    write_lines(tmp_path / "redis.log.1", ["history"])
    write_lines(log, ["live"])

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)))
        agent.start()
        assert await agent.wait_for(lambda: agent.rt.lines() == ["live"])
        await agent.stop()
        agent.start()  # and stay history after a restart
        await asyncio.sleep(0.3)
        await agent.stop()
        return agent.rt

    assert run(scenario()).lines() == ["live"]


def test_polling_alone_follows_rotation_when_inotify_is_off(tmp_path: Path):
    log = tmp_path / "redis.log"
    write_lines(log, ["p0"])

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log), inotify=False, poll_interval=0.1))
        agent.start()
        assert await agent.wait_for(lambda: agent.rt.lines() == ["p0"])
        log.rename(tmp_path / "redis.log.1")
        write_lines(log, ["p1"])
        assert await agent.wait_for(lambda: agent.rt.lines() == ["p0", "p1"])
        await agent.stop()
        return agent.rt

    assert run(scenario()).lines() == ["p0", "p1"]


def test_inotify_wakes_the_follower_long_before_the_poll_interval(tmp_path: Path):
    log = tmp_path / "redis.log"
    write_lines(log, ["i0"])

    async def scenario() -> bool:
        agent = Agent(file_config(str(log), inotify=True, poll_interval=60))
        agent.start()
        assert await agent.wait_for(lambda: agent.rt.lines() == ["i0"])
        await asyncio.sleep(0.2)
        write_lines(log, ["i1"])
        # with a 60 s poll, only an inotify wake-up can deliver this within the wait
        ok = await agent.wait_for(lambda: agent.rt.lines() == ["i0", "i1"], timeout=20)
        await agent.stop()
        return ok

    assert run(scenario())


def test_a_checkpoint_of_a_file_gone_for_long_is_removed(tmp_path: Path):
    log = tmp_path / "redis.log"
    write_lines(log, ["a"])

    async def scenario() -> FakeRuntime:
        agent = Agent(file_config(str(log)), stale_after=0.3, rotate_wait=0.05)
        agent.start()
        assert await agent.wait_for(lambda: agent.rt.lines() == ["a"])
        first_keys = {k for k in agent.rt.committed if ":live:" not in k}
        log.unlink()
        write_lines(log, ["b"])
        assert await agent.wait_for(lambda: not (first_keys & set(agent.rt.committed)), timeout=10)
        await agent.stop()
        return agent.rt

    rt = run(scenario())
    assert rt.lines() == ["a", "b"]
    assert any(None is v for b in rt.batches for v in b.positions.values())


def test_events_carry_file_origin_and_a_replay_stable_id(tmp_path: Path):
    log = tmp_path / "redis.log"
    shutil.copy(SAMPLE, log)

    async def once() -> FakeRuntime:
        agent = Agent(file_config(str(log)), parser_factory=None)
        agent.start()
        n = SAMPLE.read_bytes().count(b"\n")
        assert await agent.wait_for(lambda: sum(e.get("lines", 0) for e in agent.rt.events) == n)
        await agent.stop()
        return agent.rt

    a, b = run(once()), run(once())  # two agents without shared state read the same file
    assert [e["id"] for e in a.events] == [e["id"] for e in b.events]
    assert len({e["id"] for e in a.events}) == len(a.events)
    assert all(e["id"] == event_id(e["origin"], str(e["offset"]) if e["lines"] else f"{e['offset']}:{e['event']}")
               for e in a.events)
    assert all(e["file"] == str(log) for e in a.events)
    assert ROTATIONS is not None
