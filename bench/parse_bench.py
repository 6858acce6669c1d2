"""Parse throughput: lines/s of ``parsers.logfile.LogParser`` against a bare line-reading loop.

    python bench/parse_bench.py [--lines 1000000] [--runs 3] [--keep] [--prefixed-only] [--before GITREF]

What one run measures, all on this machine and in this run (no stored numbers):

1. a file of at least ``--lines`` lines is built from every real log in sample-logs/ (each
   file whole, in turn, repeated), so the mix is what the recorder captured: startup and
   shutdown, replication, Sentinel failovers, persistence, crash reports, Valkey logfmt...;
2. **baseline**: reading that file in 1 MiB chunks and splitting it into lines (the reader
   of ``redis-shipper parse``, ``shipper.commands.parse.iter_lines``), doing nothing else;
3. **parser**: the same reading plus ``LogParser.feed`` for every line and ``flush`` at the end
   (header grammar, timestamps, catalogue, multi-line assembly, failover correlation);
4. **parser + JSON**: the same plus ``parsers.events.dumps`` of every event (what the CLI and
   the spool do next), for information.

5. with ``--before GITREF``: the parser (3.) of ``parsers/`` as it was at GITREF (exported with
   ``git archive`` and run in a child process, same file, same pinning), so a change is measured
   against its predecessor in the same run on the same machine.

Each is run ``--runs`` times; the best run is reported (the least disturbed by other work on
the machine), as lines/s of wall time and of process CPU time, and the parser / baseline
ratio. The process is pinned to one CPU when the OS allows it. The target (issue 2) is
>= 300,000 lines/s for the parser on one core.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
#: set by --before in the child process: an exported older parsers/ package, found first
_OLD_PARSERS = os.environ.get("PARSE_BENCH_PARSERS_FROM")
if _OLD_PARSERS:
    sys.path.insert(0, _OLD_PARSERS)

from calibrate import calibration_ns  # noqa: E402  (bench/ is the script's directory)

from parsers.events import dumps  # noqa: E402
from parsers.logfile import LogParser  # noqa: E402
from shipper.commands.parse import iter_lines  # noqa: E402

TARGET = 300_000
MAX_LINE = 1 << 20


def build_file(path: Path, min_lines: int, prefixed_only: bool = False) -> int:
    """Concatenate the sample logs (whole files, each ending with a newline) until min_lines.
    ``prefixed_only`` keeps only lines with a header (no crash-report bodies, no logo): the
    worst case, where every line is a whole event."""
    logs = sorted((ROOT / "sample-logs").glob("*/*.log"))
    if not logs:
        sys.exit("no sample-logs/*/*.log to build the benchmark file from")
    blobs = []
    for p in logs:
        b = p.read_bytes()
        b = b if b.endswith(b"\n") else b + b"\n"
        if prefixed_only:
            from parsers.line import parse_header

            b = b"".join(
                ln + b"\n" for ln in b.split(b"\n") if parse_header(ln.decode("utf-8", "replace")) is not None
            )
        blobs.append(b)
    one = b"".join(blobs)
    per = one.count(b"\n")
    reps = -(-min_lines // per)
    with open(path, "wb") as f:
        for _ in range(reps):
            f.write(one)
    return per * reps


def baseline(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        for _line, _off, _cut, _partial in iter_lines(f, MAX_LINE):
            n += 1
    return n


def parser_only(path: Path) -> int:
    p = LogParser(tz=UTC)
    feed = p.feed
    n = 0
    with open(path, "rb") as f:
        for line, off, cut, partial in iter_lines(f, MAX_LINE):
            if cut or partial:
                n += len(feed(line, off, cut_bytes=cut, partial=partial))
            else:
                n += len(feed(line, off))
    return n + len(p.flush())


def parser_json(path: Path) -> int:
    p = LogParser(tz=UTC)
    feed = p.feed
    size = 0
    with open(path, "rb") as f:
        for line, off, _cut, _partial in iter_lines(f, MAX_LINE):
            for ev in feed(line, off):
                size += len(dumps(ev))
    for ev in p.flush():
        size += len(dumps(ev))
    return size


def measure(fn: Callable[[Path], int], path: Path, runs: int) -> tuple[float, float, int]:
    """Best (wall seconds, cpu seconds, result) over ``runs``."""
    best_wall = best_cpu = float("inf")
    result = 0
    for _ in range(runs):
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn(path)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    return best_wall, best_cpu, result


def measure_before(ref: str, path: Path, runs: int) -> tuple[float, float]:
    """(wall, cpu) of the parser at git ref ``ref`` on ``path``: its parsers/ exported to a temporary
    directory and timed by a child process running this script with ``--inner``."""
    import subprocess

    with tempfile.TemporaryDirectory(prefix="parse-bench-before-") as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "parsers"], capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        out = subprocess.run(
            [sys.executable, __file__, "--inner", str(path), "--runs", str(runs)],
            env={**os.environ, "PARSE_BENCH_PARSERS_FROM": tmp},
            capture_output=True,
            text=True,
            check=True,
        )
    wall, cpu = out.stdout.split()
    return float(wall), float(cpu)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the generated file (printed path)")
    ap.add_argument(
        "--prefixed-only",
        action="store_true",
        help="worst case: only lines with a header (one event per line)",
    )
    ap.add_argument("--before", metavar="GITREF", help="also time parsers/ as of this git ref, in the same run")
    ap.add_argument("--inner", metavar="FILE", help=argparse.SUPPRESS)  # child of --before
    args = ap.parse_args()
    if args.inner:
        loaded = Path(sys.modules["parsers.logfile"].__file__ or "")
        assert _OLD_PARSERS and loaded.is_relative_to(_OLD_PARSERS), f"--before timed the wrong parser: {loaded}"
        wall, cpu, _ = measure(parser_only, Path(args.inner), args.runs)
        print(wall, cpu)
        return 0

    pinned = ""
    if hasattr(os, "sched_setaffinity"):
        try:
            cpu = sorted(os.sched_getaffinity(0))[0]
            os.sched_setaffinity(0, {cpu})
            pinned = f", pinned to CPU {cpu}"
        except OSError:
            pass
    tmp = tempfile.mkdtemp(prefix="parse-bench-")
    path = Path(tmp) / "bench.log"
    n_lines = build_file(path, args.lines, args.prefixed_only)
    size = path.stat().st_size
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs{pinned}")
    what = "the prefixed lines of" if args.prefixed_only else "every line of"
    print(f"file: {n_lines:,} lines, {size / 1e6:.1f} MB, made of {what} sample-logs/*/*.log")
    print(f"best of {args.runs} runs")

    print(f"calibration: one empty Python function call = {calibration_ns():.0f} ns (compare machines with it)")
    b_wall, b_cpu, b_n = measure(baseline, path, args.runs)
    assert b_n == n_lines, (b_n, n_lines)
    p_wall, p_cpu, p_events = measure(parser_only, path, args.runs)
    j_wall, j_cpu, j_bytes = measure(parser_json, path, args.runs)
    before = measure_before(args.before, path, args.runs) if args.before else None

    def row(name: str, wall: float, cpu: float) -> None:
        print(f"{name:<24} {n_lines / wall:>12,.0f} lines/s wall {n_lines / cpu:>12,.0f} lines/s cpu")

    row("baseline (read+split)", b_wall, b_cpu)
    row("parser", p_wall, p_cpu)
    row("parser + JSON", j_wall, j_cpu)
    if before is not None:
        row(f"parser @ {args.before}"[:24], *before)
    print(f"events: {p_events:,} ({p_events / n_lines:.3f} per line), JSON {j_bytes / 1e6:.1f} MB")
    print(f"ratio parser/baseline: {b_wall / p_wall:.3f} (wall), {b_cpu / p_cpu:.3f} (cpu)")
    if before is not None:
        print(
            f"speedup over {args.before}: {before[0] / p_wall:.3f}x (wall), {before[1] / p_cpu:.3f}x (cpu); "
            f"{before[1] / n_lines * 1e6:.2f} -> {p_cpu / n_lines * 1e6:.2f} us/line of CPU"
        )
    rate = n_lines / p_cpu
    verdict = "meets" if rate >= TARGET else "BELOW"
    print(f"target {TARGET:,} lines/s on one core: {verdict} ({rate:,.0f} lines/s of CPU time)")
    if args.keep:
        print(f"kept {path}")
    else:
        path.unlink()
        os.rmdir(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
