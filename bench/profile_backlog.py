"""Where the agent's CPU goes on a backlog: ``redis-shipper run`` into the real Loki 3.4.6, every
process sampled by py-spy, the samples summed per process, per function (self) and per stage.

    pip install py-spy      # a sampling profiler from PyPI; not a dependency of the agent
    python bench/profile_backlog.py [--lines 300000] [--rate 250] [--top 25] [--raw /tmp/backlog.txt]

What runs: the backlog file of bench/promtail_compare.py (sample-logs/ Redis 6.2, 7.0 and
Sentinel 7.0 repeated, crash reports included), one real Loki, the agent at default settings
(type: file source from the beginning, type: loki sink, /metrics on). py-spy attaches to the
agent with ``--subprocesses`` (the offload process is sampled too) and ``--nonblocking`` (the
agent is never paused; py-spy's own CPU is not the agent's). A sample counts when its thread is
on a CPU (py-spy's default, idle threads left out), so shares are of the CPU the agent used.

It prints: the tree's CPU seconds (from /proc, as promtail_compare measures) and CPU per line;
then each process's share; the functions with the most self samples (where the CPU is spent,
C calls such as ``orjson.dumps`` or SQLite's ``execute`` are charged to the Python line that
called them); and the inclusive share of the product's stages (a stage is a function of
``shipper/`` or ``parsers/``; nested calls are counted in every stage on their stack). Each
share is also given in µs per input line: share x the tree's CPU / lines. docs/performance.md
keeps the top items as the product's cost model.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from agent_bench import ROOT, TreeSampler, ensure_bytecode, parse_file  # noqa: E402
from calibrate import calibration_ns  # noqa: E402
from promtail_compare import build_backlog_file  # noqa: E402
from realloki import Loki, agent_config, command, selector, unpack  # noqa: E402

FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^():]+)(?::\d+)?\)$")
PROCESS = re.compile(r'^process (?P<pid>\d+):"(?P<cmd>.*)"$')


def frame_name(frame: str) -> tuple[str, bool]:
    """``module:function`` of a py-spy frame, and whether it is the product's own code."""
    m = FRAME.match(frame)
    if not m:
        return frame, False
    path = m["file"]
    own = any(f"{d}/" in path or path.startswith(f"{d}/") for d in ("shipper", "parsers"))
    for d in ("shipper/", "parsers/"):
        k = path.find(d)
        if k >= 0:
            path = path[k:]
            break
    else:
        path = os.path.basename(path)
    return f"{path.removesuffix('.py')}:{m['func']}", own


def process_of(frames: list[str], root: int) -> int:
    """The pid a stack was sampled in (with ``--subprocesses`` a child's frame comes last)."""
    pids = [int(m["pid"]) for f in frames if (m := PROCESS.match(f))]
    return pids[-1] if pids else root


def summarize(raw: Path, cpu: dict[int, float], root: int, lines: int, top: int) -> None:
    """Print the three tables of the module docstring from py-spy's collapsed stacks.

    py-spy counts a thread as active on heuristics (a thread inside some system calls counts),
    so its samples give shares, not seconds: each process's samples are scaled to that
    process's CPU seconds from /proc."""
    procs: Counter[int] = Counter()
    self_: Counter[tuple[int, str]] = Counter()
    incl: Counter[tuple[int, str]] = Counter()
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        count = int(n)
        frames = stack.split(";")
        pid = process_of(frames, root)
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        procs[pid] += count
        if frames:
            self_[(pid, frame_name(frames[-1])[0])] += count
        seen: set[str] = set()
        for f in frames:
            name, own = frame_name(f)
            if own and name not in seen:
                seen.add(name)
                incl[(pid, name)] += count
    if not procs:
        raise SystemExit(f"py-spy recorded no sample ({raw})")
    total_cpu = sum(cpu.values())

    def us(pid: int, n: int) -> float:
        return n / procs[pid] * cpu.get(pid, 0.0) / lines * 1e6

    def label(pid: int) -> str:
        return "agent" if pid == root else "offload"

    def row(text: str, pid: int, n: int) -> str:
        u = us(pid, n)
        return f"   {u / (total_cpu / lines * 1e6) * 100:5.1f} %  {u:5.2f} µs/line  {text}"

    print(f"\n{sum(procs.values()):,} samples; the tree's CPU {total_cpu:.2f} s = "
          f"{total_cpu / lines * 1e6:.2f} µs per input line")
    print("\nper process (CPU from /proc):")
    for pid, n in procs.most_common():
        print(row(f"{label(pid)} (pid {pid}, {n:,} samples)", pid, n))
    print(f"\nself (top {top}; C calls charged to their Python caller):")
    for (pid, name), n in sorted(self_.items(), key=lambda kv: -us(kv[0][0], kv[1]))[:top]:
        print(row(f"{name}  [{label(pid)}]", pid, n))
    print(f"\ninclusive, the product's functions (top {top}):")
    for (pid, name), n in sorted(incl.items(), key=lambda kv: -us(kv[0][0], kv[1]))[:top]:
        print(row(f"{name}  [{label(pid)}]", pid, n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--raw", help="keep py-spy's collapsed stacks in this file")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not os.access(pyspy, os.X_OK):
        raise SystemExit("py-spy not found: pip install py-spy")
    bindir = unpack()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"bytecode: {ensure_bytecode()}; calibration {calibration_ns():.1f} ns per empty call")
    tmp = Path(tempfile.mkdtemp(prefix="profile-backlog-"))
    loki = Loki(bindir, tmp)
    agent: subprocess.Popen[bytes] | None = None
    spy: subprocess.Popen[bytes] | None = None
    try:
        log = tmp / "backlog.log"
        n = build_backlog_file(log, args.lines)
        events = len(parse_file(log))
        labels = {"job": "bench", "run": "profile"}
        cfg = agent_config(tmp, loki.url, [log], labels)
        raw = Path(args.raw) if args.raw else tmp / "pyspy.txt"
        print(f"backlog: {n:,} lines = {events:,} events; py-spy at {args.rate} samples/s")
        agent = subprocess.Popen(command("redis-shipper", bindir, cfg, sys.executable), cwd=ROOT,
                                 stdout=subprocess.DEVNULL, stderr=open(tmp / "agent.err", "wb"))  # noqa: SIM115
        tree = TreeSampler(agent.pid)
        spy = subprocess.Popen([pyspy, "record", "--pid", str(agent.pid), "--subprocesses", "--nonblocking",
                                "--rate", str(args.rate), "--format", "raw", "--output", str(raw)],
                               stdout=subprocess.DEVNULL, stderr=open(tmp / "pyspy.err", "wb"))  # noqa: SIM115
        t0 = time.monotonic()
        sel = selector(labels)
        while loki.count(sel) < events:
            if agent.poll() is not None:
                raise SystemExit(f"agent exited {agent.returncode}: {(tmp / 'agent.err').read_text()[-2000:]}")
            if time.monotonic() - t0 > args.timeout:
                raise SystemExit(f"only {loki.count(sel):,} of {events:,} events reached Loki")
            time.sleep(0.5)
        wall = time.monotonic() - t0
        tree.halt.set()
        tree.join()
        tree.sample()
        cpu = dict(tree.cpu)
        agent.terminate()
        agent.wait(60)
        spy.wait(60)  # py-spy writes its file when the process it follows exits
        print(f"all {events:,} events in Loki after {wall:.1f} s ({n / wall:,.0f} lines/s)")
        summarize(raw, cpu, agent.pid, n, args.top)
    finally:
        for p in (agent, spy):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        loki.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
