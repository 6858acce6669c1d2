"""The whole agent, measured end to end: ``redis-shipper run`` as a process, through the spool.

    python bench/agent_bench.py                          # all four scenarios (outage: 10 minutes)
    python bench/agent_bench.py --only throughput --lines 300000
    python bench/agent_bench.py --only freshness --seconds 60
    python bench/agent_bench.py --only outage --outage 120   # quick run; the issue's is 600 s
    python bench/agent_bench.py --only idle --idle-seconds 60
    python bench/agent_bench.py --only throughput --profile /tmp/agent.txt   # py-spy, see below

Why another bench: bench/loki_bench.py measures parse -> LokiSink in ONE process with no spool
and no runtime. The real agent also seals every event into the audit chain (sha256), commits
each batch to SQLite (WAL, synchronous=FULL), re-reads rows for the sink worker (orjson.loads
per row) and runs it all on one asyncio loop. Only a measurement of the real process says
whether the issue's targets hold.

Every scenario runs ``python -m shipper.cli run --config <generated>`` (a ``type: file`` source,
a ``type: loki`` sink, default settings unless said) and a contract-enforcing Loki receiver
(tests/receivers/loki.py, subclassed here to record arrival times and to answer 503 on demand)
in ANOTHER process, so the receiver's CPU is not charged to the agent. All numbers are measured
in the run that prints them; nothing is stored.

1. **throughput** -- a file of ``--lines`` real lines (every non-Sentinel sample log, repeated;
   multi-line banners and crash reports included, as bench/loki_bench.py does), agent started
   with ``start_at: beginning``; events/s and lines/s from spawning the agent to the receiver
   holding every event (the expected count is the parser's own on the same file); agent CPU
   seconds (utime+stime from /proc, all threads) per event; peak RSS (VmHWM). Baseline in the
   same run: the same events through python-logging-loki's ``LokiHandler``, and the ratio.
   Target >= 50,000 events/s (issue 5).
2. **freshness** -- a writer appends real single-line Redis/Valkey lines (timestamps rewritten
   to the time of writing, one ``write()`` per line like Redis does) at ``--rate`` lines/s for
   ``--seconds``; the writer records each line's offset and write time, the receiver records
   each entry's arrival time and ``offset`` (structured metadata). Reported: p50/p95/p99/max of
   arrival - write, and the agent's CPU % at that rate. Target p99 <= 1.0 s.
3. **outage** -- lines arrive at ``--rate``/s; after a warm-up the receiver answers 503 for
   ``--outage`` seconds, then recovers. Reported: the agent's RSS every second (max <= 100 MB),
   the spool (rows, bytes, file size) and the file source's lag when the outage ends, the time
   from recovery to the first accepted push (the backoff), the catch-up rate (entries accepted
   per second until the receiver has caught up with the writer) and its ratio to the arrival
   rate (>= 10x).
4. **idle** -- the agent with two idle files and the Loki sink: CPU % of one core over
   ``--idle-seconds`` after a 5 s warm-up, and RSS (<= 0.5 %, <= 60 MB). bench/backfill_bench.py
   measures the same with the ``type: file`` sink, inotify on and off.

``--profile FILE`` runs py-spy (``pip install py-spy``) against the agent during scenario 1 and
writes collapsed stacks; a summary of where the CPU goes (own time per function, and inclusive
time per pipeline stage) is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from collections import Counter
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from calibrate import calibration_ns  # noqa: E402  (bench/ is the script's directory)

from parsers.events import dumps  # noqa: E402
from parsers.logfile import LogParser  # noqa: E402
from shipper.pipeline import spool_rows  # noqa: E402

LABELS = {"job": "redis", "instance": "redis://10.0.0.5:6379", "env": "bench"}
CLK = os.sysconf("SC_CLK_TCK")
#: every agent process started, so that a failing scenario never leaves one running
STARTED: list[Agent] = []


# ============================================================================ the receiver process
def serve_receiver(argv: list[str]) -> None:
    """``agent_bench.py _receiver --port N``: the contract Loki receiver plus bench endpoints.

    Added (not Loki): ``POST /_bench/outage?on=1|0`` (answer 503 to every push while on),
    ``GET /_bench/stats`` (stored entries by the stream's ``source`` label, and the push
    timeline), ``GET /_bench/arrivals`` ((offset, arrival time) of every entry since reset).
    """
    import gc

    from aiohttp import web

    from receivers.loki import Entry, LokiReceiver

    class BenchReceiver(LokiReceiver):
        def __init__(self, port: int) -> None:
            # entries are checked (contract, exactly-once by hash) and counted, not kept: see
            # LokiReceiver.keep_entries (kept: 7.6-8.1 µs per entry at 300,000, 12.4 at 1,000,000;
            # counted: 6.0-6.5 and 7.0)
            super().__init__(port, keep_entries=False)
            self.outage = False
            #: (time the push reached the handler, entries in it, status)
            self.timeline: list[tuple[float, int, int]] = []
            #: when the last push that carried entries had been stored (its handler returned)
            self.last_stored = 0.0
            self.arrivals: list[tuple[int, float]] = []
            #: record (offset, arrival) per entry: freshness and outage need it, throughput does not
            self.record_arrivals = False

        def make_app(self) -> web.Application:
            app = super().make_app()
            app.router.add_post("/_bench/outage", self._set_outage)
            app.router.add_get("/_bench/stats", self._bench_stats)
            app.router.add_get("/_bench/arrivals", self._arrivals)
            app.router.add_post("/_bench/record_arrivals", self._set_record)
            return app

        async def _set_outage(self, request: web.Request) -> web.Response:
            self.outage = request.query.get("on") == "1"
            return web.Response(status=204)

        async def _set_record(self, request: web.Request) -> web.Response:
            self.record_arrivals = request.query.get("on") == "1"
            return web.Response(status=204)

        async def _bench_stats(self, request: web.Request) -> web.Response:
            with self.lock:
                by_source: Counter[str] = Counter()
                for st in self._streams.values():
                    by_source[st.labels.get("source", "")] += st.count
                ok = [(t, n) for t, n, s in self.timeline if s == 204]
                body = {"by_source": dict(by_source), "duplicates_dropped": self.duplicates_dropped,
                        "pushes": len(self.timeline), "ok_pushes": len(ok),
                        "first_ok": ok[0][0] if ok else None, "last_ok": ok[-1][0] if ok else None,
                        "last_stored": self.last_stored,
                        "statuses": dict(Counter(str(s) for _, _, s in self.timeline))}
                since = float(request.query.get("timeline_since", "inf"))
                body["timeline"] = [x for x in self.timeline if x[0] >= since]
            return web.Response(body=orjson.dumps(body), content_type="application/json")

        async def _arrivals(self, request: web.Request) -> web.Response:
            with self.lock:
                data = list(self.arrivals)
            return web.Response(body=orjson.dumps(data), content_type="application/json")

        async def _push(self, request: web.Request) -> web.Response:
            t = time.time()
            if self.outage:
                await request.read()
                with self.lock:
                    self.timeline.append((t, 0, 503))
                return web.Response(status=503, text="bench: outage\n")
            before = len(self.pushes)
            resp = await super()._push(request)
            # no await between the base handler's append and here: pushes[-1] is this request's
            if len(self.pushes) > before:
                rec = self.pushes[-1]
                n = rec.entries
                with self.lock:
                    self.timeline.append((t, n, rec.status))
                    if n and rec.status == 204:
                        self.last_stored = time.time()
                gc.freeze()  # what this push left (its record, hashes) is kept to the end: never scan it again
            return resp

        def _decode(self, raw: bytes, enc: str, ctype: str) -> list[tuple[str, list[Entry]]]:
            # arrivals are taken from the decoded request (the receiver does not keep entries), at
            # the time its body had arrived
            streams = super()._decode(raw, enc, ctype)
            if self.record_arrivals:
                t = time.time()
                with self.lock:
                    for _, entries in streams:
                        for e in entries:
                            off = dict(e.metadata).get("offset")
                            if off is not None:
                                self.arrivals.append((int(off), t))
            return streams

        def reset(self) -> None:
            super().reset()
            with self.lock:
                self.timeline.clear()
                self.arrivals.clear()

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args(argv)

    # the receiver keeps a hash per entry and a record per push (exactly-once is checked on them): a
    # cyclic-GC pass over what accumulates is the instrument's cost, not the agent's; frozen objects
    # are never scanned again, and each push freezes what it left
    gc.set_threshold(100_000, 50, 50)
    rx = BenchReceiver(args.port).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"bench loki receiver on {rx.url}", flush=True)
    done.wait()
    rx.stop()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    """Client side of the receiver process."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.errors = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, __file__, "_receiver", "--port", str(self.port)], cwd=ROOT,
                                     stdout=subprocess.DEVNULL, stderr=self.errors)
        for _ in range(200):
            try:
                self.stats()
                return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        raise SystemExit("receiver did not start")

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=60) as r:
            return orjson.loads(r.read())

    def _post(self, path: str) -> None:
        urllib.request.urlopen(urllib.request.Request(self.url + path, data=b"", method="POST"), timeout=30)

    def stats(self, timeline_since: float = float("inf")) -> dict[str, Any]:
        return self._get(f"/_bench/stats?timeline_since={timeline_since}")  # type: ignore[no-any-return]

    def count(self, source: str = "redis") -> int:
        return int(self.stats()["by_source"].get(source, 0))

    def arrivals(self) -> list[tuple[int, float]]:
        return [(int(o), float(t)) for o, t in self._get("/_bench/arrivals")]

    def outage(self, on: bool) -> None:
        self._post(f"/_bench/outage?on={int(on)}")

    def record_arrivals(self, on: bool = True) -> None:
        self._post(f"/_bench/record_arrivals?on={int(on)}")

    def reset(self) -> None:
        self._post("/_test/reset")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.errors.seek(0)
        err = self.errors.read().decode("utf-8", "replace")
        if "Traceback" in err or "Error" in err:
            print(f"   receiver stderr:\n{err[-3000:]}")
        self.errors.close()


