"""redis-shipper against promtail, side by side, into one real Loki 3.4.6 (issue 16's yardstick).

    python bench/promtail_compare.py                        # backlog 300k, steady, freshness, idle; 1 pair each
    python bench/promtail_compare.py --pairs 3 --only backlog
    python bench/promtail_compare.py --only backlog --lines 1000000
    python bench/promtail_compare.py --only steady --pairs 2     # CPU per line at 1,000 lines/s + freshness p99
    python bench/promtail_compare.py --only outage --outage 600  # the issue's 10-minute outage (slow)
    python bench/promtail_compare.py --json /tmp/cmp.json
    python bench/promtail_compare.py --only backlog --pairs 3 --baseline /tmp/main  # before/after, same run
    python bench/promtail_compare.py --only backlog --pairs 3 --baseline-tuning -gc # a tuning setting's worth
    python bench/promtail_compare.py --only backlog --pairs 3 --baseline-yaml 'offload: {mode: "off"}'

What runs: the real Loki and promtail 3.4.6 (``../shared/tools/loki/unpack``, into a cache
directory), ONE Loki for the whole run, and for each scenario pairs of runs interleaved
(promtail, redis-shipper, promtail, redis-shipper ...), each run with a stream label of its
own (``run="<scenario>-<agent>-<n>"``), so the machine's load at that moment is shared by the
two figures compared. promtail has ``regex`` + ``labels`` (role, level) + ``timestamp`` stages
(the Filebeat-grok equivalent); redis-shipper runs ``redis-shipper run`` with a ``type: file``
source and a ``type: loki`` sink at default settings (/metrics on). Both read from the start of
the file, both at their default batching.

CPU is utime + stime from /proc of the agent's whole process tree, sampled every 0.1 s (the
offload child of redis-shipper included; a child that exits keeps its last sample). RSS is the
tree's summed VmRSS (peak of the samples). Completion: Loki's
``loki_distributor_lines_received_total`` is polled (cheap), then ``count_over_time`` over the
run's label must equal what was written (exact: a replayed batch is deduplicated by Loki).

Scenarios:
1. **backlog** -- ``--lines`` lines of a mixed real log (sample-logs/ Redis 6.2, 7.0 and Sentinel
   7.0 files repeated, crash reports and banners included, empty lines dropped; each prefixed
   line's timestamp rewritten to 1 ms after the previous one, ending now, so that Loki's
   out-of-order window accepts every repeat). Wall time from spawn to "all in Loki", lines/s,
   CPU per line (per input line for both: promtail ships a line per line, redis-shipper one event
   per multi-line crash report), peak RSS.
2. **steady** -- a writer appends real single-line Redis 7.0 / Valkey 9 lines at ``--rate``
   lines/s, one ``write()`` per line, timestamps = the time of writing. After ``--warmup`` s,
   CPU per line and % of a core over ``--window`` s, RSS; freshness from Loki's live tail
   (arrival - the line's own timestamp): p50 / p99 / max.
3. **idle** -- both agents at once, two files each (already shipped), nothing written: % of a core
   over ``--idle-seconds`` s and RSS.
4. **outage** (only with ``--only outage``) -- lines at ``--rate``/s, Loki paused (SIGSTOP) for
   ``--outage`` s, then resumed: peak RSS, catch-up rate (x the arrival rate), nothing lost.

Every figure is printed with promtail's from the same pair and the ratio (redis-shipper /
promtail: for CPU and RSS lower is better, for lines/s higher), then the median and range over
the pairs, with the machine's calibration (bench/calibrate.py) before and after. With a baseline
(``--baseline`` another checkout, e.g. ``git worktree add /tmp/main main``; ``--baseline-tuning``
this checkout with some of shipper/util/tuning.py's settings off; ``--baseline-yaml`` with a
config setting added), each backlog and steady pair
runs it third, and its ratios to promtail and redis-shipper / baseline are printed too.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from agent_bench import (  # noqa: E402  (bench/ is the script's directory)
    ROOT,
    TreeSampler,
    Writer,
    ensure_bytecode,
    parse_file,
    pct,
    proc_children,
    proc_mem,
)
from calibrate import calibration_ns  # noqa: E402
from realloki import Loki, Tail, agent_config, command, json_dump, promtail_config, selector, unpack  # noqa: E402

AGENTS = ("promtail", "redis-shipper")
#: ``--baseline DIR`` / ``--baseline-tuning SPEC``: the checkout and REDIS_SHIPPER_TUNING of a
#: third agent run in every backlog and steady pair (before/after, or with/without a setting)
BASELINE: list[Path] = []
BASELINE_ENV: dict[str, str] = {}
#: ``--baseline-yaml TEXT``: top-level YAML appended to the baseline agent's config
BASELINE_YAML: list[str] = []


def agents() -> tuple[str, ...]:
    """The agents of a pair: promtail, this checkout's redis-shipper, and the baseline if any."""
    return (*AGENTS, "baseline") if BASELINE else AGENTS
