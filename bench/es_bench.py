"""Events/s from a Redis log file to an Elasticsearch receiver through ElasticsearchSink.

    python bench/es_bench.py [--lines 100000]

Same pipeline as bench/loki_bench.py (real sample-logs lines, LogParser, labels, ids, one
``dumps`` per event, 1 MiB batches, one request in flight while the next chunk is parsed), to
the contract-enforcing Elasticsearch receiver in another process. Prints the CPU cost of
building a bulk body (ECS mapping + NDJSON + gzip) per event, bytes on the wire per event, and
the end-to-end rate; the receiver's document count is checked against what was sent, and a
second pass of the same events checks that a resend creates nothing (all 409 -> duplicates).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from loki_bench import build_file, free_port, iter_events, read_events  # noqa: E402

from shipper.api import Delivery, SpooledEvent  # noqa: E402
from shipper.config import ElasticsearchSinkConfig  # noqa: E402
from shipper.sinks.elasticsearch import ElasticsearchSink  # noqa: E402


def es_count(url: str) -> int:
    req = urllib.request.Request(url + "/logs-redis.events-*/_count", data=b"{}",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return int(json.loads(r.read())["count"])


def start_receiver() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    code = "import sys; sys.path.insert(0, 'tests'); from receivers.elasticsearch import main; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/", timeout=1).read()
            return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("receiver did not start")


def sink(url: str) -> ElasticsearchSink:
    return ElasticsearchSink(ElasticsearchSinkConfig(type="elasticsearch", url=url))


async def stream(path: Path, url: str, max_bytes: int, origin: str) -> tuple[int, int]:
    s = sink(url)
    await s.start()
    n = dups = 0
    cur: list[SpooledEvent] = []
    size = 0
    inflight: asyncio.Task[Delivery] | None = None

    async def ship(batch: list[SpooledEvent]) -> None:
        nonlocal inflight, n, dups
        if inflight is not None:
            d = await inflight
            if d.rejected:
                raise SystemExit(f"rejected: {d.rejected[:3]}")
            dups += d.duplicates
        inflight = asyncio.create_task(s.send(batch))
        n += len(batch)
        for _ in range(4):
            await asyncio.sleep(0)

    try:
        for chunk in iter_events(path, origin):
            for se in chunk:
                cur.append(se)
                size += len(se.raw)
                if size >= max_bytes:
                    await ship(cur)
                    cur, size = [], 0
        if cur:
            await ship(cur)
        if inflight is not None:
            d = await inflight
            dups += d.duplicates
    finally:
        await s.close()
    return n, dups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--max-bytes", type=int, default=1 << 20)
    args = ap.parse_args()
    proc, url = start_receiver()
    try:
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "redis-server.log"
            nlines = build_file(path, args.lines)
            events = read_events(path, "file:encoding")[:20_000]
            s = sink("http://x")
            t = time.process_time()
            nbytes = 0
            for i in range(0, len(events), 2000):
                nbytes += len(s._gzip(b"".join(s.item_lines(events[i:i + 2000]))))
            cpu = time.process_time() - t
            print(f"input: {nlines} lines from sample-logs/")
            print(f"bulk body (ECS mapping + NDJSON + gzip 1): {cpu / len(events) * 1e6:.1f} µs CPU/event, "
                  f"{nbytes / len(events):.0f} bytes/event on the wire "
                  f"(canonical event {sum(len(e.raw) for e in events) / len(events):.0f} bytes)")
            del events
            results: dict[str, Any] = {}
            for label in ("first pass", "resend"):
                t0, c0 = time.perf_counter(), time.process_time()
                n, dups = asyncio.run(stream(path, url, args.max_bytes, "file:es-bench"))
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                results[label] = (n, dups)
                print(f"{label:10}: {n} events in {wall:.2f} s = {n / wall:,.0f} events/s, "
                      f"agent CPU {cpu / n * 1e6:.1f} µs/event, duplicates (409) {dups}")
            stored = es_count(url)
            n = results["first pass"][0]
            ok = stored == n and results["resend"][1] == n
            print(f"receiver holds {stored} documents for {n} events; resend all 409: "
                  f"{'yes' if ok else 'NO'}")
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