# ============================================================================ the agent process
def machine_cpu() -> list[int]:
    """The machine's CPU time counters (/proc/stat, all cores): user nice system idle iowait ..."""
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def machine_cpu_since(before: list[int]) -> tuple[float, int]:
    """(busy fraction of all cores since ``before``, number of cores): the CPU left for the run."""
    now = machine_cpu()
    d = [b - a for a, b in zip(before, now, strict=True)]
    total = sum(d[:8])  # guest time is already inside user
    idle = d[3] + d[4]
    return (1 - idle / total if total else float("nan")), os.cpu_count() or 1


def proc_cpu(pid: int) -> float:
    """utime + stime of the whole process (every thread), seconds."""
    return sum(proc_cpu_split(pid))


def proc_cpu_split(pid: int) -> tuple[float, float]:
    """(utime, stime) of the whole process, seconds: stime is the kernel's share (fsync, inotify)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK, int(fields[12]) / CLK


def proc_faults(pid: int) -> int:
    """Minor page faults of the whole process so far (first touches of fresh memory: costly in a VM)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[7])


def proc_children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (the offload process, its helpers), from /proc."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(x) for x in (task / "children").read_text().split()]
            except OSError:
                continue
            out.extend(kids)
            todo.extend(kids)
    return out


def tree_rss(pid: int) -> int:
    """VmRSS of the agent plus its offload process, if one runs (what the host pays)."""
    total = 0
    for p in [pid, *proc_children(pid)]:
        try:
            total += proc_mem(p)["VmRSS"]
        except (OSError, KeyError):
            pass
    return total


