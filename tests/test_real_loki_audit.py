"""`redis-shipper run` into the real Loki, then `redis-shipper verify --from loki` against it:
an untouched trail passes; an entry removed with Loki's delete API is found, with its range."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import yaml

from shipper.cli import main as cli
from shipper.sinks.loki import timestamp_ns

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.real_loki, pytest.mark.integration]
SINCE = "2026-11-25T00:00:00Z"


def verify(capsys: pytest.CaptureFixture[str], config: Path, sink: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = cli(["verify", "--config", str(config), "--from", "loki", "--sink", sink, "--since", SINCE,
                "--no-agent-state", "--json"])
    return code, orjson.loads(capsys.readouterr().out)


def settled(state: Path) -> bool:
    """Every sink has acknowledged every spooled batch."""
    import sqlite3

    if not (state / "spool.sqlite").exists():
        return False
    db = sqlite3.connect(f"file:{state / 'spool.sqlite'}?mode=ro", uri=True)
    try:
        top = db.execute("SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name='batches'").fetchone()[0]
        acked = [r[0] for r in db.execute("SELECT acked FROM sink_cursors")]
    except sqlite3.OperationalError:
        return False
    finally:
        db.close()
    return len(acked) == 2 and all(a >= top for a in acked)


def test_verify_from_the_real_loki_passes_untouched_and_finds_a_deleted_entry(loki, tmp_path, capsys):
    """The same trail goes to two tenants: one stays untouched, one loses an entry to the
    delete API (a querier caches a tenant's delete requests, so the untouched tenant is the one
    queried before the delete)."""
    log = tmp_path / "redis.log"
    shutil.copy(ROOT / "sample-logs" / "redis-7.0" / "replication-master.log", log)
    expected = subprocess.run([sys.executable, "-m", "shipper.cli", "parse", "--timezone", "UTC", str(log)],
                              cwd=ROOT, capture_output=True, check=True).stdout.count(b"\n")
    sinks = [{"type": "loki", "url": loki.url, "tenant": t, "batch": {"max_wait": "50ms"},
              "retry": {"initial": "50ms", "max": "1s"}} for t in ("audit-a", "audit-b")]
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(tmp_path / "state"), "timezone": "UTC", "labels": {"job": "audit"},
        "sinks": sinks, "sources": [{"type": "file", "path": str(log), "poll_interval": "50ms"}],
        "metrics": {"listen": ""}, "audit": {"anchor_interval": 0}, "shutdown_timeout": 5}))
    proc = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(config)], cwd=ROOT,
                            env={**os.environ}, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "agent.log", "wb"))
    try:
        deadline = time.monotonic() + 60
        start, end = 1795_000_000 * 10**9, int(time.time() * 1e9)
        while time.monotonic() < deadline:
            # audit-b is not queried before the delete (see above): the agent's spool says it is done
            if len(loki.entries("audit-a", '{job="audit", source="redis"}', start, end)) >= expected \
                    and settled(tmp_path / "state"):
                break
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    code, rep = verify(capsys, config, "loki")
    assert code == 0, rep["problems"]
    (s,) = [x for x in rep["streams"] if x["stream"].endswith(f"file:{log}")]
    assert (s["first_seq"], s["last_seq"], s["events"]) == (1, expected, expected)

    victim = next(line for _, _, line in loki.entries("audit-a", '{job="audit", source="redis"}', start, end)
                  if orjson.loads(line)["seq"] == 7 and orjson.loads(line)["stream"] == s["stream"])
    ts_s = timestamp_ns(orjson.loads(victim)["timestamp"]) // 10**9
    loki.delete("audit-b", '{job="audit"} |= ' + orjson.dumps(victim[victim.index('"id"'):][:60]).decode(),
                ts_s - 1, ts_s + 2)
    deadline = time.monotonic() + 60
    while True:
        code, rep = verify(capsys, config, "loki2")
        if code != 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert code == 1, "the deletion is found"
    (s2,) = [x for x in rep["streams"] if x["stream"] == s["stream"]]
    assert [(g["first"], g["last"]) for g in s2["gaps"]] == [(7, 7)], "and its range reported"
    code, rep = verify(capsys, config, "loki")
    assert code == 0, "the other tenant is untouched"


def test_an_agent_sigkilled_mid_stream_replays_without_duplicates_in_loki(loki, tmp_path):
    """Two Redis logs of one host share every stream (same labels, interleaved timestamps: out
    of order between the sources); the agent is SIGKILLed halfway and restarted. Loki ends with
    each event exactly once: identical line, timestamp and labels on replay."""
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    lines_a = (ROOT / "sample-logs" / "redis-7.0" / "startup-shutdown.log").read_bytes().splitlines(keepends=True)
    lines_b = (ROOT / "sample-logs" / "redis-7.0" / "config-set-rewrite.log").read_bytes().splitlines(keepends=True)
    a.write_bytes(b"".join(lines_a[: len(lines_a) // 2]))
    b.write_bytes(b"".join(lines_b))
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump({
        "state_dir": str(tmp_path / "state"), "timezone": "UTC", "labels": {"job": "sigkill"},
        "sinks": [{"type": "loki", "url": loki.url, "tenant": "sigkill", "batch": {"max_wait": "50ms"},
                   "retry": {"initial": "50ms", "max": "1s"}}],
        "sources": [{"type": "file", "path": str(p), "poll_interval": "50ms"} for p in (a, b)],
        "metrics": {"listen": ""}, "shutdown_timeout": 5}))
    cmd = [sys.executable, "-m", "shipper.cli", "run", "--config", str(config)]
    start, end = 1795_000_000 * 10**9, int(time.time() * 1e9)
    query = '{job="sigkill", source="redis"}'

    def wait_for(n: int) -> list:
        deadline = time.monotonic() + 60
        while True:
            got = loki.entries("sigkill", query, start, end)
            if len(got) >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.3)

    def parse_count(p: Path) -> int:
        return subprocess.run([sys.executable, "-m", "shipper.cli", "parse", "--timezone", "UTC", str(p)],
                              cwd=ROOT, capture_output=True, check=True).stdout.count(b"\n")

    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "agent.log", "ab"))
    try:
        first = parse_count(a) + parse_count(b)
        wait_for(first)
        proc.send_signal(signal.SIGKILL)  # before it commits its last positions: a replay follows
        proc.wait(10)
        with open(a, "ab") as f:
            f.writelines(lines_a[len(lines_a) // 2:])
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "agent.log", "ab"))
        total = parse_count(a) + parse_count(b)
        got = wait_for(total)
        time.sleep(2)  # anything replayed late would show now
        got = loki.entries("sigkill", query, start, end)
    finally:
        proc.kill()
        proc.wait(10)
    keys = [(tuple(sorted(labels.items())), ts, line) for labels, ts, line in got]
    assert len(keys) == len(set(keys)) == total, (len(keys), len(set(keys)), total)
    streams = {orjson.loads(line)["stream"] for _, _, line in got}
    assert len(streams) == 2, "both sources' events arrived"
    series = loki.series("sigkill", query, start, end)
    assert len(series) == len({(s["level"]) for s in series}), "the two sources share their streams"
