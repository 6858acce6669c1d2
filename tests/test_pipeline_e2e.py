"""The whole agent against the Loki and Elasticsearch contract receivers.

Scenarios of issue 5, with the real `redis-shipper run` process: SIGKILLed mid-batch (nothing
lost, no Elasticsearch duplicate, Loki replays byte-identical), a sink down for a while as
events keep coming (nothing lost, memory bounded, catch-up), a 429 storm with Retry-After. A
batch Loki refuses with a 400 is proved on the real Loki (tests/test_real_loki_agent.py).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import yaml

from conftest import SAMPLE_LOGS
from receivers.elasticsearch import ElasticsearchReceiver
from receivers.loki import LokiReceiver

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SOURCE_LINES = [
    line
    for name in ("replication-master.log", "replication-replica.log", "bgsave-aof.log", "startup-shutdown.log")
    for line in (SAMPLE_LOGS / "redis-7.0" / name).read_bytes().splitlines(keepends=True)
]


def write_lines(path: Path, n: int, start: int = 0) -> None:
    with open(path, "ab") as f:
        for i in range(start, start + n):
            f.write(SOURCE_LINES[i % len(SOURCE_LINES)])


def agent_config(tmp: Path, log: Path, sinks: list[dict]) -> Path:
    cfg = {
        "state_dir": str(tmp / "state"), "timezone": "UTC", "labels": {"job": "redis", "instance": "redis-e2e"},
        "metrics": {"listen": ""}, "shutdown_timeout": 5, "audit": {"anchor_interval": 0},
        "sources": [{"type": "file", "path": str(log), "idle_flush": "200ms"}],
        "sinks": sinks,
    }
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def start(cfg: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def expected_offsets(log: Path) -> set[int]:
    """Offsets of the events `redis-shipper parse` finds in the final file: the agent must ship each once."""
    r = subprocess.run([sys.executable, "-m", "shipper.cli", "parse", "--timezone", "UTC", str(log)],
                       capture_output=True, check=True)
    return {orjson.loads(x)["offset"] for x in r.stdout.splitlines()}


def loki_file_events(loki: LokiReceiver) -> list[dict]:
    return [e for e in (orjson.loads(x.line) for x in loki.entries()) if e.get("source") != "agent"]


def es_file_docs(es: ElasticsearchReceiver) -> list[dict]:
    return [d for d in es.documents() if d.get("redis_shipper", {}).get("source") != "agent"]


def wait_for(pred, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def stop(p: subprocess.Popen[bytes]) -> str:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        p.wait(30)
    return p.stderr.read().decode(errors="replace") if p.stderr else ""


def test_sigkill_mid_batch_loses_nothing_duplicates_nothing_in_elasticsearch_and_replays_identically_to_loki(
    tmp_path,
):
    log = tmp_path / "redis.log"
    log.touch()
    with LokiReceiver() as loki, ElasticsearchReceiver() as es:
        cfg = agent_config(tmp_path, log, [
            {"type": "loki", "url": loki.url, "batch": {"max_wait": "200ms", "max_bytes": "64KiB"}},
            {"type": "elasticsearch", "url": es.url, "batch": {"max_wait": "200ms", "max_bytes": "64KiB"}},
        ])
        rng = random.Random(7)
        written = 0
        p = start(cfg)
        for _ in range(6):  # six kills at random moments while lines keep coming
            for _ in range(rng.randint(3, 8)):
                write_lines(log, 300, written)
                written += 300
                time.sleep(rng.uniform(0.02, 0.15))
            p.send_signal(signal.SIGKILL)
            p.wait(10)
            p = start(cfg)
        want = expected_offsets(log)
        try:
            assert wait_for(lambda: {e["offset"] for e in loki_file_events(loki)} >= want
                            and len(es_file_docs(es)) >= len(want), timeout=90)
        finally:
            stop(p)
        # Elasticsearch: every event exactly once (create + deterministic _id)
        docs = es_file_docs(es)
        offsets = [d["log"]["offset"] for d in docs]
        assert sorted(offsets) == sorted(want), "one document per event, none missing, none twice"
        # Loki: every event stored once; every replayed entry was byte-identical, hence dropped
        stored = loki_file_events(loki)
        assert sorted(e["offset"] for e in stored) == sorted(want)
        by_id: dict[str, set[str]] = {}
        for push in loki.pushes:
            for _, entries in push.streams:
                for entry in entries:
                    ev = orjson.loads(entry.line)
                    by_id.setdefault(ev["id"], set()).add(entry.line)
        assert all(len(lines) == 1 for lines in by_id.values()), "a replayed event must be byte-identical"


def test_a_sink_down_for_a_while_loses_nothing_keeps_memory_bounded_and_catches_up(tmp_path):
    log = tmp_path / "redis.log"
    log.touch()
    with LokiReceiver() as loki:
        cfg = agent_config(tmp_path, log, [{"type": "loki", "url": loki.url,
                                            "retry": {"initial": "100ms", "max": "1s"}}])
        p = start(cfg)
        try:
            loki.fail_next(10**6, 503)  # down until cleared
            rss = []
            t_end = time.monotonic() + 15
            written = 0
            while time.monotonic() < t_end:  # ~1,000 lines/s for 15 s, while Loki answers 503
                write_lines(log, 100, written)
                written += 100
                rss.append(rss_mb(p.pid))
                time.sleep(0.1)
            assert loki.count() == 0
            loki.clear_faults()
            want = expected_offsets(log)
            t0 = time.monotonic()
            assert wait_for(lambda: {e["offset"] for e in loki_file_events(loki)} >= want, timeout=60)
            catch_up = time.monotonic() - t0
        finally:
            stop(p)
        assert sorted(e["offset"] for e in loki_file_events(loki)) == sorted(want)
        assert max(rss) < 100, f"RSS during the outage: max {max(rss):.0f} MB"
        # 15 s of backlog drained in well under 15 s / 10 (catch-up >= 10x arrival), with slack for the
        # backoff ceiling (1 s) and CI noise
        assert catch_up < 1.5 + 15 / 10 * 2


def test_a_429_storm_with_retry_after_delays_but_loses_nothing(tmp_path):
    log = tmp_path / "redis.log"
    write_lines(log, 2000)
    with LokiReceiver() as loki:
        loki.fail_next(8, 429, retry_after="1")
        cfg = agent_config(tmp_path, log, [{"type": "loki", "url": loki.url,
                                            "retry": {"initial": "50ms", "max": "2s"}}])
        t0 = time.monotonic()
        p = start(cfg)
        want = expected_offsets(log)
        try:
            assert wait_for(lambda: {e["offset"] for e in loki_file_events(loki)} >= want, timeout=60)
            took = time.monotonic() - t0
        finally:
            stop(p)
        with loki.lock:
            assert not loki._faults, "all eight 429s were served"
        # Retry-After: 1 is honoured although the configured backoff starts at 50 ms
        assert took >= 8 * 1.0
        assert sorted(e["offset"] for e in loki_file_events(loki)) == sorted(want)

