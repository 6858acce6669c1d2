"""Where the freshness of ``promtail_compare.py --only steady`` goes: the agent's part and Loki's.

    python bench/freshness_budget.py                 # 1,000 lines/s for 30 s, 40 tail probes
    python bench/freshness_budget.py --seconds 60 --probes 80
    python bench/freshness_budget.py --probes 0 --max-wait 0.5s   # the agent's part only, another max_wait

The yardstick of issue 16 is Loki's live tail: arrival over the websocket - the line's own
timestamp (its write time). That figure is the sum of two parts, measured here apart:

1. **the agent's part**: ``redis-shipper run`` (this checkout, default settings, a ``type: loki``
   sink) follows a file a writer appends to at ``--rate`` lines/s (bench/agent_bench.py's Writer:
   one ``write()`` per line, timestamps = the time of writing); a push endpoint
   (tests/receivers/loki.py, the real Loki's contract) stamps each entry with the time its push
   body was decoded: arrival - the line's timestamp, p50 / p99 / max; pushes/s, CPU per line of the
   agent's main process (utime + stime) and the RSS of its tree, over the same window.
2. **Loki's tail**: the real Loki 3.4.6; a probe entry is pushed (JSON, one entry, timestamp = just
   before the POST) at random moments; the tail's arrival - the push's 204, p50 / p99 / max. This is
   the delay the live tail adds to any agent's figure (its querier sleeps when it has nothing to
   send, pkg/querier/tail.go ``nextEntryWait``).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import orjson

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from agent_bench import ROOT, Writer, pct, proc_children, proc_cpu_split, proc_mem  # noqa: E402  (bench/ is the script's directory)
from realloki import Loki, Tail, agent_config, command, selector, unpack  # noqa: E402

sys.path.insert(0, str(ROOT))
from tests.receivers.loki import LokiReceiver  # noqa: E402


class StampingReceiver(LokiReceiver):
    """The push endpoint, with the arrival time of every entry (time of decoding its body)."""

    def __init__(self) -> None:
        super().__init__(keep_entries=False)
        self.latencies: list[float] = []

    def _ingest(self, tenant, streams):  # type: ignore[no-untyped-def]
        now = time.time()
        self.latencies.extend(now - e.ts / 1e9 for _, entries in streams for e in entries)
        return super()._ingest(tenant, streams)


def show(name: str, xs: list[float]) -> str:
    return (f"{name}: n={len(xs)}, p50 {pct(xs, 50) * 1000:.0f} ms, p99 {pct(xs, 99) * 1000:.0f} ms, "
            f"max {max(xs) * 1000:.0f} ms")


def agent_part(args: argparse.Namespace, tmp: Path) -> list[float]:
    rec = StampingReceiver()
    rec.start()
    try:
        log = tmp / "redis-server.log"
        log.touch()
        cfg = agent_config(tmp, rec.url, [log], {"job": "budget"})
        if args.max_wait:
            cfg.write_text(cfg.read_text() + f"    batch: {{max_wait: {args.max_wait}}}\n")
        err = open(tmp / "stderr", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(command("redis-shipper", Path(), cfg, sys.executable), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            time.sleep(2.5)
            w = Writer(log, args.rate)
            w.start()
            time.sleep(args.warmup)
            n0, p0, w0 = len(rec.latencies), len(rec.pushes), len(w.written)
            c0 = sum(proc_cpu_split(proc.pid))
            time.sleep(args.seconds)
            lat = rec.latencies[n0:len(rec.latencies)]
            cpu = sum(proc_cpu_split(proc.pid)) - c0
            rss = sum(proc_mem(p)["VmRSS"] for p in [proc.pid, *proc_children(proc.pid)])
            print(f"   {(len(rec.pushes) - p0) / args.seconds:.1f} pushes/s; agent CPU "
                  f"{cpu / (len(w.written) - w0) * 1e6:.1f} µs per line (main process); RSS {rss / 1e6:.1f} MB "
                  f"(with its children)", flush=True)
            w.stop_ev.set()
            w.join()
        finally:
            proc.terminate()
            proc.wait(30)
            err.close()
        return lat
    finally:
        rec.stop()


def tail_part(args: argparse.Namespace, tmp: Path) -> tuple[list[float], list[float]]:
    """(204 -> tail arrival, timestamp -> 204) of each probe (one entry in flight at a time)."""
    loki = Loki(unpack(args.loki_dir), tmp)
    try:
        labels = {"job": "probe"}
        tail = Tail(loki, selector(labels))
        if tail.error:
            raise SystemExit(tail.error)
        acks: list[float] = []
        for i in range(args.probes):
            time.sleep(random.uniform(0.2, 1.2))
            ts = time.time_ns()
            body = orjson.dumps({"streams": [{"stream": labels, "values": [[str(ts), f"probe {i}"]]}]})
            req = urllib.request.Request(loki.url + "/loki/api/v1/push", body,
                                         {"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                assert r.status == 204
            acks.append(time.time() - ts / 1e9)
        time.sleep(1.5)
        tail.stop()
        # tail.latencies = arrival - the entry's timestamp; minus the push's own time = the tail's part
        if len(tail.latencies) != len(acks):
            raise SystemExit(f"the tail saw {len(tail.latencies)} of {len(acks)} probes")
        return [t - a for t, a in zip(tail.latencies, acks, strict=True)], acks
    finally:
        loki.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--warmup", type=float, default=5.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--probes", type=int, default=40)
    ap.add_argument("--loki-dir")
    ap.add_argument("--max-wait", help="the Loki sink's batch.max_wait (default: the agent's)")
    args = ap.parse_args()
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {time.strftime('%H:%M UTC', time.gmtime())}")
    with tempfile.TemporaryDirectory(prefix="fresh-budget-") as t:
        tmp = Path(t)
        (tmp / "agent").mkdir()
        (tmp / "loki").mkdir()
        lat = agent_part(args, tmp / "agent")
        if args.probes <= 0:
            print(show(f"1. agent, line written -> push decoded ({args.rate:.0f} lines/s)", lat))
            return
        print(show(f"1. agent, line written -> push decoded ({args.rate:.0f} lines/s)", lat), flush=True)
        tail, acks = tail_part(args, tmp / "loki")
        print(show("2. Loki: direct push, timestamp -> 204", acks))
        print(show("2. Loki: 204 -> live-tail arrival", tail))


if __name__ == "__main__":
    main()
