"""Unit tests of the follower's pure parts: the line splitter, the fingerprint, the paths."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.sources.files.fingerprint import Head, gzip_head_and_size, make_origin, read_head
from shipper.sources.files.paths import expand, siblings, sort_oldest_first
from shipper.sources.files.reader import LineSplitter


def split_all(data: bytes, cuts: list[int], max_line: int, start: int = 0) -> tuple[list, LineSplitter]:
    """Feed ``data`` in chunks cut at ``cuts``; return every (line, offset, cut) and the splitter."""
    sp = LineSplitter(start, max_line)
    out = []
    pos = 0
    for c in sorted(set(cuts)) + [len(data)]:
        if c <= pos:
            continue
        sp.push(data[pos:c])
        out.extend(sp.lines())
        pos = c
    return out, sp


lines_strategy = st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30)


@settings(max_examples=300, deadline=None)
@given(lines=lines_strategy, tail=st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")),
       cuts=st.lists(st.integers(min_value=0, max_value=1500), max_size=20), start=st.integers(0, 10**9))
def test_splitter_gives_every_line_with_its_offset_whatever_the_chunking(lines, tail, cuts, start):
    data = b"".join(x + b"\n" for x in lines) + tail
    out, sp = split_all(data, cuts, max_line=1 << 20, start=start)
    assert [x[0] for x in out] == lines
    off = start
    for line, o, cut in out:
        assert o == off and cut == 0
        off += len(line) + 1
    # the unterminated tail is held back, and the checkpoint-safe offset stays before it
    assert sp.offset == start + len(data) - len(tail)
    assert sp.has_partial == bool(tail)
    taken = sp.take_partial()
    assert (taken is None) if not tail else (taken == (tail, start + len(data) - len(tail), 0))
    assert sp.offset == start + len(data)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.integers(0, 120), max_size=20), cuts=st.lists(st.integers(0, 2000), max_size=25),
       max_line=st.integers(1, 50))
def test_overlong_lines_are_cut_to_the_limit_and_the_cut_bytes_counted(lines, cuts, max_line):
    raw = [bytes([65 + i % 26]) * n for i, n in enumerate(lines)]
    data = b"".join(x + b"\n" for x in raw)
    out, sp = split_all(data, cuts, max_line=max_line)
    assert len(out) == len(raw)
    off = 0
    for (line, o, cut), full in zip(out, raw, strict=True):
        assert line == full[:max_line]
        assert cut == len(full) - len(line)
        assert o == off
        off += len(full) + 1
    assert sp.offset == len(data) and not sp.has_partial


def test_a_held_partial_line_that_outgrows_the_limit_keeps_only_the_limit_in_memory():
    sp = LineSplitter(0, 10)
    for _ in range(100):
        sp.push(b"x" * 1000)
        assert list(sp.lines()) == []
    assert len(sp._partial) == 10  # bounded, whatever the writer does
    sp.push(b"tail\nnext\n")
    got = list(sp.lines())
    assert got == [(b"x" * 10, 0, 100_000 + 4 - 10), (b"next", 100_005, 0)]


def test_stopping_midway_resumes_at_the_next_line():
    sp = LineSplitter(100, 1 << 20)
    sp.push(b"a\nbb\nccc\ndd")
    it = sp.lines()
    assert next(it) == (b"a", 100, 0)
    assert sp.offset == 102 and sp.has_lines
    assert list(sp.lines()) == [(b"bb", 102, 0), (b"ccc", 105, 0)]
    assert sp.offset == 109 and sp.end_offset == 111


def test_head_of_a_short_file_matches_the_file_once_it_has_grown(tmp_path: Path):
    p = tmp_path / "f"
    p.write_bytes(b"12:M first\n")
    fd = os.open(p, os.O_RDONLY)
    try:
        short = Head.of(read_head(fd, 256))
        assert short.length == 11
        with open(p, "ab") as f:
            f.write(b"12:M second line\n" * 30)
        full = read_head(fd, 256)
        assert len(full) == 256 and short.matches(full)
        assert not Head.of(full).matches(full[:100])  # a shorter file cannot be the longer one
        assert not short.matches(b"13:M first\n" + full[11:])
    finally:
        os.close(fd)


def test_origin_names_the_device_inode_and_first_bytes():
    assert make_origin(1, 2, b"abc") == make_origin(1, 2, b"abc")
    assert make_origin(1, 2, b"abc") != make_origin(1, 3, b"abc") != make_origin(1, 2, b"abd")


def test_a_gzipped_rotation_is_recognised_by_its_first_bytes_and_sized_by_its_trailer(tmp_path: Path):
    body = b"".join(b"%d:M 25 Nov 2026 17:00:00.000 * line %d\n" % (i, i) for i in range(5000))
    gz = tmp_path / "redis.log.2.gz"
    with gzip.open(gz, "wb") as f:
        f.write(body)
    head, size = gzip_head_and_size(str(gz), 256)  # type: ignore[misc]
    assert head == body[:256] and size == len(body)
    (tmp_path / "broken.gz").write_bytes(b"not gzip at all")
    assert gzip_head_and_size(str(tmp_path / "broken.gz"), 256) is None


def test_rotated_siblings_numbered_and_dateext_oldest_first_compressed_apart(tmp_path: Path):
    live = tmp_path / "redis-server.log"
    names = ["redis-server.log.1", "redis-server.log.2", "redis-server.log.3.gz", "redis-server.log-20261124",
             "redis-server.log-20261123.gz", "redis-server.log.old", "other.log.1", "redis-server.log"]
    for i, n in enumerate(names):
        (tmp_path / n).write_bytes(b"x\n")
        os.utime(tmp_path / n, (1000 + i, 1000 + i))
    os.utime(tmp_path / "redis-server.log.2", (900, 900))  # older than .1
    pats = ("{name}.[0-9]", "{name}.[0-9]*[0-9]", "{name}-[0-9]*[0-9]")
    got = [Path(p).name for p in siblings(str(live), pats)]
    assert got == ["redis-server.log.2", "redis-server.log.1", "redis-server.log-20261124"]
    comp = [Path(p).name for p in siblings(str(live), pats, compressed=True)]
    assert comp == ["redis-server.log.3.gz", "redis-server.log-20261123.gz"]
    # a broad glob does not take rotated or compressed files for live ones
    assert [Path(p).name for p in expand(str(tmp_path / "redis-server.log*"), pats)] == [
        "redis-server.log", "redis-server.log.old"]


def test_same_mtime_rotations_sort_higher_number_first(tmp_path: Path):
    for n in ("a.log.1", "a.log.2", "a.log.10"):
        (tmp_path / n).write_bytes(b"")
        os.utime(tmp_path / n, (5, 5))
    assert [Path(p).name for p in sort_oldest_first([str(tmp_path / n) for n in ("a.log.1", "a.log.10", "a.log.2")])] \
        == ["a.log.10", "a.log.2", "a.log.1"]


def _lines_and_tail(lines: list[int], cuts: list[int], max_line: int) -> tuple[bytes, list]:
    """The lines ``a``*n, ``b``*m, ... plus a partial ``tail``, and what ``split_all`` makes of them."""
    raw = [bytes([97 + i % 26]) * n for i, n in enumerate(lines)]
    data = b"".join(x + b"\n" for x in raw) + b"tail"
    expected, _ = split_all(data, cuts, max_line=max_line)
    return data, expected


def _push_in_pieces(sp: LineSplitter, data: bytes, cuts: list[int]):  # type: ignore[no-untyped-def]
    """Push ``data`` into ``sp`` cut at ``cuts``, pausing (yield) after each push."""
    pos = 0
    for c in sorted(set(cuts)) + [len(data)]:
        if c > pos:
            sp.push(data[pos:c])
            yield
            pos = c


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.integers(0, 60), max_size=25), cuts=st.lists(st.integers(0, 1500), max_size=15),
       max_line=st.integers(1, 40), max_events=st.integers(1, 5))
def test_the_hot_feed_loop_gives_exactly_what_lines_gives(lines, cuts, max_line, max_events):
    got: list = []

    def feed(line: bytes, offset: int, *, cut_bytes: int = 0) -> list:
        return [(line, offset, cut_bytes)]

    data, expected = _lines_and_tail(lines, cuts, max_line)
    sp = LineSplitter(0, max_line)
    for _ in _push_in_pieces(sp, data, cuts):
        while sp.has_lines:  # stopping every max_events and resuming, as read_batch does
            batch: list = []
            sp.feed_lines(feed, batch, max_events)
            assert len(batch) <= max_events
            got.extend(batch)
    assert got == expected
    assert sp.offset == len(data) - 4


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.integers(0, 60), max_size=25), cuts=st.lists(st.integers(0, 1500), max_size=15),
       max_line=st.integers(1, 40), max_events=st.integers(1, 5))
def test_the_hot_feed_loop_feeds_every_line_once_when_lines_make_zero_or_several_events(
    lines, cuts, max_line, max_events
):
    """Like the parser: a line may make no event (held for a multi-line one) or several (a held one
    and its own). Every line is fed exactly once, batches stop as soon as they are full, and the
    returned count is the number of lines fed."""
    fed: list = []

    def feed(line: bytes, offset: int, *, cut_bytes: int = 0) -> list:
        fed.append((line, offset, cut_bytes))
        return [offset] * (len(fed) % 3)  # 1, 2, 0, 1, 2, 0 ... events

    data, expected = _lines_and_tail(lines, cuts, max_line)
    sp = LineSplitter(0, max_line)
    for _ in _push_in_pieces(sp, data, cuts):
        while sp.has_lines:
            batch: list = []
            before = len(fed)
            n = sp.feed_lines(feed, batch, max_events)
            assert n == len(fed) - before
            # stopped early only because the batch was full, and right after the line that filled it
            if sp.has_lines:
                assert len(batch) >= max_events
                assert len(batch) - len(fed) % 3 < max_events
            assert sp.offset == (fed[-1][1] + len(fed[-1][0]) + fed[-1][2] + 1 if n else sp.offset)
    assert fed == expected
    assert sp.offset == len(data) - 4


def test_a_feed_that_raises_leaves_the_splitter_after_the_failing_line():
    """The parser never raises by contract; if it did, the failing line counts as consumed and the
    next call resumes at the following line with the right offset (no line fed twice)."""
    sp = LineSplitter(100, 1000)
    sp.push(b"one\ntwo\nthree\n")
    seen: list = []

    def feed(line: bytes, offset: int, *, cut_bytes: int = 0) -> list:
        seen.append((line, offset))
        if line == b"two":
            raise ValueError("boom")
        return [line]

    events: list = []
    try:
        sp.feed_lines(feed, events, 10)
    except ValueError:
        pass
    assert sp.offset == 100 + len(b"one\ntwo\n")
    sp.feed_lines(feed, events, 10)
    assert seen == [(b"one", 100), (b"two", 104), (b"three", 108)]
    assert events == [b"one", b"three"]
    assert not sp.has_lines and sp.offset == 114


def test_a_burst_of_inotify_events_wakes_the_loop_once_and_keeps_a_structural_hint() -> None:
    import asyncio
    import threading

    from shipper.sources.files.watcher import Watcher

    async def go() -> tuple[int, bool, bool, int]:
        loop = asyncio.get_running_loop()
        w = Watcher([], loop, enabled=False)
        calls = 0
        real = loop.call_soon_threadsafe

        def counting(cb, *args):  # type: ignore[no-untyped-def]
            nonlocal calls
            calls += 1
            return real(cb, *args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        # watchdog's thread: 1,000 modifications (one per log line) and one rename among them
        t = threading.Thread(target=lambda: [w._notify(i == 500) for i in range(1000)])
        t.start()
        t.join()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        burst = calls
        woke, structural = w.wake.is_set(), w.structure.is_set()
        w.wake.clear()
        w._notify(False)  # after the loop took the wake-up, the next event schedules a new one
        await asyncio.sleep(0)
        return burst, woke, structural, calls - burst

    burst, woke, structural, later = asyncio.run(go())
    assert burst == 1 and woke and structural and later == 1


def _watch(dirs: list[tuple[str, bool]], actions, settle: float = 0.3):  # type: ignore[no-untyped-def]
    """Start a Watcher on ``dirs``, run each action (a callable, on the loop) and report, per
    action, (backend, woke, structural) once the loop had ``settle`` seconds to hear of it."""
    import asyncio
    import threading

    from shipper.sources.files.watcher import Watcher

    async def go() -> tuple[list[tuple[str, bool, bool]], int, int]:
        loop = asyncio.get_running_loop()
        threads_before = threading.active_count()
        w = Watcher(dirs, loop)
        w.start()
        threads_during = threading.active_count() - threads_before
        out = []
        try:
            for act in actions:
                w.wake.clear()
                w.structure.clear()
                act()
                w.retry()
                await asyncio.sleep(settle)
                out.append((w.backend, w.wake.is_set(), w.structure.is_set()))
        finally:
            w.stop()
        return out, threads_during, threading.active_count() - threads_before

    return asyncio.run(go())


def test_a_flat_log_directory_is_watched_by_the_event_loop_without_a_thread(tmp_path) -> None:
    """A line appended wakes the follower; a rename rotation also says 're-list the directory'.
    No watchdog thread: the inotify descriptor is read by the loop itself."""
    log = tmp_path / "redis.log"
    log.write_bytes(b"")
    line = b"4018:M 25 Nov 2026 17:00:00.000 * Ready to accept connections tcp\n"

    def append() -> None:
        with open(log, "ab") as f:
            f.write(line)

    def rotate() -> None:
        log.rename(tmp_path / "redis.log.1")
        log.write_bytes(b"")

    def nothing() -> None:
        pass

    results, threads_during, threads_after = _watch([(str(tmp_path), False)], [append, rotate, nothing])
    assert results == [("inotify", True, False), ("inotify", True, True), ("inotify", False, False)]
    assert threads_during == 0 and threads_after == 0


def test_a_log_directory_that_appears_later_or_is_recreated_is_watched_again(tmp_path) -> None:
    import shutil

    d = tmp_path / "redis"

    def create_dir_and_log() -> None:
        d.mkdir()  # not watched yet: polling finds it; retry() (run by the follower each poll) watches it

    def append() -> None:
        (d / "redis.log").write_bytes(b"4018:M 25 Nov 2026 17:00:00.000 * DB saved on disk\n")

    def remove_dir() -> None:
        shutil.rmtree(d)

    results, _, _ = _watch([(str(d), False)], [create_dir_and_log, append, remove_dir, create_dir_and_log, append])
    assert [woke for _, woke, _ in results] == [False, True, True, False, True]


def test_recursive_directories_are_left_to_watchdog(tmp_path) -> None:
    (tmp_path / "a").mkdir()

    def write() -> None:
        (tmp_path / "a" / "redis.log").write_bytes(b"x\n")

    results, threads_during, _ = _watch([(str(tmp_path), True)], [write], settle=0.5)
    assert results == [("watchdog", True, True)] and threads_during >= 1
