"""Seeded model runs of the file follower, kept beside the stateful model
(tests/test_files_model.py) because they run the whole agent task in real time: the
follower's own loop, ``to_thread`` reads racing the writer, and logrotate's copytruncate steps
with real sleeps between them, which the stateful model replaces with its own clock.

A seeded random generator drives a writer and the agent through appends (whole lines and
half-written lines), rename rotations (logrotate ``create``), copytruncates (with lines
written in the copy-truncate race window), truncations in place, deletes + recreates,
compression of the rotated file, agent restarts (clean stop, SIGKILL-like cancel, a crash
inside ``emit`` before the commit) and pauses, against a simple reference:

* every line that sat in a readable file while the agent was caught up ("sync"), or that is
  in a readable file at the end, arrives;
* no line arrives twice (the fake runtime commits events and checkpoints atomically, so not
  even a replay is allowed), and nothing arrives that was not written (no fragments, no
  garbage from reading a rewritten file at an old offset);
* per stream (origin), lines arrive in file order;
* a ``data_gap`` never claims bytes that did arrive.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import random
import shutil
from pathlib import Path

import pytest
from test_files_harness import Agent, Crash, FakeRuntime, file_config

SEEDS = int(os.environ.get("FOLLOWER_MODEL_SEEDS", "40"))


class World:
    """The files on disk and the reference of which lines were written where."""

    def __init__(self, d: Path, rng: random.Random):
        self.d = d
        self.live = d / "app.log"
        self.rng = rng
        self.n = 0
        self.written: set[str] = set()
        self.partial_rest: bytes | None = None  # the second half of a half-written line

    def readable_files(self) -> list[Path]:
        return [p for p in [self.live, *(self.d / f"app.log.{i}" for i in (1, 2, 3))] if p.exists()]

    def readable_lines(self) -> set[str]:
        out: set[str] = set()
        for p in self.readable_files():
            data = p.read_bytes()
            for line in data.split(b"\n")[:-1]:  # complete lines only
                out.add(line.decode())
        return out

    def _line(self) -> bytes:
        self.n += 1
        pad = "x" * self.rng.choice([0, 3, 40, 200, 700])
        text = f"L{self.n:06d}-{pad}"
        self.written.add(text)
        return text.encode() + b"\n"

    def append(self, k: int) -> None:
        """Redis-like: open, append whole lines, close."""
        with open(self.live, "ab") as f:
            if self.partial_rest is not None:
                f.write(self.partial_rest)
                self.partial_rest = None
            f.write(b"".join(self._line() for _ in range(k)))

    def half_line(self) -> None:
        self.finish_partial()
        line = self._line()
        cut = self.rng.randint(1, len(line) - 1)
        with open(self.live, "ab") as f:
            f.write(line[:cut])
        self.partial_rest = line[cut:]

    def finish_partial(self) -> None:
        if self.partial_rest is not None:
            with open(self.live, "ab") as f:
                f.write(self.partial_rest)
            self.partial_rest = None

    def _shift(self) -> None:
        for i in (3, 2, 1):
            p = self.d / f"app.log.{i}"
            if p.exists():
                if i == 3:
                    p.unlink()
                else:
                    p.rename(self.d / f"app.log.{i + 1}")

    def rename_rotate(self) -> None:
        self.finish_partial()
        if not self.live.exists():
            return
        self._shift()
        self.live.rename(self.d / "app.log.1")
        if self.rng.random() < 0.5:
            self.live.touch()  # logrotate `create`; otherwise the next write creates it

    def copytruncate(self) -> None:
        self.finish_partial()
        if not self.live.exists():
            return
        self._shift()
        shutil.copyfile(self.live, self.d / "app.log.1")
        if self.rng.random() < 0.3:
            self.append(self.rng.randint(1, 3))  # the race window: these lines vanish
        with open(self.live, "r+b") as f:
            f.truncate(0)

    async def copytruncate_in_steps(self) -> None:
        """logrotate's own order, with the agent free to look between the steps: create the
        copy (empty), copy in two writes (a half copy may end mid-line), maybe lines in the race
        window (they vanish), truncate."""
        self.finish_partial()
        if not self.live.exists():
            return
        self._shift()
        fd = os.open(self.d / "app.log.1", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            await asyncio.sleep(self.rng.uniform(0, 0.05))
            with open(self.live, "r+b") as live:
                data = live.read()
                cut = self.rng.randint(0, len(data))
                os.write(fd, data[:cut])
                await asyncio.sleep(self.rng.uniform(0, 0.05))
                data += live.read()  # what the writer added meanwhile is copied too
                os.write(fd, data[cut:])
                if self.rng.random() < 0.3:
                    self.append(self.rng.randint(1, 3))  # the race window: these lines vanish
                await asyncio.sleep(self.rng.uniform(0, 0.03))
                live.truncate(0)
        finally:
            os.close(fd)

    def truncate(self) -> None:
        self.finish_partial()
        if self.live.exists():
            with open(self.live, "r+b") as f:
                f.truncate(0)

    def delete(self) -> None:
        self.finish_partial()
        if self.live.exists():
            self.live.unlink()

    def compress(self) -> None:
        self.finish_partial()
        p = self.d / "app.log.1"
        if p.exists():
            with open(p, "rb") as src, gzip.open(str(p) + ".gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            p.unlink()


async def run_model(seed: int, tmp: Path) -> None:
    rng = random.Random(seed)
    w = World(tmp, rng)
    w.append(rng.randint(0, 5))
    rt = FakeRuntime()
    cfg = file_config(str(w.live), partial_line_timeout=60, read_chunk=rng.choice([64, 1000, 1 << 20]),
                      max_batch_events=rng.choice([1, 7, 2000]), fingerprint_bytes=rng.choice([16, 256]))
    agent = Agent(cfg, rt)
    agent.start()
    # the first start sees only the live file (rotated files present at a first start are history)
    assert await agent.wait_for(lambda: len(rt.batches) > 0, 5)
    must: set[str] = set()
    ops = ["append"] * 8 + ["half", "rename", "copytruncate", "copytruncate_in_steps", "truncate", "delete", "compress",
                            "sleep", "sleep", "sync", "sync", "kill", "stop", "crash_in_emit", "start"]
    trace: list[str] = []

    async def sync() -> None:
        want = w.readable_lines()
        ok = False
        for _ in range(3):  # a crash armed by crash_in_emit may fire while we wait: restart
            if agent.task is not None and agent.task.done():
                exc = agent.task.exception()
                assert exc is None or isinstance(exc, Crash), f"seed {seed}: agent failed: {exc!r}"
                agent.task = None
            if not agent.up:
                agent.start()
            ok = await agent.wait_for(lambda: want <= set(rt.lines()) or not agent.up, 10)
            ok = want <= set(rt.lines())
            if ok:
                break
        missing = sorted(x[:8] for x in want - set(rt.lines()))
        assert ok, f"seed {seed}: not caught up; missing {missing[:5]}; ops {trace}"
        must.update(want)

    for _ in range(40):
        op = rng.choice(ops)
        trace.append(op)
        if op == "append":
            w.append(rng.randint(1, 30))
        elif op == "half":
            w.half_line()
        elif op == "rename":
            w.rename_rotate()
        elif op == "copytruncate":
            w.copytruncate()
        elif op == "copytruncate_in_steps":
            await w.copytruncate_in_steps()
        elif op == "truncate":
            w.truncate()
        elif op == "delete":
            w.delete()
        elif op == "compress":
            w.compress()
        elif op == "sleep":
            await asyncio.sleep(rng.uniform(0, 0.05))
        elif op == "sync":
            await sync()
        elif op == "kill" and agent.up:
            await asyncio.sleep(rng.uniform(0, 0.03))
            await agent.kill()
        elif op == "stop" and agent.up:
            await agent.stop()
        elif op == "crash_in_emit" and agent.up:
            rt.crash_at = len(rt.batches) + rng.randint(0, 2)
        elif op == "start" and not agent.up:
            agent.start()
        if agent.task is not None and agent.task.done():  # died in emit: like a crash
            exc = agent.task.exception()
            assert exc is None or isinstance(exc, Crash), exc
            agent.task = None
    w.finish_partial()
    rt.crash_at = None
    await sync()
    await agent.stop()

    # a half-written line whose file was then truncated away is shipped as it is, flagged partial
    partials = [e["message"] for e in rt.events if e.get("event") == "line" and e["fields"]["partial"]]
    for frag in partials:
        assert any(x.startswith(frag) for x in w.written), f"seed {seed}: partial {frag[:12]!r} is no line's head"
    got = [e["message"] for e in rt.events if e.get("event") == "line" and not e["fields"]["partial"]]
    dups = sorted({x[:8] for x in got if got.count(x) > 1})
    assert not dups, f"seed {seed}: duplicates {dups[:5]}; {trace}"
    assert set(got) <= w.written, f"seed {seed}: fragments {sorted(set(got) - w.written)[:5]}; {trace}"
    lost = sorted(x[:8] for x in must - set(got))
    assert not lost, f"seed {seed}: lost {lost[:5]}; {trace}"
    by_origin: dict[str, list[tuple[int, str]]] = {}
    for e in rt.events:
        if e.get("event") == "line" and not e["fields"]["partial"]:
            by_origin.setdefault(e["origin"], []).append((e["offset"], e["message"]))
    for origin, seq in by_origin.items():
        assert [o for o, _ in seq] == sorted(o for o, _ in seq), f"seed {seed}: out of order in {origin}"
        assert [m for _, m in seq] == sorted(m for _, m in seq), f"seed {seed}: lines out of order in {origin}"
    for g in rt.gaps():
        f = g["fields"]
        inside = [m for o, m in by_origin.get(g["origin"], []) if f["start"] <= o < f["end"]]
        assert not inside, f"seed {seed}: data_gap {f} claims delivered lines {inside[:3]}"
    for e in rt.events:
        assert e["id"] and e["origin"] is not None and e["file"]


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(SEEDS))
def test_model_random_rotations_restarts_lose_and_duplicate_nothing(seed: int, tmp_path: Path) -> None:
    asyncio.run(run_model(seed, tmp_path))
