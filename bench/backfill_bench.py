"""Follower performance: a 1 GiB backfill, and an idle agent watching two files.

    python bench/backfill_bench.py                 # both, 1 GiB, 60 s idle
    python bench/backfill_bench.py --size 256MiB --only backfill
    python bench/backfill_bench.py --size 256MiB --only backfill --before 0481ecd   # before/after
    python bench/backfill_bench.py --only idle --idle-seconds 20
    python bench/backfill_bench.py --instructions 2MiB --before 0481ecd  # callgrind, load-independent

**Backfill**: a log of real lines (every sample-logs/*.log, repeated) read from its first byte.
Every row below is measured in the same run, on the same file, page cache warm; each prints
wall and CPU seconds, lines/s and MB/s (wall), and its ratio to two references:

*References* (what "a bare binary read loop" can mean):

* ``bare read loop``: ``os.pread`` 1 MiB chunks and count the newlines in C. The issue's
  target (>= 25 %) is stated against this one; it touches no line from Python.
* ``bare line loop``: a binary file iterated ``for line in f`` (and, second row, 1 MiB reads
  split with ``bytes.split``), each line visited once by the interpreter and dropped: the
  fairer reference for anything that handles lines one by one.

*Floors* (what any per-line Python implementation costs, whatever it parses):

* ``CPython floor``: split lines, build ONE small dict per line from a few slices of the
  decoded line, ``orjson.dumps`` it, write the JSON lines to a file. No parsing, no
  classification, no ids. If this row is below 25 % of the read loop, no Python
  pipeline making one event per line can reach the target on this machine.
* the same with 2 processes, each taking half of the file by byte range (cut at a newline):
  the best the machine's 2 cores give, process start-up and the result hand-back included.
* ``native floor (C)``: the same fields in C (compiled at run time with ``cc``; the row is
  skipped without one): what one process of native code making one JSON object per line gets.
* ``LogParser + dumps + write, 2 processes``: the real parser on both cores, no follower.

*The pipeline*:

* ``LogParser alone``: lines fed from 1 MiB chunks (no follower): the parser's own speed;
* ``follower only``: ``FileSource`` with a parser that makes no event (the follower's cost);
* ``follower + LogParser``: events made (with ids), then dropped;
* ``follower + LogParser + dumps + file sink``: the target's pipeline: every event
  serialised once (``parsers.events.dumps``, as the spool does) and appended by the
  ``type: file`` sink (``shipper.sinks.file.FileSink``: append + fsync per batch), shaped like
  the runtime (see ``run_source``);
* ``the sink's output alone``: the same number of bytes appended in 4 MiB writes, without and
  with fsync: the cost of the output volume, whoever produces it;
* with ``--default-gc-row``: the target's pipeline again with CPython's default GC thresholds.

The follower rows run with the garbage-collector settings of ``redis-shipper run``
(``shipper/util/tuning.py``: ``gc.freeze()`` after start-up, ``gc.set_threshold(50_000, 20,
100)``), since that is the process they model; the in-process rows keep CPython's defaults
(their events die at once, so the collector barely runs).

The follower rows run in a child process each, on a copy of the working tree's ``shipper`` and
``parsers`` packages; with ``--before GITREF`` the follower (``shipper/sources/files``) and the
file sink of GITREF are run the same way, interleaved with the current ones, so before and
after see the same machine load. CPU time (user + system of the process, all threads) is the
steadier figure on a shared machine; wall time gives the lines/s the target is about.

**Idle**: ``redis-shipper run`` with two ``type: file`` sources on files nobody writes to,
inotify on (default) then off; after a warm-up, CPU time (utime + stime from /proc) over the
window as % of one core, and the resident set size (VmRSS, and its peak VmHWM).
Targets: <= 0.5 % of a core, <= 60 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import gc
import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: a child run on another tree (``--before``) imports shipper/ and parsers/ from there
TREE = Path(os.environ.get("BACKFILL_BENCH_TREE") or ROOT)
sys.path.insert(0, str(TREE))

import orjson  # noqa: E402

from parsers.events import dumps as _dumps  # noqa: E402,F401  (imported before forking the floor rows)
from parsers.logfile import LogParser as _LogParser  # noqa: E402,F401
from shipper.config import parse_size  # noqa: E402

#: gc.set_threshold of `redis-shipper run` (shipper/util/tuning.py), which also freezes start-up
AGENT_GC_THRESHOLDS = (50_000, 20, 100)

#: the code a follower row runs: the files the follower's owner changes between refs
FOLLOWER_FILES = ("shipper/sources/files", "shipper/sinks/file.py")


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


# ---------------------------------------------------------------------------- references
def bare_loop(path: Path) -> int:
    """The issue's reference: read in 1 MiB chunks, count newlines in C."""
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


