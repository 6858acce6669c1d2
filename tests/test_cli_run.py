"""`redis-shipper run` as users run it: a subprocess, a config file, signals."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from conftest import SAMPLE_LOGS

SAMPLE = SAMPLE_LOGS / "redis-7.0" / "replication-master.log"
SENTINEL_DIR = SAMPLE_LOGS / "sentinel-7.0"


def start_agent(cfg: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(cfg), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_out(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def wait_for(pred, timeout: float = 20.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def write_cfg(tmp: Path, paths: list[Path], out: Path) -> Path:
    cfg = tmp / "agent.yaml"
    sources = "".join(f"  - type: file\n    path: {p}\n" for p in paths)
    cfg.write_text(f"state_dir: {tmp / 'state'}\ntimezone: UTC\nlabels: {{job: redis}}\n"
                   f"metrics: {{listen: ''}}\n"
                   f"sources:\n{sources}sinks:\n  - type: file\n    path: {out}\n")
    return cfg


def test_sigterm_flushes_every_event_and_exits_zero(tmp_path):
    log = tmp_path / "redis.log"
    shutil.copy(SAMPLE, log)
    out = tmp_path / "out.jsonl"
    p = start_agent(write_cfg(tmp_path, [log], out))
    n_lines = len(SAMPLE.read_bytes().splitlines())
    # the last line is held back until the parser knows no continuation follows (idle flush)
    assert wait_for(lambda: sum(e.get("lines", 0) for e in read_out(out)) >= n_lines)
    p.send_signal(signal.SIGTERM)
    assert p.wait(20) == 0, p.stderr.read().decode() if p.stderr else ""
    events = read_out(out)
    assert sum(e.get("lines", 0) for e in events) == n_lines
    assert all(e["labels"]["job"] == "redis" for e in events)


def test_sighup_reload_adds_a_source_without_reshipping_the_first(tmp_path):
    log = tmp_path / "redis.log"
    shutil.copy(SAMPLE, log)
    out = tmp_path / "out.jsonl"
    cfg = write_cfg(tmp_path, [log], out)
    p = start_agent(cfg)
    n1 = len(SAMPLE.read_bytes().splitlines())
    try:
        assert wait_for(lambda: sum(e.get("lines", 0) for e in read_out(out)) >= n1)
        sentinel_log = sorted(SENTINEL_DIR.glob("sentinel-*.log"))[0]
        s_log = tmp_path / "sentinel.log"
        shutil.copy(sentinel_log, s_log)
        write_cfg(tmp_path, [log, s_log], out)
        p.send_signal(signal.SIGHUP)
        n2 = len(sentinel_log.read_bytes().splitlines())
        assert wait_for(lambda: any(e.get("file") == str(s_log) for e in read_out(out)))
        assert wait_for(
            lambda: sum(e.get("lines", 0) for e in read_out(out) if e.get("file") == str(s_log)) >= n2)
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
    events = read_out(out)
    first = [e for e in events if e.get("file") == str(log)]
    assert sum(e["lines"] for e in first) == n1, "the reload must not re-ship the first file"
    assert any(e["source"] == "sentinel" for e in events)


def test_a_broken_config_on_reload_keeps_the_agent_running(tmp_path):
    log = tmp_path / "redis.log"
    shutil.copy(SAMPLE, log)
    out = tmp_path / "out.jsonl"
    cfg = write_cfg(tmp_path, [log], out)
    p = start_agent(cfg)
    try:
        assert wait_for(lambda: len(read_out(out)) > 0)
        cfg.write_text("sources:\n  - type: file\n")  # path missing
        p.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        assert p.poll() is None, "a bad reload must not stop the agent"
        with open(log, "ab") as f:
            f.write(b"26412:M 25 Nov 2026 17:36:54.151 # User requested shutdown...\n")
        assert wait_for(lambda: any(e["event"] == "user_requested_shutdown" or
                                    "User requested shutdown" in e["message"] for e in read_out(out)))
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(20)
    err = p.stderr.read().decode() if p.stderr else ""
    assert "reload refused" in err and "sources[0].path" in err


def test_bad_config_names_the_key_and_exits_non_zero(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("sources:\n  - type: file\n    formt: auto\n  - type: kafka\n")
    r = subprocess.run([sys.executable, "-m", "shipper.cli", "run", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "sources[0].path: required key is missing" in r.stderr
    assert "sources[0].formt: unknown key (did you mean 'format'?)" in r.stderr
    assert "sources[1]: unknown type 'kafka'" in r.stderr


def test_unwritable_state_dir_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "state").write_text("a file, not a directory")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"state_dir: {ro / 'state'}\nsources: []\nmetrics: {{listen: ''}}\n")
    r = subprocess.run([sys.executable, "-m", "shipper.cli", "run", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert "state_dir" in r.stderr


def test_events_command_reads_back_the_local_sink_with_filters(tmp_path):
    log = tmp_path / "redis.log"
    shutil.copy(SAMPLE, log)
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\ntimezone: UTC\nmetrics: {{listen: ''}}\n"
                   f"sources:\n  - type: file\n    path: {log}\n")
    p = start_agent(cfg)
    n = len(SAMPLE.read_bytes().splitlines())

    def shipped() -> int:
        r = subprocess.run([sys.executable, "-m", "shipper.cli", "events", "--config", str(cfg), "--json"],
                           capture_output=True, timeout=30)
        return sum(orjson.loads(x).get("lines", 0) for x in r.stdout.splitlines())

    try:
        assert wait_for(lambda: shipped() >= n - 1)
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(20)
    r = subprocess.run([sys.executable, "-m", "shipper.cli", "events", "--config", str(cfg), "--json",
                        "--category", "replication"], capture_output=True, timeout=30)
    evs = [orjson.loads(x) for x in r.stdout.splitlines()]
    assert evs and all(e["category"] == "replication" for e in evs)
    r = subprocess.run([sys.executable, "-m", "shipper.cli", "events", "--config", str(cfg),
                        "--event", "partial_resync_accepted", "--since", "3650d"], capture_output=True, text=True,
                       timeout=30)
    assert "partial_resync_accepted" in r.stdout
    assert "Partial resynchronization request from" in r.stdout


def test_the_running_agent_serves_metrics_health_and_readiness_on_loopback(tmp_path):
    import urllib.request

    from servers import free_port

    log = tmp_path / "redis.log"
    shutil.copy(SAMPLE, log)
    out = tmp_path / "out.jsonl"
    port = free_port()
    cfg = write_cfg(tmp_path, [log], out)
    cfg.write_text(cfg.read_text().replace("metrics: {listen: ''}", f"metrics: {{listen: '127.0.0.1:{port}'}}"))
    p = start_agent(cfg)
    n = len(SAMPLE.read_bytes().splitlines())
    try:
        assert wait_for(lambda: sum(e.get("lines", 0) for e in read_out(out)) >= n)

        def get(path: str) -> tuple[int, str]:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return r.status, r.read().decode()

        assert wait_for(lambda: f'redis_shipper_lines_read_total{{path="{log}"}} {float(n)}' in get("/metrics")[1])
        status, body = get("/metrics")
        assert 'redis_shipper_sink_sent_events_total{sink="file"}' in body
        assert "process_resident_memory_bytes" in body
        assert get("/healthz")[0] == 200
        assert get("/ready")[0] == 200
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0


def test_sighup_that_changes_only_file_sources_applies_them_to_the_running_agent(tmp_path):
    """Adding one file and removing another reloads in place: the file that stays is not re-read,
    the removed one is drained and stopped, the new one starts, and the sinks never restart."""
    keep, drop, new = tmp_path / "keep.log", tmp_path / "drop.log", tmp_path / "new.log"
    for f in (keep, drop, new):
        shutil.copy(SAMPLE, f)
    out = tmp_path / "out.jsonl"
    cfg = write_cfg(tmp_path, [keep, drop], out)
    p = start_agent(cfg)
    n = len(SAMPLE.read_bytes().splitlines())

    def lines_of(f: Path) -> int:
        return sum(e.get("lines", 0) for e in read_out(out) if e.get("file") == str(f))

    try:
        assert wait_for(lambda: lines_of(keep) >= n and lines_of(drop) >= n)
        write_cfg(tmp_path, [keep, new], out)
        p.send_signal(signal.SIGHUP)
        assert wait_for(lambda: lines_of(new) >= n)
        with open(drop, "ab") as f:  # nobody follows it any more
            f.write(SAMPLE.read_bytes().splitlines()[0] + b"\n")
        with open(keep, "ab") as f:  # still followed, by the same source
            f.write(SAMPLE.read_bytes().splitlines()[0] + b"\n")
        assert wait_for(lambda: lines_of(keep) >= n + 1)
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
        err = p.stderr.read().decode() if p.stderr else ""
    assert (lines_of(keep), lines_of(drop), lines_of(new)) == (n + 1, n, n)
    reloads = [orjson.loads(x) for x in err.splitlines() if x.startswith("{") and "reloaded" in x]
    assert len(reloads) == 1 and reloads[0]["stopped"] == [f"file:{drop}"] and reloads[0]["started"] == [f"file:{new}"]
    assert err.count('"msg":"started"') == 1, "the pipeline was not restarted"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_post_reload_on_the_metrics_port_reloads_like_sighup_and_stderr_stays_json(tmp_path):
    import urllib.error
    import urllib.request

    log = tmp_path / "redis.log"
    shutil.copy(SAMPLE, log)
    out = tmp_path / "out.jsonl"
    port = _free_port()
    cfg = write_cfg(tmp_path, [log], out)
    cfg.write_text(cfg.read_text().replace("metrics: {listen: ''}", f"metrics: {{listen: '127.0.0.1:{port}'}}"))
    p = start_agent(cfg)
    url = f"http://127.0.0.1:{port}/-/reload"
    try:
        assert wait_for(lambda: len(read_out(out)) > 0)
        s_log = tmp_path / "sentinel.log"
        shutil.copy(sorted(SENTINEL_DIR.glob("sentinel-*.log"))[0], s_log)
        good = cfg.read_text().replace(f"    path: {log}\n", f"    path: {log}\n  - type: file\n    path: {s_log}\n")
        cfg.write_text("sources:\n  - type: file\n")  # broken: refused at once, the agent keeps running
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30)
        assert refused.value.code == 400 and "sources[0].path" in refused.value.read().decode()
        cfg.write_text(good)
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30) as r:
            assert r.status == 200
        assert wait_for(lambda: any(e.get("file") == str(s_log) for e in read_out(out)), 60)
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    err = p.stderr.read().decode() if p.stderr else ""
    lines = err.splitlines()
    assert lines, "the agent logs its start and stop"
    for line in lines:  # JSON lines only: every line is one object (warnings included)
        assert isinstance(orjson.loads(line), dict), line


def test_log_format_logfmt_writes_key_value_lines(tmp_path):
    log = tmp_path / "redis.log"
    shutil.copy(SAMPLE, log)
    out = tmp_path / "out.jsonl"
    p = start_agent(write_cfg(tmp_path, [log], out), "--log-format", "logfmt")
    try:
        assert wait_for(lambda: len(read_out(out)) > 0)
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    lines = (p.stderr.read().decode() if p.stderr else "").splitlines()
    assert any(" msg=started " in line for line in lines), lines
    assert all(line.startswith("time=") and " level=" in line for line in lines)