SIGNAL_HANDLER = re.compile(rb"signal-handler \(\d+\)")
STARTED: list[subprocess.Popen[bytes]] = []


# ============================================================================ inputs
def build_backlog_file(path: Path, lines: int) -> int:
    """The mixed real log (see the module docstring); returns the number of lines written."""
    sample: list[bytes] = []
    for d in ("redis-6.2", "redis-7.0", "sentinel-7.0"):
        for f in sorted((ROOT / "sample-logs" / d).glob("*.log")):
            sample.extend(x.rstrip(b"\r") for x in f.read_bytes().splitlines() if x.strip())
    # a signal-handler line gets a second of its own (its stamp is in seconds): Loki drops an entry
    # with the same stream, timestamp and line as another one
    signals = sum(1 for x in sample if b":signal-handler (" in x) * (lines // len(sample) + 1)
    t_ms = int(time.time() * 1000) - lines - 2000 * signals - 60_000  # each jump: at most 2 s
    stamps: dict[int, bytes] = {}
    out = bytearray()
    for i in range(lines):
        line = sample[i % len(sample)]
        colon = line.find(b":")
        if 0 < colon < 9 and line[:colon].isdigit() and len(line) > colon + 27 and line[colon + 3:colon + 5].isdigit():
            sec, ms = divmod(t_ms, 1000)
            st = stamps.get(sec)
            if st is None:
                st = stamps[sec] = time.strftime("%d %b %Y %H:%M:%S", time.gmtime(sec)).encode()
            line = line[:colon + 3] + st + b".%03d" % ms + line[colon + 27:]
            t_ms += 1
        elif b":signal-handler (" in line:  # Redis's own signal-handler lines carry unix seconds
            t_ms = (t_ms // 1000 + 1) * 1000
            line = SIGNAL_HANDLER.sub(b"signal-handler (%d)" % (t_ms // 1000), line)
            t_ms += 1000
        out += line + b"\n"
    path.write_bytes(bytes(out))
    return lines


# ============================================================================ one agent run
class Run:
    """One agent process with its own directory, stream label and process-tree sampler."""

    def __init__(self, agent: str, name: str, tmp: Path, loki: Loki, files: list[Path], bindir: Path) -> None:
        self.agent, self.name = agent, name
        self.dir = tmp / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.labels = {"job": "bench", "run": name}
        self.selector = selector({"run": name})
        cfg = (promtail_config if agent == "promtail" else agent_config)(self.dir, loki.url, files, self.labels)
        self.err = open(self.dir / "stderr", "wb")  # noqa: SIM115 - closed in stop()
        tree, env = ROOT, None
        if agent == "baseline":  # the other checkout's packages first on the path (its offload child too)
            tree = BASELINE[0]
            if BASELINE_YAML:
                cfg.write_text(cfg.read_text() + "".join(f"{y}\n" for y in BASELINE_YAML))
            env = {**os.environ, "PYTHONPATH": str(tree), **BASELINE_ENV}
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(command("promtail" if agent == "promtail" else "redis-shipper", bindir, cfg,
                                             sys.executable), cwd=tree, env=env,
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        STARTED.append(self.proc)
        self.tree = TreeSampler(self.proc.pid)
        self.rss_peak = 0

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise SystemExit(f"{self.name} exited {self.proc.returncode}:\n"
                             f"{(self.dir / 'stderr').read_bytes()[-3000:].decode('utf-8', 'replace')}")

    def cpu(self) -> float:
        """CPU seconds of the whole tree so far (the sampler's last sample of every pid)."""
        self.tree.sample()
        return sum(self.tree.cpu.values())

    def rss(self) -> int:
        total = 0
        for p in [self.proc.pid, *proc_children(self.proc.pid)]:
            try:
                total += proc_mem(p)["VmRSS"]
            except (OSError, KeyError):
                pass
        self.rss_peak = max(self.rss_peak, total)
        return total

    def stop(self) -> float:
        """Stop the agent; returns the tree's total CPU seconds."""
        self.tree.halt.set()
        self.tree.join()
        cpu = self.cpu()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        return cpu


def wait_until(pred: Callable[[], bool], timeout: float, run: Run, step: float = 0.2) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        run.check()
        time.sleep(step)
    return pred()


def wait_all_in(loki: Loki, run: Run, expected: int, received0: int, timeout: float) -> float:
    """Seconds since spawn until Loki holds exactly ``expected`` entries of the run."""
    if not wait_until(lambda: loki.lines_received() - received0 >= expected, timeout, run):
        raise SystemExit(f"{run.name}: only {loki.lines_received() - received0:,} of {expected:,} lines reached Loki")
    t = time.monotonic() - run.t0
    if not wait_until(lambda: loki.count(run.selector) >= expected, 60, run, step=0.5):
        raise SystemExit(f"{run.name}: Loki holds {loki.count(run.selector):,} entries, expected {expected:,}")
    n = loki.count(run.selector)
    if n != expected:
        print(f"   !! {run.name}: Loki holds {n:,} entries, expected exactly {expected:,}")
    return t


# ============================================================================ scenarios
def backlog(args: argparse.Namespace, tmp: Path, loki: Loki, bindir: Path) -> dict[str, Any]:
    log = tmp / "backlog.log"
    n = build_backlog_file(log, args.lines)
    events = len(parse_file(log))
    expected = {"promtail": n, "redis-shipper": events, "baseline": events}
    print(f"\n1. backlog: {n:,} lines ({log.stat().st_size / 1e6:.1f} MB, sample-logs/ Redis 6.2, 7.0, Sentinel 7.0, "
          f"crash reports included) = {events:,} redis-shipper events; spawn -> every entry in Loki")
    rows: list[dict[str, Any]] = []
    for i in range(1, args.pairs + 1):
        row: dict[str, Any] = {}
        for agent in agents():
            r0 = loki.lines_received()
            run = Run(agent, f"backlog-{agent}-{i}", tmp, loki, [log], bindir)
            wall = wait_all_in(loki, run, expected[agent], r0, args.timeout)
            cpu = run.stop()
            row[agent] = {"wall_s": wall, "lines_per_s": n / wall, "cpu_s": cpu, "cpu_us_per_line": cpu / n * 1e6,
                          "peak_rss_mb": run.tree.peak_total_rss / 1e6}
            shutil.rmtree(run.dir, ignore_errors=True)
        report_pair(i, row, [("lines/s", "lines_per_s", "{:,.0f}", True),
                             ("CPU µs/line", "cpu_us_per_line", "{:.1f}", False),
                             ("peak RSS MB", "peak_rss_mb", "{:.0f}", False), ("wall s", "wall_s", "{:.2f}", False)])
        rows.append(row)
    return summarize("backlog", rows, ["lines_per_s", "cpu_us_per_line", "peak_rss_mb"])


def steady(args: argparse.Namespace, tmp: Path, loki: Loki, bindir: Path) -> dict[str, Any]:
    print(f"\n2. steady: {args.rate:.0f} lines/s, one write() per line; after {args.warmup:.0f} s of warm-up, "
          f"CPU and RSS over {args.window:.0f} s; freshness = Loki live-tail arrival - the line's timestamp")
    rows: list[dict[str, Any]] = []
    for i in range(1, args.pairs + 1):
        row: dict[str, Any] = {}
        for agent in agents():
            d = tmp / f"steady-{agent}-{i}-log"
            d.mkdir()
            log = d / "redis-server.log"
            log.touch()
            run = Run(agent, f"steady-{agent}-{i}", tmp, loki, [log], bindir)
            time.sleep(2.0)  # both agents have opened the file (promtail starts in ~0.1 s, the agent in ~1-2)
            tail = Tail(loki, run.selector)
            if tail.error:
                raise SystemExit(tail.error)
            w = Writer(log, args.rate)
            w.start()
            time.sleep(args.warmup)
            run.check()
            c0, t0 = run.cpu(), time.monotonic()
            wall0 = time.time()
            n0 = len(w.written)
            rss: list[int] = []
            while time.monotonic() - t0 < args.window:
                time.sleep(1.0)
                rss.append(run.rss())
            c1, t1 = run.cpu(), time.monotonic()
            wall1 = time.time()
            lines = len(w.written) - n0
            w.stop_ev.set()
            w.join()
            total = len(w.written)
            wait_until(lambda: loki.count(run.selector) >= total, 60, run, step=0.5)  # noqa: B023
            time.sleep(1.0)
            tail.stop()
            held = loki.count(run.selector)
            run.stop()
            lat = win = list(tail.latencies)  # every line written after the tail opened
            span = t1 - t0
            row[agent] = {"cpu_pct": (c1 - c0) / span * 100, "cpu_us_per_line": (c1 - c0) / lines * 1e6,
                          "rss_mb": max(rss) / 1e6, "lines": total, "held": held, "tailed": len(lat),
                          "p50_ms": pct(win, 50) * 1000, "p99_ms": pct(win, 99) * 1000, "max_ms": max(win) * 1000,
                          "tail_dropped": tail.dropped, "window": [wall0, wall1]}
            if held != total:
                print(f"   !! {run.name}: Loki holds {held:,} of {total:,} lines written")
            if len(lat) < total:
                print(f"   (tail saw {len(lat):,} of {total:,} entries; dropped {tail.dropped})")
            shutil.rmtree(run.dir, ignore_errors=True)
            shutil.rmtree(d, ignore_errors=True)
        report_pair(i, row, [("CPU µs/line", "cpu_us_per_line", "{:.1f}", False),
                             ("% of a core", "cpu_pct", "{:.2f}", False),
                             ("RSS MB", "rss_mb", "{:.1f}", False), ("fresh p50 ms", "p50_ms", "{:.0f}", False),
                             ("fresh p99 ms", "p99_ms", "{:.0f}", False), ("fresh max ms", "max_ms", "{:.0f}", False)])
        rows.append(row)
    return summarize("steady", rows, ["cpu_us_per_line", "cpu_pct", "rss_mb", "p99_ms"])


def idle(args: argparse.Namespace, tmp: Path, loki: Loki, bindir: Path) -> dict[str, Any]:
    print(f"\n3. idle: both agents at once, two files each (shipped first), nothing written; {args.idle_seconds:.0f} s")
    rows: list[dict[str, Any]] = []
    for i in range(1, args.pairs + 1):
        runs: dict[str, tuple[Run, int]] = {}
        for agent in AGENTS:
            d = tmp / f"idle-{agent}-{i}-log"
            d.mkdir()
            logs = [d / "redis-6379.log", d / "sentinel-26379.log"]
            for p, src in zip(logs, ["redis-7.0/replication-master.log", "sentinel-7.0/sentinel-1.log"], strict=True):
                p.write_bytes(b"".join(x + b"\n" for x in (ROOT / "sample-logs" / src).read_bytes().splitlines()
                                       if x.strip()))
            n = sum(len(p.read_bytes().splitlines()) for p in logs)
            if agent == "redis-shipper":
                n = sum(len(parse_file(p)) for p in logs)
            runs[agent] = (Run(agent, f"idle-{agent}-{i}", tmp, loki, logs, bindir), n)
        for run, n in runs.values():
            wait_until(lambda r=run, k=n: loki.count(r.selector) >= k, 120, run, step=0.5)  # type: ignore[misc]
        time.sleep(5.0)
        c0 = {a: r.cpu() for a, (r, _) in runs.items()}
        t0 = time.monotonic()
        time.sleep(args.idle_seconds)
        span = time.monotonic() - t0
        row = {}
        for a, (r, _) in runs.items():
            row[a] = {"cpu_pct": (r.cpu() - c0[a]) / span * 100, "rss_mb": r.rss() / 1e6}
            r.stop()
            shutil.rmtree(r.dir, ignore_errors=True)
        report_pair(i, row, [("% of a core", "cpu_pct", "{:.3f}", False), ("RSS MB", "rss_mb", "{:.1f}", False)])
        rows.append(row)
    return summarize("idle", rows, ["cpu_pct", "rss_mb"])


def outage(args: argparse.Namespace, tmp: Path, loki: Loki, bindir: Path) -> dict[str, Any]:
    warm = 10.0
    print(f"\n4. outage: {args.rate:.0f} lines/s; after {warm:.0f} s Loki is paused (SIGSTOP) for {args.outage:.0f} s, "
          "then resumed; peak RSS, catch-up rate, nothing lost")
    row: dict[str, Any] = {}
    for agent in AGENTS:
        d = tmp / f"outage-{agent}-log"
        d.mkdir()
        log = d / "redis-server.log"
        log.touch()
        run = Run(agent, f"outage-{agent}", tmp, loki, [log], bindir)
        time.sleep(2.0)
        w = Writer(log, args.rate)
        w.start()
        time.sleep(warm)
        loki.pause()
        t_out = time.monotonic()
        try:
            while time.monotonic() - t_out < args.outage:
                time.sleep(1.0)
                run.rss()
                run.check()
            rss_outage = run.rss_peak
        finally:
            loki.resume()
        t_rec = time.monotonic()
        held0 = loki.count(run.selector)
        caught = None
        while time.monotonic() - t_rec < max(600.0, args.outage * 2):
            time.sleep(0.5)
            run.rss()
            # within 1 s of what the writer had written when the count was asked: a count over an
            # outage's million lines takes Loki tens of seconds, while the writer goes on
            written = len(w.written)
            asked = time.monotonic()
            if loki.count(run.selector) >= written - int(args.rate):
                caught = asked - t_rec
                break
        held1 = loki.count(run.selector)
        w.stop_ev.set()
        w.join()
        total = len(w.written)
        wait_until(lambda: loki.count(run.selector) >= total, 120, run, step=0.5)  # noqa: B023
        held = loki.count(run.selector)
        run.stop()
        rate = (held1 - held0) / caught if caught else float("nan")
        row[agent] = {"rss_outage_mb": rss_outage / 1e6, "rss_peak_mb": run.rss_peak / 1e6, "catchup_s": caught,
                      "catchup_x": rate / args.rate, "lost": total - held}
        shutil.rmtree(run.dir, ignore_errors=True)
    report_pair(1, row, [("RSS in outage MB", "rss_outage_mb", "{:.0f}", False),
                         ("peak RSS MB", "rss_peak_mb", "{:.0f}", False),
                         ("catch-up x rate", "catchup_x", "{:.1f}", True), ("lines lost", "lost", "{}", False)])
    return {"pairs": [row]}


# ============================================================================ reporting
def report_pair(i: int, row: dict[str, Any], cols: list[tuple[str, str, str, bool]]) -> None:
    parts = []
    for title, key, fmt, _ in cols:
        p, s = row["promtail"][key], row["redis-shipper"][key]
        ratio = s / p if p else float("nan")
        text = f"{title}: promtail {fmt.format(p)}, redis-shipper {fmt.format(s)} ({ratio:.2f}x)"
        if "baseline" in row:
            b = row["baseline"][key]
            text += f", baseline {fmt.format(b)} ({b / p if p else float('nan'):.2f}x; redis-shipper/baseline " \
                    f"{s / b if b else float('nan'):.2f}x)"
        parts.append(text)
    print(f"   pair {i}: " + "; ".join(parts), flush=True)


def summarize(name: str, rows: list[dict[str, Any]], keys: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"pairs": rows, "median": {}}
    names = [a for a in agents() if all(a in r for r in rows)]
    for k in keys:
        ratios = [r["redis-shipper"][k] / r["promtail"][k] for r in rows if r["promtail"][k]]
        med = {a: statistics.median(r[a][k] for r in rows) for a in names}
        out["median"][k] = {**med, "ratio_median": statistics.median(ratios) if ratios else None,
                            "ratio_range": [min(ratios), max(ratios)] if ratios else None}
        if ratios:
            print(f"   {name} {k}: medians promtail {med['promtail']:,.3g}, redis-shipper {med['redis-shipper']:,.3g}; "
                  f"ratio median {statistics.median(ratios):.2f}x, range {min(ratios):.2f}-{max(ratios):.2f}x "
                  f"over {len(ratios)} pair(s)")
        if "baseline" in names:
            base = [r["baseline"][k] / r["promtail"][k] for r in rows if r["promtail"][k]]
            own = [r["redis-shipper"][k] / r["baseline"][k] for r in rows if r["baseline"][k]]
            out["median"][k]["baseline_ratio_median"] = statistics.median(base) if base else None
            out["median"][k]["vs_baseline_median"] = statistics.median(own) if own else None
            if base and own:
                print(f"   {name} {k}: baseline {med['baseline']:,.3g}, ratio to promtail median "
                      f"{statistics.median(base):.2f}x ({min(base):.2f}-{max(base):.2f}); redis-shipper/baseline "
                      f"median {statistics.median(own):.2f}x ({min(own):.2f}-{max(own):.2f})")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["backlog", "steady", "idle", "outage"], action="append")
    ap.add_argument("--pairs", type=int, default=1, help="interleaved promtail/redis-shipper pairs per scenario")
    ap.add_argument("--lines", type=int, default=300_000, help="backlog: lines in the file (1000000 for the long run)")
    ap.add_argument("--timeout", type=float, default=600.0, help="backlog: give up on a run after this long")
    ap.add_argument("--rate", type=float, default=1000.0, help="steady/outage: lines per second")
    ap.add_argument("--warmup", type=float, default=10.0, help="steady: seconds before the window")
    ap.add_argument("--window", type=float, default=40.0, help="steady: seconds measured")
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--outage", type=float, default=120.0, help="outage: seconds Loki is paused (the issue's: 600)")
    ap.add_argument("--loki-dir", help="where to unpack the binaries (default: ~/.cache/loki-3.4.6)")
    ap.add_argument("--json", help="also write every result to this JSON file")
    ap.add_argument("--baseline", help="another checkout of redis-shipper (e.g. `git worktree add /tmp/base main`), "
                                       "run as a third agent of each backlog and steady pair: before/after, same run")
    ap.add_argument("--baseline-tuning", metavar="SPEC",
                    help="REDIS_SHIPPER_TUNING of the baseline (off, -gc, -switch, -malloc: shipper/util/tuning.py); "
                         "without --baseline the baseline is this checkout")
    ap.add_argument("--baseline-yaml", action="append", default=[], metavar="TEXT",
                    help="top-level YAML added to the baseline's config, e.g. 'offload: {mode: \"off\"}'; "
                         "without --baseline the baseline is this checkout")
    args = ap.parse_args()
    BASELINE_YAML.extend(args.baseline_yaml)
    if args.baseline or args.baseline_tuning is not None or args.baseline_yaml:
        BASELINE.append(Path(args.baseline or ROOT).resolve())
    if args.baseline_tuning is not None:
        BASELINE_ENV["REDIS_SHIPPER_TUNING"] = args.baseline_tuning
    only = args.only or ["backlog", "steady", "idle"]
    bindir = unpack(args.loki_dir)
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
          f"Loki and promtail 3.4.6 from {bindir}")
    print(f"bytecode: {ensure_bytecode()}")
    if BASELINE:
        import compileall

        ok = all(compileall.compile_dir(BASELINE[0] / d, quiet=1) for d in ("shipper", "parsers"))
        print(f"baseline: redis-shipper from {BASELINE[0]} (bytecode {'compiled' if ok else 'NOT compiled'})")
    before = calibration_ns()
    print(f"calibration: one empty Python function call = {before:.1f} ns (lower is faster)")
    tmp = Path(tempfile.mkdtemp(prefix="promtail-compare-"))
    results: dict[str, Any] = {}
    loki = Loki(bindir, tmp)
    try:
        for name in ("backlog", "steady", "idle", "outage"):
            if name in only:
                results[name] = globals()[name](args, tmp, loki, bindir)
    finally:
        for p in STARTED:
            if p.poll() is None:
                p.kill()
                p.wait()
        loki.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    after = calibration_ns()
    print(f"calibration after the runs: {after:.1f} ns per empty call (before: {before:.1f} ns); "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    results["calibration_ns"] = {"before": before, "after": after}
    if args.json:
        Path(args.json).write_bytes(json_dump(results))


if __name__ == "__main__":
    main()
