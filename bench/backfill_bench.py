"""Follower performance: a 1 GiB backfill, and an idle agent watching two files.

    python bench/backfill_bench.py                 # both, 1 GiB, 60 s idle
    python bench/backfill_bench.py --size 256MiB --idle-seconds 20
    python bench/backfill_bench.py --only backfill

**Backfill**: a log of real lines (every sample-logs/*.log, repeated) is read by
``FileSource`` from its first byte, through ``parsers.logfile.LogParser``, each event
serialised once (``parsers.events.dumps``) and written by the ``type: file`` sink
(``shipper.sinks.file.FileSink``, which appends and fsyncs every batch). Measured in the same
run, on the same file, page cache warm:

* ``bare read loop``: ``os.pread`` 1 MiB chunks and count the newlines (the ceiling);
* ``follower only``: FileSource with a parser that makes no event (the follower's own cost);
* ``follower + parser``: events made, then dropped;
* ``follower + parser + file sink``: the pipeline the target is about (>= 25 % of the loop).

**Idle**: ``redis-shipper run`` with two ``type: file`` sources on files nobody writes to,
inotify on (default) then off; after a warm-up, CPU time (utime + stime from /proc) over the
window as % of one core, and the resident set size (VmRSS, and its peak VmHWM).
Targets: <= 0.5 % of a core, <= 60 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from parsers.events import dumps  # noqa: E402
from shipper.api import Batch, SourceContext, SpooledEvent  # noqa: E402
from shipper.config import FileSinkConfig, FileSourceConfig, parse_size  # noqa: E402
from shipper.sinks.file import FileSink  # noqa: E402
from shipper.sources.files import FileSource  # noqa: E402


def build(path: Path, nbytes: int) -> int:
    block = b"".join(
        b"".join(x + b"\n" for x in p.read_bytes().splitlines())
        for p in sorted((ROOT / "sample-logs").glob("*/*.log"))
    )
    n = 0
    with open(path, "wb") as f:
        written = 0
        while written < nbytes:
            f.write(block)
            written += len(block)
            n += block.count(b"\n")
    return n


def parser_alone(path: Path) -> int:
    """The parser's own speed on the same bytes (what no follower can beat): lines fed one by
    one straight from 1 MiB chunks, events counted and dropped."""
    from parsers.logfile import LogParser

    parser = LogParser(tz=UTC)
    fd = os.open(path, os.O_RDONLY)
    n = off = 0
    rest = b""
    try:
        while True:
            chunk = os.pread(fd, 1 << 20, off)
            if not chunk:
                break
            off += len(chunk)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            feed = parser.feed
            for line in lines:
                n += len(feed(line, 0))
        n += len(parser.flush())
    finally:
        os.close(fd)
    return n


def bare_loop(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    n = off = 0
    try:
        while True:
            chunk = os.pread(fd, 1 << 20, off)
            if not chunk:
                return n
            n += chunk.count(b"\n")
            off += len(chunk)
    finally:
        os.close(fd)


class NoEvents:
    pending_offset = None

    def __init__(self, mtime: float | None = None):
        pass

    def feed(self, line: bytes, offset: int, *, cut_bytes: int = 0, partial: bool = False) -> list:
        return []

    def flush(self) -> list:
        return []


async def run_source(path: Path, total_lines: int, mode: str, out: Path) -> tuple[float, float, int]:
    """Run FileSource over the file until every line is accounted for; (wall s, cpu s, events)."""
    cfg = FileSourceConfig.model_validate({"type": "file", "path": str(path), "inotify": False,
                                           "poll_interval": 0.05})
    src = FileSource(cfg, tz=UTC, parser_factory=NoEvents if mode == "follower" else None, idle_flush=0.05)
    sink = FileSink(FileSinkConfig.model_validate({"type": "file", "path": str(out)}))
    stop = asyncio.Event()
    state = {"lines": 0, "events": 0, "seq": 0, "offset": 0}

    async def emit(batch: Batch) -> None:
        evs = batch.events
        state["events"] += len(evs)
        for ev in evs:
            state["lines"] += ev.get("lines", 0)
        for v in batch.positions.values():
            if isinstance(v, dict) and "offset" in v:
                state["offset"] = max(state["offset"], v["offset"])
        if mode == "sink" and evs:
            spooled = []
            for ev in evs:
                state["seq"] += 1
                spooled.append(SpooledEvent(state["seq"], ev, dumps(ev)))
            await sink.send(spooled)
        if (mode == "follower" and state["offset"] >= size) or (mode != "follower" and state["lines"] >= total_lines):
            stop.set()

    size = path.stat().st_size
    ctx = SourceContext(emit=emit, positions={}, stop=stop, state_dir=str(out.parent))
    c0, t0 = time.process_time(), time.perf_counter()
    await src.run(ctx)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, state["events"]


def backfill(size: int, tmp: Path) -> None:
    path = tmp / "redis.log"
    total = build(path, size)
    nbytes = path.stat().st_size
    out = tmp / "out.jsonl"
    print(f"backfill: {nbytes / 2**20:.0f} MiB, {total:,} lines of real log lines (sample-logs/ repeated), "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    bare_loop(path)  # warm the page cache
    rows: list[tuple[str, float, float, int]] = []
    t0, c0 = time.perf_counter(), time.process_time()
    assert bare_loop(path) == total
    rows.append(("bare read loop (pread 1 MiB + count newlines)", time.perf_counter() - t0,
                 time.process_time() - c0, 0))
    t0, c0 = time.perf_counter(), time.process_time()
    events = parser_alone(path)
    rows.append(("LogParser alone (no follower, no sink)", time.perf_counter() - t0, time.process_time() - c0,
                 events))
    for mode, name in [("follower", "follower only (no events)"), ("parser", "follower + LogParser"),
                       ("sink", "follower + LogParser + dumps + file sink")]:
        out.unlink(missing_ok=True)
        wall, cpu, events = asyncio.run(run_source(path, total, mode, out))
        rows.append((name, wall, cpu, events))
    base = rows[0][1]
    print(f"\n{'pipeline':44} {'wall s':>7} {'cpu s':>7} {'lines/s':>11} {'MB/s':>7} {'events':>10} "
          f"{'vs loop':>8}")
    for name, wall, cpu, events in rows:
        print(f"{name:44} {wall:7.2f} {cpu:7.2f} {total / wall:11,.0f} {nbytes / wall / 1e6:7.1f} "
              f"{events:10,} {base / wall * 100:7.2f}%")
    if out.exists():
        print(f"\nfile sink output: {out.stat().st_size / 2**20:.0f} MiB of JSON Lines")
        out.unlink()
    path.unlink()


def proc_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (children excluded)


def proc_mem(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) * 1024
    return out


def idle(seconds: float, tmp: Path) -> None:
    print(f"\nidle agent: `redis-shipper run`, two file sources, file sink, {seconds:.0f} s window after 5 s warm-up")
    print(f"{'inotify':8} {'cpu % of one core':>18} {'RSS MB':>8} {'peak RSS MB':>12}")
    for inotify in (True, False):
        d = tmp / f"idle-{inotify}"
        (d / "log").mkdir(parents=True)
        logs = [d / "log" / "redis-6379.log", d / "log" / "sentinel-26379.log"]
        for p, sample in zip(logs, ["redis-7.0/replication-master.log", "sentinel-7.0/sentinel-1.log"], strict=True):
            shutil.copy(ROOT / "sample-logs" / sample, p)
        srcs = "".join(f"  - type: file\n    path: {p}\n    inotify: {str(inotify).lower()}\n" for p in logs)
        cfg = d / "agent.yaml"
        cfg.write_text(f"state_dir: {d / 'state'}\ntimezone: UTC\nmetrics: {{listen: ''}}\n"
                       f"sources:\n{srcs}sinks:\n  - type: file\n    path: {d / 'out' / 'events.jsonl'}\n")
        p = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(cfg)], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            time.sleep(5)
            if p.poll() is not None:
                raise RuntimeError(p.stderr.read().decode() if p.stderr else "agent exited")
            c0, t0 = proc_cpu_seconds(p.pid), time.monotonic()
            time.sleep(seconds)
            cpu = (proc_cpu_seconds(p.pid) - c0) / (time.monotonic() - t0) * 100
            mem = proc_mem(p.pid)
        finally:
            p.send_signal(signal.SIGTERM)
            p.wait(30)
        print(f"{'on' if inotify else 'off':8} {cpu:17.3f}% {mem['VmRSS'] / 1e6:8.1f} {mem['VmHWM'] / 1e6:12.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="1GiB", help="backfill file size (default 1GiB)")
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--only", choices=["backfill", "idle"])
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="follower-bench-"))
    try:
        if args.only in (None, "backfill"):
            backfill(parse_size(args.size), tmp)
        if args.only in (None, "idle"):
            idle(args.idle_seconds, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