def line_loop_iter(path: Path) -> int:
    """Every line visited by the interpreter once: ``for line in f`` on a binary file."""
    n = 0
    with open(path, "rb", buffering=1 << 20) as f:
        for _line in f:
            n += 1
    return n


def line_loop_split(path: Path) -> int:
    """Every line visited once: 1 MiB reads, ``bytes.split(b"\\n")``, a Python loop over them."""
    fd = os.open(path, os.O_RDONLY)
    n = off = 0
    rest = b""
    try:
        while True:
            chunk = os.pread(fd, 1 << 20, off)
            if not chunk:
                return n
            off += len(chunk)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for _line in lines:
                n += 1
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- floors
def _line_range(fd: int, size: int, at: int) -> int:
    """The first line start at or after ``at`` (a byte range split never cuts a line)."""
    if at <= 0:
        return 0
    if at >= size:
        return size
    off = at - 1
    while off < size:
        chunk = os.pread(fd, 1 << 16, off)
        nl = chunk.find(b"\n")
        if nl >= 0:
            return off + nl + 1
        off += len(chunk)
    return size


def floor_range(path: str, start: int, end: int, out: str) -> tuple[int, int, float]:
    """The CPython floor on the lines starting in [start, end): one dict per line from slices of
    the decoded line, orjson.dumps, JSON lines appended to ``out``. (lines, events, cpu s)."""
    c0 = time.process_time()
    dumps = orjson.dumps
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    start, end = _line_range(fd, size, start), _line_range(fd, size, end)
    n = 0
    off = pos = start
    rest = b""
    with open(out, "wb") as o:
        while off < end:
            chunk = os.pread(fd, min(1 << 20, end - off), off)
            if not chunk:
                break
            off += len(chunk)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            buf = []
            append = buf.append
            for line in lines:
                s = line.decode("utf-8", "replace")
                append(dumps({"offset": pos, "pid": s[:5], "time": s[8:32], "level": s[33:34], "message": s[35:]}))
                pos += len(line) + 1
            n += len(buf)
            buf.append(b"")
            o.write(b"\n".join(buf))
    os.close(fd)
    return n, n, time.process_time() - c0


