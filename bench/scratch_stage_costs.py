"""SCRATCH PROTOTYPE (issue 16 diagnosis, not product code): CPU per event of each stage of the
agent's hot path, in one process, on the promtail_compare backlog file.

    python bench/scratch_stage_costs.py [--lines 300000]

Each stage runs the product's own functions in a loop over the same events (no threads, no
SQLite, no HTTP): the floor of what each stage costs, to weigh the redesigns of issue 16 (serialise
once, move bytes). ``orjson.dumps`` without sorting and the cost of a dict copy are printed
beside the canonical path for comparison.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate import calibration_ns  # noqa: E402
from promtail_compare import build_backlog_file  # noqa: E402

from parsers.events import dumps, event_id  # noqa: E402
from parsers.logfile import LogParser  # noqa: E402
from shipper.api import SpooledEvent  # noqa: E402
from shipper.pipeline.spool import chain_hash  # noqa: E402
from shipper.sinks.loki import LokiEncoder  # noqa: E402


def timed(label: str, n_lines: int, n_events: int, fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.process_time()
    fn()
    dt = time.process_time() - t0
    print(f"   {label:<58} {dt / n_events * 1e6:6.2f} µs/event  {dt / n_lines * 1e6:6.2f} µs/line")
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=300_000)
    args = ap.parse_args()
    path = Path(tempfile.mkdtemp()) / "backlog.log"
    n = build_backlog_file(path, args.lines)
    data = path.read_bytes()
    print(f"calibration {calibration_ns():.1f} ns per empty call; {n:,} lines")
    lines: list[bytes] = []
    evs: list[dict] = []

    def split() -> None:
        lines.extend(data.split(b"\n")[:-1])

    def parse() -> None:
        p = LogParser(kind="auto", tz=UTC, year=2026)
        off = 0
        for ln in lines:
            evs.extend(p.feed(ln, off))
            off += len(ln) + 1
        evs.extend(p.flush())

    timed("follower floor: split the file into lines", n, 1, split)
    dt = timed("parse (LogParser.feed, every line)", n, 1, parse)
    e = len(evs)
    print(f"   -> {e:,} events; parse {dt / e * 1e6:.2f} µs/event, {dt / n * 1e6:.2f} µs/line")
    for ev in evs:
        ev["labels"] = {"job": "bench", "run": "x", "instance": "redis://10.0.0.5:6379"}
    raws: list[bytes] = []

    def seal() -> None:
        prev = "0" * 64
        for i, ev in enumerate(evs):
            ev["stream"], ev["seq"], ev["prev_hash"] = "h/redis", i + 1, prev
            ev["id"] = event_id("h/redis", f"seq:{i + 1}")
            raw = dumps(ev)
            prev = chain_hash(raw)
            raws.append(raw)

    timed("seal: event_id + canonical dumps + sha256 chain", n, e, seal)
    timed("  of which canonical dumps (sorted keys, exact copy)", n, e, lambda: [dumps(x) for x in evs])
    timed("  orjson.dumps unsorted, no copy (comparison)", n, e, lambda: [orjson.dumps(x) for x in evs])
    timed("  sha256 of the bytes", n, e, lambda: [chain_hash(r) for r in raws])
    loaded: list[dict] = []
    timed("sink read-back: orjson.loads of every row", n, e, lambda: loaded.extend(orjson.loads(r) for r in raws))
    enc = LokiEncoder()
    spooled = [SpooledEvent(i, ev, r) for i, (ev, r) in enumerate(zip(loaded, raws, strict=True))]
    bodies: list[bytes] = []

    def encode() -> None:
        for k in range(0, len(spooled), 2000):
            streams, _ = enc.group(spooled[k:k + 2000])
            bodies.append(enc.encode_json(streams))

    timed("Loki encode: group + encode_json (2,000-event batches)", n, e, encode)
    timed("gzip of the bodies (level 1)", n, e, lambda: [gzip.compress(b, 1) for b in bodies])
    size, canon = sum(map(len, bodies)) / 1e6, sum(map(len, raws)) / 1e6
    print(f"   bodies {size:.1f} MB for {e:,} events ({canon:.1f} MB canonical)")


if __name__ == "__main__":
    main()