class TreeSampler(threading.Thread):
    """Samples the CPU time and peak RSS of a process and all its descendants every 0.1 s.

    A descendant's last sample counts (it may exit before the end); the agent's own offload
    process is such a descendant, and its CPU is part of what the agent costs.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.cpu: dict[int, float] = {}
        self.hwm: dict[int, int] = {}
        self.faults: dict[int, int] = {}
        #: the largest sum of VmRSS over the whole tree seen in one sample
        self.peak_total_rss = 0
        self.halt = threading.Event()
        self.start()

    def sample(self) -> None:
        total = 0
        for p in [self.pid, *proc_children(self.pid)]:
            try:
                self.cpu[p] = proc_cpu(p)
                mem = proc_mem(p)
                self.hwm[p] = mem["VmHWM"]
                total += mem["VmRSS"]
                self.faults[p] = proc_faults(p)
            except (OSError, KeyError, IndexError, ValueError):
                pass
        self.peak_total_rss = max(self.peak_total_rss, total)

    def run(self) -> None:
        while not self.halt.wait(0.1):
            self.sample()

    def stop(self) -> tuple[float, float, int, int]:
        """(agent CPU s, descendants' CPU s, agent peak RSS, descendants' summed peak RSS)."""
        self.halt.set()
        self.join()
        self.sample()
        own = self.cpu.get(self.pid, 0.0)
        return own, sum(self.cpu.values()) - own, self.hwm.get(self.pid, 0), \
            sum(self.hwm.values()) - self.hwm.get(self.pid, 0)


def proc_mem(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0]) * 1024
    return out


class Agent:
    """``redis-shipper run`` with a generated config, in its own process."""

    stderr: Any

    def __init__(self, d: Path, logs: list[Path], loki_url: str, *, extra_source: str = "",
                 extra_sink: str = "", extra_top: list[str] | None = None) -> None:
        self.dir = d
        self.state = d / "state"
        srcs = "".join(f"  - type: file\n    path: {p}\n    start_at: beginning\n{extra_source}" for p in logs)
        self.config = d / "agent.yaml"
        self.config.write_text(
            f"state_dir: {self.state}\ntimezone: UTC\n" + "".join(f"{x}\n" for x in extra_top or [])
            +
            f"labels: {orjson.dumps(LABELS).decode()}\n"
            f"metrics: {{listen: '127.0.0.1:{free_port()}'}}\n"
            f"sources:\n{srcs}"
            f"sinks:\n  - type: loki\n    url: {loki_url}\n{extra_sink}"
        )
        self.stderr = open(d / "agent.stderr", "wb")  # noqa: SIM115 - closed in stop()
        self.t0 = time.time()
        self.proc = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(self.config)],
                                     cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.stderr)
        self.pid = self.proc.pid
        STARTED.append(self)

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise SystemExit(f"agent exited {self.proc.returncode}:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        self.stderr.flush()
        return (self.dir / "agent.stderr").read_bytes()[-n:].decode("utf-8", "replace")

    def cpu(self) -> float:
        return proc_cpu(self.pid)

    def mem(self) -> dict[str, int]:
        return proc_mem(self.pid)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        return self.proc.returncode

    def spool(self, *, quick: bool = False) -> dict[str, Any]:
        """Rows and bytes in the spool (read-only, beside the running agent), file sizes, positions.

        ``quick``: rows from the first and last row ids (two index lookups, no bytes): the probe
        that runs every 0.25 s during a throughput run must not scan the table it measures (a
        COUNT/SUM over 150,000 rows every 0.25 s cost the machine ~20 % of a core)."""
        db = sqlite3.connect(f"file:{self.state / 'spool.sqlite'}?mode=ro", uri=True, timeout=30)
        try:
            if quick:
                lo, top = spool_rows.oldest(db), spool_rows.top_of(db)
                rows, size = (top - lo + 1 if lo is not None else 0), None
                acked = db.execute("SELECT MIN(acked) FROM sink_cursors").fetchone()[0]
                pending = top - acked if acked is not None else None
            else:
                pending = None
                rows, size = db.execute("SELECT COALESCE(SUM(n), 0), COALESCE(SUM(size), 0) FROM batches").fetchone()
            positions = {k: orjson.loads(v) for k, v in db.execute("SELECT key, value FROM positions")}
        finally:
            db.close()
        files = {p.name: p.stat().st_size for p in self.state.glob("spool.sqlite*")}
        return {"rows": rows, "bytes": size, "files": files, "positions": positions, "pending": pending}


def wait_for(pred: Any, timeout: float, agent: Agent | None = None, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        if agent is not None:
            agent.check()
        time.sleep(step)
    return bool(pred())


# ============================================================================ inputs
def build_mixed_file(path: Path, lines: int) -> int:
    """The real sample logs (Redis 6.2/7.0, Valkey 9; no Sentinel) repeated up to ``lines`` lines
    (multi-line banners and crash reports included). Like bench/loki_bench.py's ``build_file``
    but every line ends in ``\n`` (a CRLF sample line becomes LF), so not a call to it: the
    figures in docs/performance-agent.md were measured on this file."""
    sample: list[bytes] = []
    for f in sorted((ROOT / "sample-logs").glob("*/*.log")):
        if "sentinel" in f.parent.name:
            continue
        sample.extend(x + b"\n" for x in f.read_bytes().splitlines())
    out = bytearray()
    n = 0
    while n < lines:
        take = sample[: lines - n]
        out += b"".join(take)
        n += len(take)
    path.write_bytes(bytes(out))
    return n


def build_steady_file(path: Path, lines: int) -> int:
    """``lines`` real single-line events (see :func:`steady_lines`), 1 ms apart, ending now: a
    steady-state log, one event per line."""
    sample = steady_lines()
    t = time.time() - lines / 1000
    with open(path, "wb") as f:
        for i in range(lines):
            pre, post = sample[i % len(sample)]
            ts = time.strftime("%d %b %Y %H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}"
            f.write(pre + ts.encode() + post + b"\n")
            t += 0.001
    return lines


def parse_file(path: Path) -> list[dict[str, Any]]:
    """The events the agent's parser makes of ``path`` (the expected count, and the baseline's input)."""
    parser = LogParser(kind="auto", tz=UTC, year=2026)
    evs: list[dict[str, Any]] = []
    data = path.read_bytes()
    start = 0
    while True:
        nl = data.find(b"\n", start)
        if nl < 0:
            break
        evs.extend(parser.feed(data[start:nl], start))
        start = nl + 1
    evs.extend(parser.flush())
    return evs


_PREFIXED = re.compile(rb"^(\d+:[XCSM] )\d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2}\.\d{3}( [.\-*#] .*)$")


def steady_lines() -> list[tuple[bytes, bytes]]:
    """Real 5.0+-format lines of Redis 7.0 and Valkey 9 that are one event each (no banner, no
    crash report), split around their timestamp: (``pid:R ``, `` * message``)."""
    out: list[tuple[bytes, bytes]] = []
    files = [*(ROOT / "sample-logs" / "redis-7.0").glob("*.log"), *(ROOT / "sample-logs" / "valkey-9").glob("*.log")]
    for f in sorted(files):
        if "crash" in f.name:
            continue
        for line in f.read_bytes().splitlines():
            m = _PREFIXED.match(line)
            if not m:
                continue
            p = LogParser(kind="auto", tz=UTC, year=2026)
            evs = p.feed(line, 0) + p.flush()
            if len(evs) == 1 and evs[0].get("category") not in ("crash", "raw") and evs[0].get("lines", 1) == 1:
                out.append((m.group(1), m.group(2)))
    if not out:
        raise SystemExit("no single-line events in sample-logs/")
    return out


class Writer(threading.Thread):
    """Appends real lines at ``rate`` lines/s, one ``write()`` each (as Redis's serverLog does),
    timestamps = the time of writing (UTC); records (offset, write time) of every line."""

    def __init__(self, path: Path, rate: float, *, seconds: float | None = None) -> None:
        super().__init__(daemon=True, name="writer")
        self.path = path
        self.rate = rate
        self.seconds = seconds
        self.lines = steady_lines()
        self.written: list[tuple[int, float]] = []
        self.stop_ev = threading.Event()
        self.behind_max = 0.0

    def line(self, i: int, t: float) -> bytes:
        pre, post = self.lines[i % len(self.lines)]
        ts = time.strftime("%d %b %Y %H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}"
        return pre + ts.encode() + post + b"\n"

    def run(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            off = os.fstat(fd).st_size
            t0 = time.monotonic()
            i = 0
            while not self.stop_ev.is_set():
                due = t0 + i / self.rate
                now = time.monotonic()
                if self.seconds is not None and due - t0 >= self.seconds:
                    break
                if due > now:
                    time.sleep(min(due - now, 0.05))
                    continue
                self.behind_max = max(self.behind_max, now - due)
                wall = time.time()
                data = self.line(i, wall)
                os.write(fd, data)
                self.written.append((off, time.time()))
                off += len(data)
                i += 1
        finally:
            os.close(fd)


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, int(round(p / 100 * len(s))) - 1))]


# ============================================================================ 1. throughput
def throughput(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    d = tmp / "throughput"
    d.mkdir()
    log = d / "redis-server.log"
    if args.input == "mixed":
        nlines = build_mixed_file(log, args.lines)
        what = "sample-logs/ Redis 6.2, 7.0, Valkey 9 files repeated, banners and crash reports included"
    else:
        nlines = build_steady_file(log, args.lines)
        what = "single-line events of sample-logs/ Redis 7.0 and Valkey 9, timestamps 1 ms apart"
    events = parse_file(log)
    expected = len(events)
    print(f"\n1. throughput: {nlines:,} real lines ({log.stat().st_size / 1e6:.1f} MB, {what}) = {expected:,} "
          f"events by the parser; agent from spawn to the receiver holding every event")
    rx = Receiver()
    prof = None
    try:
        rx_cpu0 = proc_cpu(rx.proc.pid)
        agent = Agent(d, [log], rx.url, extra_sink="".join(f"    {x}\n" for x in args.sink_option),
                      extra_source="".join(f"    {x}\n" for x in args.source_option), extra_top=args.agent_option)
        tree = TreeSampler(agent.pid)
        machine0 = machine_cpu()
        if args.profile:
            prof = subprocess.Popen(["py-spy", "record", "--pid", str(agent.pid), "--format", "raw", "--rate",
                                     "200", "--threads", "--nonblocking", "-o", args.profile,
                                     *(["--gil"] if args.profile_gil else [])],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # where the time goes: when the file source has committed the whole file, and how many
        # events waited in the spool for the sink (source faster than the sink = the sink side is
        # the bottleneck)
        size = log.stat().st_size
        progress = {"source_done": None, "spool_max_pending": 0}
        next_probe = 0.0

        def done() -> bool:
            nonlocal next_probe
            if time.monotonic() >= next_probe and agent.state.joinpath("spool.sqlite").exists():
                next_probe = time.monotonic() + 0.25
                try:
                    sp = agent.spool(quick=True)
                except sqlite3.Error:
                    sp = None
                if sp is not None:
                    progress["spool_max_pending"] = max(progress["spool_max_pending"], sp["pending"] or 0)
                    offs = [v.get("offset", 0) for v in sp["positions"].values() if isinstance(v, dict)]
                    if progress["source_done"] is None and offs and max(offs) >= size:
                        progress["source_done"] = time.time() - agent.t0
            return rx.count() >= expected

        # polled every 0.1 s (each poll is an HTTP request the receiver answers on the shared CPU);
        # the end time is the receiver's own: when the push that completed the count was stored
        ok = wait_for(done, args.timeout, agent, step=0.1)
        busy, cores = machine_cpu_since(machine0)
        cpu, kids_cpu, hwm, kids_hwm = tree.stop()
        rx_cpu = proc_cpu(rx.proc.pid) - rx_cpu0
        mem = {"VmHWM": hwm}
        if not ok:
            raise SystemExit(f"only {rx.count():,} of {expected:,} events arrived in {args.timeout}s\n"
                             f"{agent.log_tail()}")
        st = rx.stats()
        wall = st["last_stored"] - agent.t0
        steady = expected / (st["last_ok"] - st["first_ok"]) if st["last_ok"] > st["first_ok"] else float("nan")
        rc = agent.stop()
        if prof is not None:
            prof.wait(30)
        arrived = rx.count()
        res = {"lines": nlines, "events": expected, "wall_s": wall, "events_per_s": expected / wall,
               "lines_per_s": nlines / wall, "cpu_s": cpu, "cpu_us_per_event": cpu / expected * 1e6,
               "cpu_us_per_line": cpu / nlines * 1e6, "peak_rss_mb": mem["VmHWM"] / 1e6,
               "first_push_after_s": st["first_ok"] - agent.t0, "steady_events_per_s": steady,
               "pushes": st["ok_pushes"], "duplicates": st["duplicates_dropped"], "exit": rc,
               "arrived_after_stop": arrived, "machine_busy": busy, **progress}
        print(f"   agent: {expected:,} events in {wall:.2f} s = {res['events_per_s']:,.0f} events/s, "
              f"{res['lines_per_s']:,.0f} lines/s (spawn to last event; first push {res['first_push_after_s']:.2f} s "
              f"after spawn; first to last push {steady:,.0f} events/s)")
        res.update(offload_cpu_s=kids_cpu, offload_peak_rss_mb=kids_hwm / 1e6, receiver_cpu_s=rx_cpu,
                   total_cpu_us_per_event=(cpu + kids_cpu) / expected * 1e6)
        print(f"   agent CPU {cpu:.2f} s = {res['cpu_us_per_event']:.1f} µs/event "
              f"({res['cpu_us_per_line']:.1f} µs/line), {cpu / wall * 100:.0f}% of one core; "
              f"peak RSS (VmHWM) {res['peak_rss_mb']:.0f} MB; "
              f"{st['ok_pushes']} pushes; exit {rc}")
        faults = tree.faults.get(agent.pid, 0)
        kid_faults = sum(tree.faults.values()) - faults
        res.update(page_faults_per_event=faults / expected, offload_page_faults_per_event=kid_faults / expected)
        print(f"   minor page faults per event: agent {faults / expected:.2f}, "
              f"offload process {kid_faults / expected:.2f}")
        res["peak_total_rss_mb"] = tree.peak_total_rss / 1e6
        print(f"   offload process CPU {kids_cpu:.2f} s = {kids_cpu / expected * 1e6:.1f} µs/event, peak RSS "
              f"{kids_hwm / 1e6:.0f} MB (agent + offload together, sampled every 0.1 s: "
              f"{tree.peak_total_rss / 1e6:.0f} MB at most); "
              f"agent + offload {res['total_cpu_us_per_event']:.1f} µs/event; "
              f"receiver (same machine) {rx_cpu / expected * 1e6:.1f} µs/event; load average now "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"   the machine's {cores} cores were {busy * 100:.0f}% busy from spawn to the end of the run "
              f"(/proc/stat: every process, the bench's own included)")
        sd = progress["source_done"]
        print(f"   the file source had committed the whole file to the spool "
              f"{f'{sd:.2f} s' if sd is not None else '(not seen)'} after spawn; at most "
              f"{progress['spool_max_pending']:,} events waited in the spool for the sink's acknowledgement "
              f"(sampled every 0.25 s)")
        if arrived != expected:
            print(f"   !! receiver holds {arrived:,} events, expected exactly {expected:,}")

        # baseline: python-logging-loki, the same events, one POST per record
        base = [dumps(ev) for ev in events[: args.baseline_records]]
        del events
        if base:
            b = baseline(rx, base)
            res["baseline"] = b
            res["ratio"] = res["events_per_s"] / b["events_per_s"]
            print(f"   baseline python-logging-loki 0.3.1 LokiHandler: {b['events']:,} records in {b['wall_s']:.2f} s "
                  f"= {b['events_per_s']:,.0f} records/s ({b['arrived']:,} arrived)")
            print(f"   ratio agent / baseline: {res['ratio']:.1f}x")
        else:
            print("   baseline: not run (--baseline-records 0)")
        print(f"   target >= 50,000 events/s: {'met' if res['events_per_s'] >= 50_000 else 'NOT met'}")
        if prof is not None:
            err = prof.stderr.read().decode() if prof.stderr else ""
            if prof.returncode not in (0, None) or not Path(args.profile).exists():
                print(f"   py-spy failed: {err[-500:]}")
            else:
                summarize_profile(Path(args.profile), expected)
        return res
    finally:
        if prof is not None and prof.poll() is None:
            prof.kill()
        rx.close()


def baseline(rx: Receiver, lines: list[bytes]) -> dict[str, float]:
    import logging

    import logging_loki

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        handler = logging_loki.LokiHandler(url=rx.url + "/loki/api/v1/push", tags={"job": "baseline"}, version="1")
    logger = logging.getLogger("bench.baseline")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    n0 = rx.count("")  # the baseline's stream has no ``source`` label
    t0 = time.perf_counter()
    for raw in lines:
        logger.info(raw.decode())
    wall = time.perf_counter() - t0
    handler.close()
    logger.removeHandler(handler)
    arrived = rx.count("") - n0
    return {"events": len(lines), "arrived": arrived, "wall_s": wall, "events_per_s": len(lines) / wall}


# ---------------------------------------------------------------------------- profile summary
#: (stage, frame substrings); the FIRST stage with a frame in the sample's stack wins, so the
#: order goes from the most specific (gzip inside the Loki sink) to the most general
STAGES = [
    ("gzip of the push body (LokiSink.compress)", ("LokiSink.compress",)),
    ("positions.json mirror (spool)", ("_write_positions_mirror",)),
    ("spool append: seal (dumps + sha256 chain)", ("Spool._seal",)),
    ("spool append: SQLite INSERT + COMMIT (fsync)", ("Spool._append",)),
    ("spool read for the sink (SELECT + orjson.loads per row)", ("Spool.read.",)),
    ("spool ack + delete", ("Spool.ack.", "Spool._gc")),
    ("sink encode (group, metadata, orjson.dumps)", ("(shipper/sinks/loki.py",)),
    ("HTTP (aiohttp, sinks/http.py)", ("(aiohttp/", "(shipper/sinks/http.py", "(yarl/", "(multidict/")),
    ("labeler + per-event metrics", ("(shipper/pipeline/labels.py", "Agent._label", "(prometheus_client/")),
    ("parser (parsers/*)", ("(parsers/",)),
    ("follower (read, split lines, checkpoints)", ("(shipper/sources/files/",)),
    ("sink worker loop (runtime.py)", ("SinkWorker.",)),
    ("start-up (imports, config)", ("importlib", "(pydantic", "shipper/config/")),
]


def summarize_profile(path: Path, events: int) -> None:
    """Samples per thread, per pipeline stage and own time per function, from py-spy's raw
    output (``thread;frame;frame;... count``, outermost first)."""
    own: Counter[str] = Counter()
    stage: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        c = int(n)
        frames = stack.split(";")
        total += c
        tname = frames[0].partition(": ")[2] or "MainThread"
        threads[re.sub(r"_\d+$", "", tname)] += c
        own[frames[-1]] += c
        for name, keys in STAGES:
            if any(k in f for k in keys for f in frames):
                stage[name] += c
                break
        else:
            stage["other: asyncio loop, executor hand-offs, GIL waits"] += c
    if not total:
        print("   py-spy: no samples")
        return
    print(f"\n   py-spy: {total:,} samples of non-idle threads; per thread "
          "(asyncio = the default executor where the follower reads and parses):")
    for t, c in threads.most_common(6):
        print(f"      {c / total * 100:5.1f}%  {t}")
    print("   share per pipeline stage (first matching stage from the most specific):")
    for name, c in stage.most_common():
        print(f"      {c / total * 100:5.1f}%  {name}")
    print("   top own-time functions:")
    for f, c in own.most_common(25):
        print(f"      {c / total * 100:5.1f}%  {f[:150]}")


# ============================================================================ 2. freshness
def freshness(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    d = tmp / "freshness"
    d.mkdir()
    log = d / "redis-server.log"
    log.touch()
    wait = "the default batch max_wait" if args.max_wait is None else f"batch max_wait {args.max_wait}s"
    print(f"\n2. freshness: {args.rate:.0f} lines/s of real single-line events for {args.seconds:.0f} s into a file "
          f"the agent follows ({wait}, inotify on); line written -> entry at the receiver")
    rx = Receiver()
    rx.record_arrivals()
    try:
        extra = f"    batch: {{max_wait: {args.max_wait}s}}\n" if args.max_wait is not None else ""
        agent = Agent(d, [log], rx.url, extra_sink=extra)
        # warm-up: one line, wait until it arrived (the agent is then following the file)
        w0 = Writer(log, 1000, seconds=0.001)
        w0.run()
        # every warm-up line (0.001 s at 1,000/s can be two: the float sum of the due times), so
        # that none arrives after the reset and is counted as a measured line
        if not wait_for(lambda: rx.count() >= len(w0.written), 60, agent):
            raise SystemExit(f"the warm-up line never arrived\n{agent.log_tail()}")
        rx.reset()
        w = Writer(log, args.rate, seconds=args.seconds)
        (u0, s0), m0 = proc_cpu_split(agent.pid), time.monotonic()
        rss: list[int] = []
        w.start()
        while w.is_alive():
            w.join(1.0)
            rss.append(agent.mem()["VmRSS"])
        u1, s1 = proc_cpu_split(agent.pid)
        span = time.monotonic() - m0
        cpu_pct = (u1 + s1 - u0 - s0) / span * 100
        sys_pct = (s1 - s0) / span * 100
        n = len(w.written)
        offsets = {o for o, _ in w.written}
        ok = wait_for(lambda: rx.count() >= n and offsets <= {o for o, _ in rx.arrivals()}, 60, agent, step=0.25)
        arr = dict(rx.arrivals())
        rc = agent.stop()
        lat = [arr[o] - t for o, t in w.written if o in arr]
        missing = n - len(lat)
        res = {"lines": n, "arrived": len(lat), "missing": missing, "p50": pct(lat, 50), "p95": pct(lat, 95),
               "p99": pct(lat, 99), "max": max(lat), "mean": statistics.fmean(lat), "cpu_pct": cpu_pct,
               "sys_pct": sys_pct,
               "rss_max_mb": max(rss) / 1e6, "writer_behind_max_ms": w.behind_max * 1000, "exit": rc}
        print(f"   {n:,} lines written ({n / args.seconds:,.0f}/s; writer at most {res['writer_behind_max_ms']:.1f} ms "
              f"late), {len(lat):,} arrived{'' if ok and not missing else f', {missing} MISSING'}")
        print(f"   latency write -> receiver: p50 {res['p50'] * 1000:.0f} ms, p95 {res['p95'] * 1000:.0f} ms, "
              f"p99 {res['p99'] * 1000:.0f} ms, max {res['max'] * 1000:.0f} ms (mean {res['mean'] * 1000:.0f} ms)")
        print(f"   agent CPU at this rate: {cpu_pct:.1f}% of one core (kernel {sys_pct:.1f}%); "
              f"RSS max {res['rss_max_mb']:.0f} MB; exit {rc}")
        print(f"   target p99 <= 1.0 s: {'met' if res['p99'] <= 1.0 else 'NOT met'}")
        return res
    finally:
        rx.close()


# ============================================================================ 3. outage
def outage(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    d = tmp / "outage"
    d.mkdir()
    log = d / "redis-server.log"
    log.touch()
    warm = 10.0
    print(f"\n3. outage: {args.rate:.0f} lines/s; after {warm:.0f} s the receiver answers 503 for {args.outage:.0f} s, "
          f"then recovers (default spool: 256 MiB, when_full: block)")
    rx = Receiver()
    try:
        agent = Agent(d, [log], rx.url)
        w = Writer(log, args.rate)
        w.start()
        samples: list[tuple[float, int]] = []  # (time since start, VmRSS of the agent + its offload process)
        t_start = time.monotonic()

        def sample() -> None:
            agent.check()
            samples.append((time.monotonic() - t_start, tree_rss(agent.pid)))

        while time.monotonic() - t_start < warm:
            time.sleep(1.0)
            sample()
        before = rx.count()
        rx.outage(True)
        t_out = time.monotonic()
        next_report = 60.0
        while time.monotonic() - t_out < args.outage:
            time.sleep(1.0)
            sample()
            if time.monotonic() - t_out >= next_report:
                print(f"      {next_report:4.0f} s into the outage: RSS {samples[-1][1] / 1e6:.0f} MB, "
                      f"{len(w.written):,} lines written", flush=True)
                next_report += 60.0
        sp = agent.spool()
        written_at_end = len(w.written)
        log_size = log.stat().st_size
        lag = min((log_size - int(v.get("offset", 0)) for v in sp["positions"].values()
                   if isinstance(v, dict) and "offset" in v), default=log_size)
        rss_outage = max(r for t, r in samples if t >= warm)
        cpu_at_recovery = agent.cpu()
        rx.outage(False)
        t_rec_wall = time.time()
        t_rec = time.monotonic()
        count_rec = rx.count()
        # caught up: the receiver holds every line written more than 2 s ago
        caught = None
        first_ok = None
        while time.monotonic() - t_rec < max(600.0, args.outage * 2):
            time.sleep(0.5)
            sample()
            st = rx.stats(timeline_since=t_rec_wall)
            if first_ok is None:
                oks = [t for t, _, s in st["timeline"] if s == 204]
                first_ok = min(oks) if oks else None
            have = st["by_source"].get("redis", 0)
            target = sum(1 for _, t in w.written if t <= time.time() - 2.0)
            if have >= target:
                caught = time.monotonic()
                break
        count_caught = rx.count()
        cpu_catchup = agent.cpu() - cpu_at_recovery
        w.stop_ev.set()
        w.join()
        total = len(w.written)
        ok = wait_for(lambda: rx.count() >= total, 120, agent)
        rc = agent.stop()
        arrived = rx.count()
        if caught is None:
            raise SystemExit(f"did not catch up within the time allowed\n{agent.log_tail()}")
        start = (first_ok - t_rec_wall) if first_ok else 0.0
        drain_s = caught - t_rec - start
        rate = (count_caught - count_rec) / drain_s if drain_s > 0 else float("nan")
        rss_catchup = max(r for t, r in samples if t >= t_rec - t_start)
        res = {"outage_s": args.outage, "rate": args.rate, "delivered_before": before,
               "written_during_outage": written_at_end, "spool_rows": sp["rows"], "spool_bytes": sp["bytes"],
               "spool_files": sp["files"], "source_lag_bytes": lag, "rss_max_outage_mb": rss_outage / 1e6,
               "rss_max_catchup_mb": rss_catchup / 1e6, "first_ok_after_s": start, "drain_s": drain_s,
               "catchup_events_per_s": rate, "ratio": rate / args.rate, "total_lines": total, "arrived": arrived,
               "all_arrived": ok and arrived >= total, "cpu_catchup_s": cpu_catchup, "exit": rc,
               "rss_series": [(round(t, 1), r) for t, r in samples]}
        files = ", ".join(f"{k} {v / 1e6:.0f} MB" for k, v in sp["files"].items())
        print(f"   end of outage: spool {sp['rows']:,} events, {sp['bytes'] / 1e6:.0f} MB of events (files: {files}); "
              f"file source {lag / 1e6:.1f} MB behind the writer "
              f"({'blocked by the full spool' if lag > 1e6 else 'not blocked'})")
        print(f"   agent RSS max during the outage {res['rss_max_outage_mb']:.0f} MB (target <= 100 MB: "
              f"{'met' if res['rss_max_outage_mb'] <= 100 else 'NOT met'}), "
              f"during catch-up {res['rss_max_catchup_mb']:.0f} MB")
        print(f"   recovery: first accepted push {start:.1f} s after the receiver recovered (backoff); then "
              f"{count_caught - count_rec:,} entries in {drain_s:.1f} s = {rate:,.0f} entries/s while lines kept "
              f"arriving at {args.rate:.0f}/s = {res['ratio']:.1f}x the arrival rate (target >= 10x: "
              f"{'met' if res['ratio'] >= 10 else 'NOT met'})")
        print(f"   all {total:,} lines written arrived: {res['all_arrived']} ({arrived:,} entries); exit {rc}")
        return res
    finally:
        rx.close()


# ============================================================================ 4. idle
def idle(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    d = tmp / "idle"
    (d / "log").mkdir(parents=True)
    logs = [d / "log" / "redis-6379.log", d / "log" / "sentinel-26379.log"]
    for p, sample in zip(logs, ["redis-7.0/replication-master.log", "sentinel-7.0/sentinel-1.log"], strict=True):
        shutil.copy(ROOT / "sample-logs" / sample, p)
    print(f"\n4. idle: two files nobody writes to (already shipped), Loki sink; {args.idle_seconds:.0f} s window "
          f"after a 5 s warm-up")
    rx = Receiver()
    try:
        agent = Agent(d, logs, rx.url)
        time.sleep(5)
        agent.check()
        c0, t0 = agent.cpu(), time.monotonic()
        time.sleep(args.idle_seconds)
        cpu = (agent.cpu() - c0) / (time.monotonic() - t0) * 100
        mem = agent.mem()
        rc = agent.stop()
        res = {"cpu_pct": cpu, "rss_mb": mem["VmRSS"] / 1e6, "hwm_mb": mem["VmHWM"] / 1e6, "exit": rc}
        print(f"   CPU {cpu:.3f}% of one core (target <= 0.5%: {'met' if cpu <= 0.5 else 'NOT met'}); "
              f"RSS {res['rss_mb']:.1f} MB = {mem['VmRSS'] / 2**20:.1f} MiB, peak {res['hwm_mb']:.1f} MB "
              f"(target <= 60 MB: {'met' if res['rss_mb'] <= 60 else 'NOT met'}); exit {rc}")
        return res
    finally:
        rx.close()


def ensure_bytecode() -> str:
    """Compile the agent's and the receiver's modules once, before anything is measured.

    An installed agent has bytecode: pip compiles every module at install time, and a container
    image or package carries the ``.pyc`` files. An editable checkout in an environment with
    ``PYTHONDONTWRITEBYTECODE=1`` (this project's VM sets it) has none, so every process the bench
    spawns -- the agent, its offload process, the receiver -- compiled ``shipper/`` and
    ``parsers/`` from source first, a start-up cost no deployed agent pays. compileall writes the
    files whatever that variable says; Python checks their source timestamps, so they never go stale.
    """
    import compileall

    dirs = [ROOT / "shipper", ROOT / "parsers", ROOT / "tests" / "receivers"]
    ok = all(compileall.compile_dir(str(d), quiet=2) for d in dirs)
    return ("shipper/, parsers/ and tests/receivers/ compiled (as an installed agent is)" if ok
            else "compiling failed: processes compile from source (slower start-up)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_receiver":
        serve_receiver(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=["throughput", "freshness", "outage", "idle"], action="append")
    ap.add_argument("--lines", type=int, default=300_000, help="throughput: lines in the file")
    ap.add_argument("--input", choices=["mixed", "steady"], default="mixed",
                    help="throughput: the sample files as they are (2-3 lines per event), or single-line events")
    ap.add_argument("--baseline-records", type=int, default=3_000)
    ap.add_argument("--timeout", type=float, default=600.0, help="throughput: give up after this long")
    ap.add_argument("--profile", help="throughput: run py-spy on the agent, raw collapsed stacks to this file")
    ap.add_argument("--profile-gil", action="store_true",
                    help="sample only the thread holding the GIL (Python CPU; hides fsync and GIL waits)")
    ap.add_argument("--sink-option", action="append", default=[], metavar="'KEY: VALUE'",
                    help="throughput: a line added to the Loki sink's config, e.g. 'structured_metadata: false'")
    ap.add_argument("--source-option", action="append", default=[], metavar="'KEY: VALUE'",
                    help="throughput: a line added to the file source's config, e.g. 'max_batch_events: 5000'")
    ap.add_argument("--agent-option", action="append", default=[], metavar="'KEY: VALUE'",
                    help="a top-level line added to the agent's config, e.g. 'offload: {mode: off}'")
    ap.add_argument("--rate", type=float, default=1000.0, help="freshness/outage: lines per second")
    ap.add_argument("--seconds", type=float, default=60.0, help="freshness: how long to write")
    ap.add_argument("--max-wait", type=float, help="freshness: the Loki sink's batch.max_wait (default: the agent's)")
    ap.add_argument("--outage", type=float, default=600.0, help="outage: seconds the receiver answers 503")
    ap.add_argument("--idle-seconds", type=float, default=60.0)
    ap.add_argument("--json", help="also write every result to this JSON file")
    args = ap.parse_args()
    only = args.only or ["throughput", "freshness", "outage", "idle"]
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
          f"python {sys.version.split()[0]}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    compiled = ensure_bytecode()
    print(f"bytecode: {compiled}")
    before = calibration_ns()
    print(f"calibration: one empty Python function call = {before:.1f} ns (the VM's per-core speed now; "
          "bench/parse_bench.py prints the same)")
    tmp = Path(tempfile.mkdtemp(prefix="agent-bench-"))
    results: dict[str, Any] = {}
    try:
        for name in ("throughput", "freshness", "outage", "idle"):
            if name in only:
                results[name] = globals()[name](args, tmp)
    finally:
        for agent in STARTED:
            if agent.proc.poll() is None:
                agent.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    after = calibration_ns()
    print(f"calibration after the runs: {after:.1f} ns per empty call (before: {before:.1f} ns)")
    results["calibration_ns"] = {"before": before, "after": after}
    if args.json:
        Path(args.json).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


if __name__ == "__main__":
    main()