#: the floor in C: the same fields as ``floor_range`` (byte slices, escaped for JSON; bytes >= 0x80
#: copied as they are, i.e. no UTF-8 validation), one ``write`` per MiB of output, no fsync
NATIVE_FLOOR_C = r"""
/* The native floor: one JSON object per line, the same fields as the CPython floor row. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned char safe[256];
static char *ob; static size_t on, ocap;
static int outfd;

static void flush_out(void) {
    size_t done = 0;
    while (done < on) {
        ssize_t w = write(outfd, ob + done, on - done);
        if (w <= 0) { perror("write"); exit(1); }
        done += (size_t)w;
    }
    on = 0;
}
static void need(size_t n) {
    if (on + n > ocap) { flush_out(); if (n > ocap) { ocap = n; ob = realloc(ob, ocap); } }
}
static void put(const char *s, size_t n) { memcpy(ob + on, s, n); on += n; }
static void str(const unsigned char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    ob[on++] = '"';
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && safe[s[j]]) j++;
        memcpy(ob + on, s + i, j - i); on += j - i;
        if (j == n) break;
        unsigned char c = s[j];
        if (c == '"' || c == '\\') { ob[on++] = '\\'; ob[on++] = (char)c; }
        else { memcpy(ob + on, "\\u00", 4); on += 4; ob[on++] = hex[c >> 4]; ob[on++] = hex[c & 15]; }
        i = j + 1;
    }
    ob[on++] = '"';
}
static void field(const char *name, const unsigned char *line, size_t len, size_t a, size_t b) {
    if (a > len) a = len;
    if (b > len) b = len;
    put(name, strlen(name));
    str(line + a, b - a);
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: floor IN OUT\n"); return 2; }
    for (int c = 0; c < 256; c++) safe[c] = c >= 0x20 && c != '"' && c != '\\';
    int in = open(argv[1], O_RDONLY);
    outfd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || outfd < 0) { perror("open"); return 1; }
    ocap = 1 << 20; ob = malloc(ocap);
    size_t cap = 1 << 20, have = 0; unsigned char *buf = malloc(cap);
    unsigned long long lines = 0, pos = 0;
    for (;;) {
        if (have == cap) { cap *= 2; buf = realloc(buf, cap); }
        ssize_t r = read(in, buf + have, cap - have);
        if (r < 0) { perror("read"); return 1; }
        if (r == 0) break;
        have += (size_t)r;
        unsigned char *p = buf, *end = buf + have, *nl;
        while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            size_t len = (size_t)(nl - p);
            need(6 * len + 128);
            on += (size_t)sprintf(ob + on, "{\"offset\":%llu", pos);
            field(",\"pid\":", p, len, 0, 5);
            field(",\"time\":", p, len, 8, 32);
            field(",\"level\":", p, len, 33, 34);
            field(",\"message\":", p, len, 35, len);
            put("}\n", 2);
            pos += len + 1; lines++; p = nl + 1;
        }
        have = (size_t)(end - p);
        memmove(buf, p, have);
    }
    flush_out();
    printf("%llu\n", lines);
    return 0;
}
"""


