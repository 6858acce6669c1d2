"""Slow-log drain rate: the highest rate of slow entries the poller ships with zero loss at
``slowlog-max-len 128``, and what the poller costs the Redis server at that rate.

    python bench/slowlog_bench.py [--server redis7|valkey9|redis62] [--seconds 3]
                                  [--rates 1000,2000,5000,10000,20000,40000]
                                  [--min-interval 0.005] [--spool sqlite|memory]

What one run measures, all on this machine and in this run (no stored numbers):

1. A real server starts on loopback with ``slowlog-log-slower-than 0`` (every command is an
   entry) and ``slowlog-max-len 128``.
2. For each rate R (entries/s), a load process (a separate OS process, so it does not share the
   poller's GIL) sends ``SET bench:v <n>`` as client ``bench`` for ``--seconds`` s, paced in 5 ms
   slices. The poller (``RedisSource``, ``min_interval`` as given, emitting into the real SQLite
   spool with ``synchronous=FULL`` unless ``--spool memory``) runs in this process and polls
   every ``min_interval`` (interval = min_interval: the capacity of the drain, not its warm-up).
   Result per rate: entries sent, ``bench`` entries shipped, entries reported lost
   (``slowlog_entries_lost``), and whether the shipped values are exactly 0..sent-1.
3. **Server CPU cost**: INFO ``used_cpu_sys + used_cpu_user`` of the server over the same load
   **with** the poller and **without** it (baseline: load only), same rate, same duration. The
   difference, in CPU-seconds per second, is the poller's cost on Redis (its SLOWLOG GET calls,
   and their own slow-log entries). The ratio with/without is printed too.
4. The poller process's own CPU (``time.process_time``) per shipped entry, for information.
5. The best rate once more from idle with the adaptive schedule (``--adaptive-interval``, 1 s):
   the first poll of a storm comes up to one quiet interval late, so a storm that fills the
   ring faster than that loses its onset, and the loss is reported exactly.

The highest zero-loss rate is printed and compared with the target (issue 4: >= 5,000/s).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import redis  # noqa: E402

from parsers.events import dumps  # noqa: E402
from shipper.api import Batch, SourceContext  # noqa: E402
from shipper.config import RedisSourceConfig  # noqa: E402
from shipper.sources.redis.source import RedisSource  # noqa: E402

from servers import start_server  # noqa: E402

TARGET = 5000
PURE_PYTHON_PARSER = False


def load(port: int, rate: int, seconds: float, ready: Any, go: Any, sent: Any) -> None:
    """Send ``rate`` SETs per second for ``seconds``, paced in 5 ms slices (separate process)."""
    r = redis.Redis(host="127.0.0.1", port=port, protocol=2, socket_timeout=10)
    r.client_setname("bench")
    ready.set()
    go.wait()
    n = 0
    t0 = time.perf_counter()
    end = t0 + seconds
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        due = int((now - t0) * rate)
        if due > n:
            pipe = r.pipeline(transaction=False)
            for k in range(n, due):
                pipe.set("bench:v", k)
            pipe.execute()
            n = due
        else:
            time.sleep(0.005 - ((now - t0) % 0.005))
    sent.value = n


def server_cpu(port: int) -> float:
    info = redis.Redis(host="127.0.0.1", port=port, protocol=2).info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


class MemorySpool:
    def __init__(self) -> None:
        self.n = 0
        self.values: list[int] = []
        self.lost = 0

    async def append(self, stream: str, events: list[dict], positions: dict) -> None:
        for ev in events:
            dumps(ev)
            self._see(ev)

    def _see(self, ev: dict) -> None:
        f = ev["fields"]
        if ev["event"] == "slow_command" and f.get("client_name") == "bench" and f.get("command") == "set":
            self.values.append(int(f["args"][1]))
        elif ev["event"] == "slowlog_entries_lost":
            self.lost += f["lost"]


async def run_rate(port: int, rate: int, seconds: float, *, with_poller: bool, min_interval: float,
                   spool_kind: str, state_dir: str, interval: float | None = None) -> dict[str, Any]:
    ctx_mp = mp.get_context("spawn")
    ready, go, sent = ctx_mp.Event(), ctx_mp.Event(), ctx_mp.Value("q", 0)
    proc = ctx_mp.Process(target=load, args=(port, rate, seconds, ready, go, sent))
    proc.start()
    await asyncio.to_thread(ready.wait, 30)
    seen = MemorySpool()
    spool: Any = None
    if spool_kind == "sqlite":
        from shipper.pipeline.spool import Spool

        spool = Spool(state_dir, max_bytes=1 << 30)
        await spool.open()

    async def emit(batch: Batch) -> None:
        if spool is not None:
            await spool.append("bench", batch.events, batch.positions)
            for ev in batch.events:
                seen._see(ev)
        else:
            await seen.append("bench", batch.events, batch.positions)

    async def emit_agent(ev: dict) -> None:
        pass

    stop = asyncio.Event()
    task = None
    src = None
    # an empty ring (ids keep counting): a first-start poller then ships only this run's entries
    redis.Redis(host="127.0.0.1", port=port, protocol=2).slowlog_reset()
    if with_poller:
        cfg = RedisSourceConfig.model_validate({
            "type": "redis", "url": f"redis://127.0.0.1:{port}",
            "slowlog": {"interval": interval or min_interval, "min_interval": min_interval, "redact": "none"},
            "latency": {"interval": 10}, "acl_log": {"interval": 10}, "config": {"interval": 60},
            "commandlog": {"interval": 1}, "info": {"interval": 10},
        })
        src = RedisSource(cfg)
        if PURE_PYTHON_PARSER:
            from redis._parsers import _AsyncRESP2Parser

            src.conn.extra_kwargs["parser_class"] = _AsyncRESP2Parser
        ctx = SourceContext(emit=emit, positions={}, stop=stop, state_dir=state_dir, emit_agent=emit_agent)
        task = asyncio.create_task(src.run(ctx))
        while src.rounds < 1:
            await asyncio.sleep(0.01)
    cpu0 = server_cpu(port)
    pcpu0 = time.process_time()
    t0 = time.perf_counter()
    go.set()
    await asyncio.to_thread(proc.join)
    if with_poller and src is not None and src.slowlog is not None:
        # let the poller drain what the load left in the ring
        top = max((e["id"] for e in redis.Redis(port=port, protocol=2).slowlog_get(1)), default=0)
        deadline = time.monotonic() + 10
        while (src.slowlog.last_id or 0) < top and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    wall = time.perf_counter() - t0
    cpu1 = server_cpu(port)
    pcpu = time.process_time() - pcpu0
    stop.set()
    if task is not None:
        await asyncio.wait_for(task, 10)
    if spool is not None:
        await spool.close()
    n = sent.value
    out: dict[str, Any] = {"rate": rate, "sent": n, "server_cpu": cpu1 - cpu0, "wall": wall}
    if with_poller:
        out.update(shipped=len(seen.values), lost=seen.lost,
                   exact=seen.values == list(range(n)), poller_cpu=pcpu,
                   self_entries=src.slowlog.self_filtered if src and src.slowlog else 0)
    return out


async def main_async(args: argparse.Namespace) -> int:
    rates = [int(x) for x in args.rates.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        rp = start_server(args.server, Path(tmp), config={"slowlog-log-slower-than": "0", "slowlog-max-len": "128"})
        try:
            print(f"# slowlog_bench: {args.server} on 127.0.0.1:{rp.port}, slowlog-max-len 128, threshold 0; "
                  f"{args.seconds}s per rate; min_interval {args.min_interval}s; spool {args.spool}")
            try:
                import hiredis  # noqa: F401

                parser = "pure-Python (forced)" if PURE_PYTHON_PARSER else "hiredis"
            except ImportError:
                parser = "pure-Python (hiredis not installed)"
            print(f"# python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
                  f"redis-py reply parser: {parser}")
            print(f"{'rate/s':>8} {'sent':>7} {'shipped':>8} {'lost':>6} {'exact':>6} "
                  f"{'srv cpu/s +poller':>18} {'srv cpu/s alone':>16} {'ratio':>6} {'poller cpu us/entry':>20}")
            best = 0
            rows = []
            for i, rate in enumerate(rates):
                with_p = await run_rate(rp.port, rate, args.seconds, with_poller=True, min_interval=args.min_interval,
                                        spool_kind=args.spool, state_dir=str(Path(tmp) / f"state{i}"))
                alone = await run_rate(rp.port, rate, args.seconds, with_poller=False,
                                       min_interval=args.min_interval, spool_kind=args.spool,
                                       state_dir=str(Path(tmp) / f"x{i}"))
                cpu_with = with_p["server_cpu"] / with_p["wall"]
                cpu_alone = alone["server_cpu"] / alone["wall"]
                ok = with_p["lost"] == 0 and with_p["exact"]
                per_entry = with_p["poller_cpu"] / max(with_p["shipped"], 1) * 1e6
                print(f"{rate:>8} {with_p['sent']:>7} {with_p['shipped']:>8} {with_p['lost']:>6} "
                      f"{str(with_p['exact']):>6} {cpu_with:>18.4f} {cpu_alone:>16.4f} "
                      f"{(cpu_with / cpu_alone if cpu_alone else float('nan')):>6.2f} {per_entry:>20.1f}")
                rows.append((rate, with_p, alone))
                if ok:
                    best = max(best, rate)
            print(f"\nhighest zero-loss rate: {best} entries/s (target >= {TARGET}): "
                  f"{'MET' if best >= TARGET else 'NOT MET'}")
            at = [r for r in rows if r[0] == best]
            if at:
                _, w, a = at[0]
                extra = w["server_cpu"] / w["wall"] - a["server_cpu"] / a["wall"]
                print(f"poller's cost on the Redis server at {best}/s: {extra * 100:+.2f}% of one core "
                      f"({w['server_cpu'] / w['wall'] * 100:.2f}% with the poller vs "
                      f"{a['server_cpu'] / a['wall'] * 100:.2f}% without; the load itself is in both)")
            if args.adaptive_interval and best:
                # the same load from idle with the adaptive schedule: the quiet interval is long, so
                # the onset of a storm can overflow the ring before the first fast poll
                ad = await run_rate(rp.port, best, args.seconds, with_poller=True, min_interval=args.min_interval,
                                    spool_kind=args.spool, state_dir=str(Path(tmp) / "adaptive"),
                                    interval=args.adaptive_interval)
                print(f"adaptive schedule (interval {args.adaptive_interval}s, min_interval {args.min_interval}s) "
                      f"at {best}/s from idle: sent {ad['sent']}, shipped {ad['shipped']}, reported lost "
                      f"{ad['lost']} (shipped + lost >= sent: {ad['shipped'] + ad['lost'] >= ad['sent']}); "
                      f"server cpu {ad['server_cpu'] / ad['wall'] * 100:.2f}% of one core")
        finally:
            rp.stop()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", default="redis7", choices=["redis7", "valkey9", "redis62"])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rates", default="1000,2000,5000,10000,20000,40000")
    ap.add_argument("--min-interval", type=float, default=0.005)
    ap.add_argument("--spool", default="sqlite", choices=["sqlite", "memory"])
    ap.add_argument("--adaptive-interval", type=float, default=1.0,
                    help="after the ladder, run the best rate from idle with this quiet interval (0: skip)")
    ap.add_argument("--pure-python-parser", action="store_true",
                    help="force redis-py's pure-Python reply parser (what runs when hiredis is not installed)")
    args = ap.parse_args()
    global PURE_PYTHON_PARSER
    PURE_PYTHON_PARSER = args.pure_python_parser
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
