"""Stateful model test of the file follower (hypothesis ``RuleBasedStateMachine``), after
Vector's ``lib/file-source`` model tests: a failure is shrunk to the shortest sequence of
writes, rotations, restarts and kills that still breaks the follower.

The machine drives one run of the real follower (``FileSource``'s run: startup, then one
``step`` per tick: discovery when due, one read per stream, emit) on real files under a
``*.log`` glob, with its own clock, against a fake runtime that commits events and
checkpoints in one transaction (as the spool does). Nothing runs between two rules, so an
example is the same sequence of system calls each time it is replayed: shrinking works, and
CI runs a fixed set of examples (``derandomize``, no example database).

Rules: write whole lines, write half a line, create a new file matching the glob, rotate by
rename (with or without logrotate ``create``), rotate by copytruncate (with lines written in
its race window, in one go or in logrotate's own steps with the follower looking between
them), truncate in place, delete, compress the rotated file, let time pass, restart from the
committed checkpoints, and a SIGKILL-like stop inside ``emit`` (the batch in flight is never
committed). Invariants, after every rule:

* what was committed holds no line twice (events and checkpoints are committed together, so
  even the replay after an uncommitted stop must not duplicate), nothing that was not
  written, and a fragment only as a line's start flagged ``partial``;
* per stream (origin), lines in file order;
* a ``data_gap`` never claims bytes that did arrive;
* every line that sat in a readable file when the follower was last caught up (``sync``) was
  committed: nothing lost (but for rotated files a start finds under a live path it never
  followed: history, as documented in docs/follower.md).

``FOLLOWER_MODEL_EXAMPLES`` (default 150, about 10 s) and ``FOLLOWER_MODEL_STEPS`` (default 40) go deeper.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import tempfile
from datetime import UTC
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from test_files_harness import Crash, FakeRuntime, OneEventPerLine, file_config

from shipper.sources.files import FileSource
from shipper.sources.files.source import _Run

NAMES = ("a", "b", "c")
ROTATED = (1, 2, 3)
#: simulated seconds per tick: below and above the poll interval (0.02 s), so some passes
#: read without a discovery
TICKS = st.sampled_from([0.001, 0.005, 0.02, 0.05])
PADS = st.sampled_from([0, 3, 40, 200, 700])


class FollowerModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="files-model-"))
        self.rt = FakeRuntime()
        self.run: _Run | None = None
        self.now = 1000.0
        self.n = 0
        self.written: set[str] = set()
        #: the second half of a half-written line, per live file
        self.partial_rest: dict[str, bytes] = {}
        #: lines that were in a readable file when the follower was caught up
        self.must: set[str] = set()
        #: lines in rotated files that a start found as history (see ``start``)
        self.history: set[str] = set()

    # ------------------------------------------------------------------ the world
    def live(self, name: str) -> Path:
        return self.dir / f"{name}.log"

    def rotated(self, name: str, i: int) -> Path:
        return self.dir / f"{name}.log.{i}"

    def line(self, name: str, pad: int) -> bytes:
        self.n += 1
        text = f"{name}{self.n:06d}-{'x' * pad}"
        self.written.add(text)
        return text.encode() + b"\n"

    def finish_partial(self, name: str) -> None:
        rest = self.partial_rest.pop(name, None)
        if rest is not None:
            with open(self.live(name), "ab") as f:
                f.write(rest)

    def shift(self, name: str) -> None:
        for i in reversed(ROTATED):
            p = self.rotated(name, i)
            if p.exists():
                if i == ROTATED[-1]:
                    p.unlink()
                else:
                    p.rename(self.rotated(name, i + 1))

    # ------------------------------------------------------------------ the follower
    def start(self) -> None:
        """A run from the committed checkpoints. A rotated file whose live path the committed
        checkpoints do not name is history from before the follower knew that path (read
        as recorded, never shipped: docs/follower.md), so its lines are not owed."""
        assert self.run is None
        known = {v["live"] for v in self.rt.committed.values() if isinstance(v, dict) and "live" in v}
        for name in NAMES:
            if str(self.live(name)) not in known:
                for i in ROTATED:
                    p = self.rotated(name, i)
                    if p.exists():
                        self.history.update(x.decode() for x in p.read_bytes().split(b"\n")[:-1])
        src = FileSource(self.cfg, tz=UTC, parser_factory=OneEventPerLine, rotate_wait=0.2, idle_flush=0.05)
        run = _Run(src, self.rt.context(asyncio.Event(), src.key_prefix))
        run.clock = lambda: self.now
        self.run = run
        self.guard(run.startup())

    def guard(self, coro: object) -> None:
        """Run one piece of the follower; a crash inside ``emit`` ends the run like a SIGKILL:
        the batch in flight is not committed, and the next start reads the checkpoints."""
        try:
            self.loop.run_until_complete(coro)  # type: ignore[arg-type]
        except Crash:
            self.stop()

    def stop(self) -> None:
        if self.run is not None:
            self.run.close()
            self.run = None

    def tick(self, dt: float) -> None:
        self.now += dt
        if self.run is not None:
            self.guard(self.run.step(self.now))

    def teardown(self) -> None:
        self.stop()
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # ------------------------------------------------------------------ rules
    @initialize(
        read_chunk=st.sampled_from([64, 1000, 1 << 20]),
        max_batch_events=st.sampled_from([1, 7, 2000]),
        fingerprint_bytes=st.sampled_from([16, 256]),
        first=st.integers(0, 5),
    )
    def first_start(self, read_chunk: int, max_batch_events: int, fingerprint_bytes: int, first: int) -> None:
        self.cfg = file_config(str(self.dir / "*.log"), partial_line_timeout=3600, read_chunk=read_chunk,
                               max_batch_events=max_batch_events, fingerprint_bytes=fingerprint_bytes)
        with open(self.live("a"), "ab") as f:
            f.write(b"".join(self.line("a", 3) for _ in range(first)))
        self.start()

    @rule(name=st.sampled_from(NAMES), k=st.integers(1, 20), pad=PADS)
    def write_lines(self, name: str, k: int, pad: int) -> None:
        """Redis-like: open, append whole lines (after the rest of a half-written one), close."""
        self.finish_partial(name)
        with open(self.live(name), "ab") as f:
            f.write(b"".join(self.line(name, pad) for _ in range(k)))

    @rule(name=st.sampled_from(NAMES), pad=PADS, cut=st.floats(0.01, 0.99))
    def write_partial_line(self, name: str, pad: int, cut: float) -> None:
        self.finish_partial(name)
        line = self.line(name, pad)
        at = max(1, min(len(line) - 1, int(len(line) * cut)))
        with open(self.live(name), "ab") as f:
            f.write(line[:at])
        self.partial_rest[name] = line[at:]

    @rule(name=st.sampled_from(NAMES[1:]))
    def create_file(self, name: str) -> None:
        """A new file matching the glob (empty, as logrotate ``create`` or ``touch`` makes it)."""
        self.live(name).touch()

    @rule(name=st.sampled_from(NAMES), create=st.booleans())
    def rotate_by_rename(self, name: str, create: bool) -> None:
        self.finish_partial(name)
        if not self.live(name).exists():
            return
        self.shift(name)
        self.live(name).rename(self.rotated(name, 1))
        if create:
            self.live(name).touch()  # logrotate `create`; otherwise the next write creates it

    @rule(name=st.sampled_from(NAMES), race=st.integers(0, 3))
    def rotate_by_copytruncate(self, name: str, race: int) -> None:
        """Copy, then truncate; ``race`` lines written between the two are lost by design."""
        self.finish_partial(name)
        live = self.live(name)
        if not live.exists():
            return
        self.shift(name)
        shutil.copyfile(live, self.rotated(name, 1))
        if race:
            self.write_lines(name, race, 3)
        with open(live, "r+b") as f:
            f.truncate(0)

    @rule(name=st.sampled_from(NAMES), cut=st.floats(0, 1), race=st.integers(0, 3), dt=TICKS)
    def rotate_by_copytruncate_in_steps(self, name: str, cut: float, race: int, dt: float) -> None:
        """logrotate's own order with the follower looking between the steps: create the copy
        (empty), copy in two writes (a half copy may end mid-line), maybe lines in the race
        window, truncate."""
        self.finish_partial(name)
        live = self.live(name)
        if not live.exists():
            return
        self.shift(name)
        fd = os.open(self.rotated(name, 1), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            self.tick(dt)
            data = live.read_bytes()
            at = int(len(data) * cut)
            os.write(fd, data[:at])
            self.tick(dt)
            os.write(fd, data[at:])
            if race:
                self.write_lines(name, race, 3)
            self.tick(dt)
            with open(live, "r+b") as f:
                f.truncate(0)
        finally:
            os.close(fd)

    @rule(name=st.sampled_from(NAMES))
    def truncate(self, name: str) -> None:
        self.finish_partial(name)
        if self.live(name).exists():
            with open(self.live(name), "r+b") as f:
                f.truncate(0)

    @rule(name=st.sampled_from(NAMES))
    def delete(self, name: str) -> None:
        self.finish_partial(name)
        self.live(name).unlink(missing_ok=True)

    @rule(name=st.sampled_from(NAMES))
    def compress_rotated(self, name: str) -> None:
        p = self.rotated(name, 1)
        if p.exists():
            with open(p, "rb") as src, gzip.open(f"{p}.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            p.unlink()

    @rule(dt=TICKS, n=st.integers(1, 4))
    def let_time_pass(self, dt: float, n: int) -> None:
        for _ in range(n):
            self.tick(dt)

    @precondition(lambda self: self.run is not None)
    @rule()
    def restart_from_checkpoint(self) -> None:
        """A clean stop at a loop boundary, and a new run from what was committed."""
        self.stop()
        self.start()

    @precondition(lambda self: self.run is not None)
    @rule(after=st.integers(0, 2), dt=TICKS)
    def kill_before_a_commit(self, after: int, dt: float) -> None:
        """SIGKILL-like: the run dies inside ``emit`` once ``after`` more batches were committed;
        the batch in flight is never committed."""
        self.rt.crash_at = len(self.rt.batches) + after
        for _ in range(after + 2):
            self.tick(dt)
            if self.run is None:
                break

    @precondition(lambda self: self.run is None)
    @rule()
    def start_again(self) -> None:
        self.rt.crash_at = None
        self.start()

    @rule()
    def sync(self) -> None:
        """Let the follower catch up (restarting it if it is down), and past ``rotate_wait``
        so drained files are closed: every complete line in its live files, and in the rotated
        files of the live paths it knows, must then be committed. (A file created and rotated
        away before the follower ever saw its live path cannot be found: nothing names it.)"""
        self.rt.crash_at = None
        if self.run is None:
            self.start()
        self.tick(0.02)  # one discovery pass at least
        assert self.run is not None
        known = set(self.run.known_lives)
        want: set[str] = set()
        for name in NAMES:
            files = [self.live(name)]
            if str(self.live(name)) in known:
                files += [self.rotated(name, i) for i in ROTATED]
            for p in files:
                if p.exists():
                    want.update(x.decode() for x in p.read_bytes().split(b"\n")[:-1])
        want -= self.history
        for i in range(300):
            if i >= 15 and want <= self.delivered():
                break
            self.tick(0.02)
        missing = sorted(x[:7] for x in want - self.delivered())
        assert not missing, f"not caught up: missing {missing[:5]}"
        self.must |= want

    # ------------------------------------------------------------------ invariants
    def delivered(self) -> set[str]:
        return {e["message"] for e in self.rt.events if e.get("event") == "line" and not e["fields"]["partial"]}

    @invariant()
    def nothing_twice_nothing_invented_nothing_lost(self) -> None:
        lines = [e for e in self.rt.events if e.get("event") == "line"]
        got = [e["message"] for e in lines if not e["fields"]["partial"]]
        dups = sorted({x[:7] for x in got if got.count(x) > 1})
        assert not dups, f"committed twice: {dups[:5]}"
        invented = sorted(set(got) - self.written)
        assert not invented, f"never written: {invented[:5]}"
        for e in lines:
            if e["fields"]["partial"]:
                frag = e["message"]
                assert any(x.startswith(frag) for x in self.written), f"partial {frag[:12]!r} is no line's start"
        lost = sorted(x[:7] for x in self.must - set(got))
        assert not lost, f"lost: {lost[:5]}"

    @invariant()
    def each_stream_in_file_order_and_gaps_only_over_what_never_arrived(self) -> None:
        by_origin: dict[str, list[tuple[int, str]]] = {}
        for e in self.rt.events:
            assert e["id"] and e["origin"] is not None and e["file"]
            if e.get("event") == "line" and not e["fields"]["partial"]:
                by_origin.setdefault(e["origin"], []).append((e["offset"], e["message"]))
        for origin, seq in by_origin.items():
            assert [o for o, _ in seq] == sorted(o for o, _ in seq), f"offsets out of order in {origin}"
            assert [m for _, m in seq] == sorted(m for _, m in seq), f"lines out of order in {origin}"
        for g in self.rt.gaps():
            f = g["fields"]
            inside = [m for o, m in by_origin.get(g["origin"], []) if f["start"] <= o < f["end"]]
            assert not inside, f"data_gap {f} claims delivered lines {inside[:3]}"


FollowerModel.TestCase.settings = settings(
    max_examples=int(os.environ.get("FOLLOWER_MODEL_EXAMPLES", "150")),
    stateful_step_count=int(os.environ.get("FOLLOWER_MODEL_STEPS", "40")),
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_follower_model_loses_duplicates_and_invents_nothing = FollowerModel.TestCase


def replay(*steps: tuple[str, dict[str, object]]) -> None:
    """Run one sequence of rules on a fresh machine, checking the invariants after each."""
    m = FollowerModel()
    try:
        for name, kw in steps:
            getattr(m, name)(**kw)
            m.nothing_twice_nothing_invented_nothing_lost()
            m.each_stream_in_file_order_and_gaps_only_over_what_never_arrived()
    finally:
        m.teardown()


def test_a_copytruncate_copy_shorter_than_the_checkpoint_is_not_read_again_after_a_restart() -> None:
    # found by the machine: the copy holds only a line already read, lines read after it were
    # truncated away; the restart took the copy for a new file and shipped its line twice
    replay(
        ("first_start", {"read_chunk": 64, "max_batch_events": 1, "fingerprint_bytes": 16, "first": 1}),
        ("rotate_by_copytruncate_in_steps", {"cut": 0.0, "dt": 0.001, "name": "a", "race": 2}),
        ("restart_from_checkpoint", {}),
        ("sync", {}),
    )