def native_floor(path: Path, out: Path, tmp: Path) -> tuple[float, float, int] | None:
    """Compile and run the C floor; (wall s, cpu s of the child, lines), None without a C compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    src, exe = tmp / "native_floor.c", tmp / "native_floor"
    src.write_text(NATIVE_FLOOR_C)
    subprocess.run([cc, "-O2", "-o", str(exe), str(src)], check=True)
    r0 = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run([str(exe), str(path), str(out)], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = os.times()
    out.unlink(missing_ok=True)
    cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
    return wall, cpu, int(proc.stdout.strip())


def parser_range(path: str, start: int, end: int, out: str) -> tuple[int, int, float]:
    """The real parser on the lines starting in [start, end), each event dumped and written:
    what the parser could give per core with no follower at all. (lines, events, cpu s)."""
    from parsers.events import dumps
    from parsers.logfile import LogParser

    c0 = time.process_time()
    parser = LogParser(tz=UTC)
    feed = parser.feed
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    start, end = _line_range(fd, size, start), _line_range(fd, size, end)
    n = events = 0
    off = pos = start
    rest = b""
    with open(out, "wb") as o:
        while off < end:
            chunk = os.pread(fd, min(1 << 20, end - off), off)
            if not chunk:
                break
            off += len(chunk)
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            evs: list[dict[str, Any]] = []
            extend = evs.extend
            for line in lines:
                extend(feed(line, pos))
                pos += len(line) + 1
            n += len(lines)
            if off >= end:
                evs.extend(parser.flush())
            events += len(evs)
            raws = [dumps(e) for e in evs]
            raws.append(b"")
            o.write(b"\n".join(raws))
    os.close(fd)
    return n, events, time.process_time() - c0


def in_processes(fn: Callable[[str, int, int, str], tuple[int, int, float]], path: Path, out: Path,
                 procs: int) -> tuple[float, float, int, int]:
    """Run ``fn`` on ``procs`` byte ranges in as many forked processes; (wall, cpu, lines, events).
    Wall includes starting the processes and collecting their results."""
    size = path.stat().st_size
    bounds = [size * i // procs for i in range(procs + 1)]
    t0 = time.perf_counter()
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(procs, mp_context=ctx) as ex:
        futs = [ex.submit(fn, str(path), bounds[i], bounds[i + 1], f"{out}.{i}") for i in range(procs)]
        got = [f.result() for f in futs]
    wall = time.perf_counter() - t0
    for i in range(procs):
        Path(f"{out}.{i}").unlink(missing_ok=True)
    return wall, sum(g[2] for g in got), sum(g[0] for g in got), sum(g[1] for g in got)


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


# ---------------------------------------------------------------------------- the follower
#: the parsed event of a stored row, for a sink that only writes the bytes (see run_source)
STORED: dict[str, Any] = {}


class NoEvents:
    pending_offset = None

    def __init__(self, mtime: float | None = None):
        pass

    def feed(self, line: bytes, offset: int, *, cut_bytes: int = 0, partial: bool = False) -> list:
        return []

    def flush(self) -> list:
        return []


async def run_source(path: Path, mode: str, out: Path) -> tuple[float, float, int]:
    """Run FileSource over the file until its checkpoint reaches the end (which it does only
    once every event of every byte was emitted, the last multi-line one included);
    (wall s, cpu s, events). ``mode``: follower | parser | sink.

    ``sink`` has the runtime's shape without SQLite: ``emit`` serialises each event once
    (``dumps``, as the spool does when it stores the batch) and returns; the events are then
    garbage, only their bytes are kept, as in the spool. A sink worker task takes the stored
    bytes in batches of up to the sink's ``max_batch_bytes`` and awaits ``FileSink.send``
    (write + fsync) for each, as the runtime's sink worker does (its ``SpooledEvent`` s carry
    the bytes; the parsed event, which the runtime reads back from SQLite for sinks that need
    it, is a placeholder here: the file sink writes ``raw`` only). The clock stops when the
    sink has acknowledged the last event.

    Holding the event dicts in the hand-off (an earlier version of this bench did) made them
    survive into the oldest GC generation and cost up to 17 % more CPU in full collections:
    what the runtime does not do must not be measured."""
    from parsers.events import dumps
    from shipper.api import Batch, SourceContext, SpooledEvent
    from shipper.config import FileSinkConfig, FileSourceConfig
    from shipper.sinks.file import FileSink
    from shipper.sources.files import FileSource

    cfg = FileSourceConfig.model_validate({"type": "file", "path": str(path), "inotify": False,
                                           "poll_interval": 0.05})
    src = FileSource(cfg, tz=UTC, parser_factory=NoEvents if mode == "follower" else None, idle_flush=0.05)
    sink = FileSink(FileSinkConfig.model_validate({"type": "file", "path": str(out)}))
    stop = asyncio.Event()
    state = {"events": 0, "seq": 0, "offset": 0}
    size = path.stat().st_size
    #: the "spool": stored batches the sink worker has not taken yet (bounded: back-pressure)
    stored: asyncio.Queue[list[bytes] | None] = asyncio.Queue(maxsize=16)

    async def emit(batch: Batch) -> None:
        evs = batch.events
        state["events"] += len(evs)
        for v in batch.positions.values():
            if isinstance(v, dict) and "offset" in v:
                state["offset"] = max(state["offset"], v["offset"])
        if mode == "sink" and evs:
            await stored.put([dumps(ev) for ev in evs])
        if state["offset"] >= size:
            stop.set()

    async def sink_worker() -> None:
        """A batch leaves when it reaches ``max_batch_bytes`` or its oldest event has waited
        ``max_wait`` (the runtime's rule), or when the source is finished."""
        limit = sink.max_batch_bytes
        held: list[SpooledEvent] = []
        held_bytes = 0
        done = False
        oldest = 0.0
        while not done or held:
            while not done and held_bytes < limit:
                wait = sink.max_wait - (time.monotonic() - oldest) if held else None
                if wait is not None and wait <= 0:
                    break
                try:
                    item = await asyncio.wait_for(stored.get(), wait)
                except TimeoutError:
                    break
                if item is None:
                    done = True
                else:
                    if not held:
                        oldest = time.monotonic()
                    seq = state["seq"]
                    held.extend([SpooledEvent(seq + i, STORED, raw) for i, raw in enumerate(item, 1)])
                    state["seq"] = seq + len(item)
                    held_bytes += sum([len(raw) for raw in item])
            n = nbytes = 0
            while n < len(held) and nbytes < limit:
                nbytes += len(held[n].raw)
                n += 1
            if n:
                await sink.send(held[:n])
                del held[:n]
                held_bytes -= nbytes
                oldest = time.monotonic()

    ctx = SourceContext(emit=emit, positions={}, stop=stop, state_dir=str(out.parent))
    await sink.start()
    c0, t0 = time.process_time(), time.perf_counter()
    worker = asyncio.create_task(sink_worker())
    await src.run(ctx)
    await stored.put(None)
    await worker
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return wall, cpu, state["events"]


def child_main(args: argparse.Namespace) -> None:
    """``--child MODE``: one follower row in this process; prints its result as JSON."""
    import shipper.sources.files as files

    if not Path(files.__file__).resolve().is_relative_to(TREE.resolve()):
        raise SystemExit(f"imported {files.__file__}, not from {TREE}")
    if args.gc == "agent":  # as shipper/commands/run.py sets it for `redis-shipper run`
        gc.collect()
        gc.freeze()
        gc.set_threshold(*AGENT_GC_THRESHOLDS)
    out = Path(args.out)
    out.unlink(missing_ok=True)
    if args.child == "parser-alone":
        wall, cpu, events = timed(lambda: parser_alone(Path(args.child_file)))
    else:
        wall, cpu, events = asyncio.run(run_source(Path(args.child_file), args.child, out))
    written = out.stat().st_size if out.exists() else 0
    out.unlink(missing_ok=True)
    print(json.dumps({"wall": wall, "cpu": cpu, "events": events, "written": written, "gc": gc.get_stats()}))


def make_tree(tmp: Path, ref: str | None) -> Path:
    """A copy of the working tree's shipper/ and parsers/, with the follower files of ``ref``
    (None: as they are now)."""
    tree = tmp / f"tree-{ref or 'now'}"
    for pkg in ("shipper", "parsers"):
        shutil.copytree(ROOT / pkg, tree / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    if ref:
        for rel in FOLLOWER_FILES:
            target = tree / rel
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
            names = subprocess.run(["git", "ls-tree", "-r", "--name-only", ref, "--", rel], cwd=ROOT,
                                   check=True, capture_output=True, text=True).stdout.split()
            if not names:
                raise SystemExit(f"{rel} does not exist at {ref}")
            for name in names:
                data = subprocess.run(["git", "show", f"{ref}:{name}"], cwd=ROOT, check=True,
                                      capture_output=True).stdout
                (tree / name).parent.mkdir(parents=True, exist_ok=True)
                (tree / name).write_bytes(data)
    return tree


def run_child(tree: Path, mode: str, path: Path, out: Path, gc_mode: str = "agent",
              callgrind: bool = False) -> dict[str, Any]:
    """One follower row in a child process on ``tree``; with ``callgrind``, under valgrind, and
    the result carries ``instructions`` (the whole process: subtract two sizes to drop start-up)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--child-file", str(path),
           "--out", str(out)]
    cmd += ["--gc", gc_mode]
    if callgrind:
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd]
    env = dict(os.environ, BACKFILL_BENCH_TREE=str(tree), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    got: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if callgrind:
        m = re.search(r"Collected : (\d+)", proc.stderr)
        if m is None:
            raise RuntimeError(f"no instruction count from valgrind: {proc.stderr[-500:]}")
        got["instructions"] = int(m.group(1))
    return got


def instructions(size: int, tmp: Path, before: str | None) -> None:
    """Instructions per line of each follower row (callgrind), before and after: independent of
    the machine's load. Two files (``size`` and twice that) per row; the difference divided by
    the difference in lines leaves out interpreter start-up and imports."""
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind")
    files = []
    for k in (1, 2):
        p = tmp / f"small-{k}.log"
        files.append((p, build(p, k * size)))
    out = tmp / "out.jsonl"
    trees = [("now", make_tree(tmp, None))]
    if before:
        trees.insert(0, (before, make_tree(tmp, before)))
    print(f"instructions per line (callgrind; {size / 2**20:.0f} and {2 * size / 2**20:.0f} MiB files, "
          f"{files[1][1] - files[0][1]:,} lines apart)")
    print(f"{'pipeline':45} {'code':>10} {'instr/line':>11} {'instr/event':>12}")
    for mode, name in [("parser-alone", "LogParser alone (no follower)"), ("follower", "follower only (no events)"),
                       ("parser", "follower + LogParser"), ("sink", "follower + LogParser + dumps + file sink")]:
        for tag, tree in trees[-1:] if mode == "parser-alone" else trees:
            got = [run_child(tree, mode, p, out, callgrind=True) for p, _ in files]
            lines = files[1][1] - files[0][1]
            instr = got[1]["instructions"] - got[0]["instructions"]
            events = got[1]["events"] - got[0]["events"]
            per_event = f"{instr / events:12,.0f}" if events else f"{'-':>12}"
            print(f"{name:45} {tag:>10} {instr / lines:11,.0f} {per_event}", flush=True)


def write_volume(out: Path, nbytes: int, fsync: bool) -> tuple[float, float]:
    """Write ``nbytes`` in 4 MiB appends (the file sink's batch size), with or without fsync
    after each: the cost of the sink's output volume alone, whatever produced it. (wall, cpu)
    where cpu counts system time too (fsync's writeback work is charged to the caller)."""
    block = os.urandom(1 << 16) * 64
    out.unlink(missing_ok=True)
    c0, t0 = time.process_time(), time.perf_counter()
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        done = 0
        while done < nbytes:
            done += os.write(fd, block)
            if fsync:
                os.fsync(fd)
    finally:
        os.close(fd)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    out.unlink(missing_ok=True)
    return wall, cpu


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    c0, t0 = time.process_time(), time.perf_counter()
    got = fn()
    return time.perf_counter() - t0, time.process_time() - c0, got


def backfill(size: int, tmp: Path, before: str | None, default_gc_row: bool) -> None:
    path = tmp / "redis.log"
    total = build(path, size)
    nbytes = path.stat().st_size
    out = tmp / "out.jsonl"
    print(f"backfill: {nbytes / 2**20:.0f} MiB, {total:,} lines of real log lines (sample-logs/ repeated), "
          f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, load average "
          f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    bare_loop(path)  # warm the page cache
    rows: list[tuple[str, float, float, int]] = []

    def row(name: str, wall: float, cpu: float, events: int) -> None:
        rows.append((name, wall, cpu, events))
        print(f"  measured: {name} ({wall:.2f} s)", flush=True)

    wall, cpu, n = timed(lambda: bare_loop(path))
    assert n == total
    row("bare read loop (pread 1 MiB + count newlines)", wall, cpu, 0)
    wall, cpu, n = timed(lambda: line_loop_iter(path))
    assert n == total
    row("bare line loop (for line in f)", wall, cpu, 0)
    wall, cpu, n = timed(lambda: line_loop_split(path))
    assert n == total
    row("bare line loop (pread 1 MiB + split)", wall, cpu, 0)
    wall, cpu, (n, events, _) = timed(lambda: floor_range(str(path), 0, nbytes, str(out)))
    assert n == total
    row("CPython floor: dict/line + orjson + write", wall, cpu, events)
    out.unlink(missing_ok=True)
    wall, cpu, n, events = in_processes(floor_range, path, out, 2)
    assert n == total
    row("CPython floor, 2 processes", wall, cpu, events)
    native = native_floor(path, out, tmp)
    if native is None:
        print("  (no C compiler: the native floor row is skipped)")
    else:
        wall, cpu, n = native
        assert n == total
        row("native floor (C): JSON object/line + write", wall, cpu, n)
    wall, cpu, n = timed(lambda: parser_alone(path))
    row("LogParser alone (no follower, no sink)", wall, cpu, n)
    wall, cpu, n, events = in_processes(parser_range, path, out, 2)
    assert n == total
    row("LogParser + dumps + write, 2 processes", wall, cpu, events)

    trees = [("", make_tree(tmp, None))]
    if before:
        trees.insert(0, (f" [{before}]", make_tree(tmp, before)))
    written = 0
    for mode, name in [("follower", "follower only (no events)"), ("parser", "follower + LogParser"),
                       ("sink", "follower + LogParser + dumps + file sink")]:
        for tag, tree in trees:
            got = run_child(tree, mode, path, out)
            row(name + tag, got["wall"], got["cpu"], got["events"])
            written = max(written, got["written"])
    if written:
        wall, cpu = write_volume(out, written, fsync=False)
        row(f"  the sink's {written / 2**20:,.0f} MiB alone: 4 MiB writes", wall, cpu, 0)
        wall, cpu = write_volume(out, written, fsync=True)
        row("  the same + fsync per 4 MiB", wall, cpu, 0)
    if default_gc_row:
        got = run_child(trees[-1][1], "sink", path, out, "default")
        row("  same, CPython's default GC thresholds", got["wall"], got["cpu"], got["events"])

    base, line_base = rows[0][1], rows[1][1]
    floor_wall = rows[3][1]
    print(f"\n{'pipeline':55} {'wall s':>7} {'cpu s':>7} {'lines/s':>11} {'MB/s':>7} {'events':>10} "
          f"{'µs cpu/line':>11} {'vs read loop':>12} {'vs line loop':>12}")
    for name, wall, cpu, events in rows:
        print(f"{name:55} {wall:7.2f} {cpu:7.2f} {total / wall:11,.0f} {nbytes / wall / 1e6:7.1f} "
              f"{events:10,} {cpu / total * 1e6:11.3f} {base / wall * 100:11.2f}% {line_base / wall * 100:11.2f}%")
    print(f"\ntarget: 25 % of the read loop = {0.25 * total / base:,.0f} lines/s "
          f"= {4 * base / total * 1e6:.3f} µs of wall time per line, everything included")
    print(f"CPython floor: {base / floor_wall * 100:.2f} % of the read loop in one process, "
          f"{base / rows[4][1] * 100:.2f} % with 2 processes (wall); if both cores were free: "
          f"{base / (rows[4][2] / 2) * 100:.2f} % (its CPU time spread over 2 cores)")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"(the 2-process rows need the second core free: compare their wall with their cpu / 2)")
    if written:
        print(f"file sink output: {written / 2**20:.0f} MiB of JSON Lines")
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
    ap.add_argument("--before", metavar="GITREF",
                    help="also run the follower rows with shipper/sources/files and the file sink of GITREF")
    ap.add_argument("--default-gc-row", action="store_true",
                    help="also run the full pipeline with CPython's default GC (not the agent's settings)")
    ap.add_argument("--instructions", metavar="SIZE",
                    help="instead: instructions per line of the follower rows under callgrind (e.g. 4MiB)")
    ap.add_argument("--gc", choices=["agent", "default"], default="agent", help=argparse.SUPPRESS)
    ap.add_argument("--child", choices=["follower", "parser", "sink", "parser-alone"], help=argparse.SUPPRESS)
    ap.add_argument("--child-file", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_main(args)
        return
    tmp = Path(tempfile.mkdtemp(prefix="follower-bench-"))
    try:
        if args.instructions:
            instructions(parse_size(args.instructions), tmp, args.before)
            return
        if args.only in (None, "backfill"):
            backfill(parse_size(args.size), tmp, args.before, args.default_gc_row)
        if args.only in (None, "idle"):
            idle(args.idle_seconds, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
