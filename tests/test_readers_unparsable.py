"""``redis-shipper events`` and ``verify`` report a line of the trail they cannot parse (how many,
and where the first is), never skip it silently: the torn write a full disk leaves in an
appending sink (a fragment, then the whole batch again glued to it) is the real case."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson

from conftest import SAMPLE_LOGS

SAMPLE = SAMPLE_LOGS / "redis-7.0" / "replication-master.log"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shipper.cli", *args], capture_output=True, text=True, timeout=60)


def shipped_trail(tmp_path: Path) -> tuple[Path, Path]:
    """The agent run on a real log into the local sink until every line is there; (config, events file)."""
    log = tmp_path / "redis.log"
    shutil.copy(SAMPLE, log)
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\ntimezone: UTC\nmetrics: {{listen: ''}}\n"
                   f"sources:\n  - type: file\n    path: {log}\n")
    p = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(cfg)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    n = len(SAMPLE.read_bytes().splitlines())
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            r = cli("events", "--config", str(cfg), "--json")
            if sum(orjson.loads(x).get("lines", 0) for x in r.stdout.splitlines()) >= n:
                break
            time.sleep(0.2)
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    files = sorted((tmp_path / "state" / "events").glob("events-*.jsonl"))
    assert len(files) == 1
    return cfg, files[0]


def tear(events_file: Path, at: int) -> bytes:
    """Line ``at`` (0-based) becomes what a short write then a retry leave: a fragment of it with the
    whole line appended on the same line; returns the line."""
    lines = events_file.read_bytes().splitlines(keepends=True)
    victim = lines[at]
    lines[at] = victim[: len(victim) // 3] + victim
    events_file.write_bytes(b"".join(lines))
    return victim.rstrip(b"\n")


def cut(events_file: Path, at: int) -> bytes:
    """Line ``at`` (0-based) is cut short: the event is gone; returns what it was."""
    lines = events_file.read_bytes().splitlines(keepends=True)
    victim = lines[at]
    lines[at] = victim[:40] + b"\n"
    events_file.write_bytes(b"".join(lines))
    return victim.rstrip(b"\n")


def test_events_prints_the_event_of_a_torn_line_and_warns_naming_the_line(tmp_path: Path) -> None:
    cfg, events_file = shipped_trail(tmp_path)
    whole = cli("events", "--config", str(cfg), "--json")
    assert whole.returncode == 0 and whole.stderr == ""
    victim = tear(events_file, 3)
    r = cli("events", "--config", str(cfg), "--json")
    assert r.returncode == 0
    assert "1 line(s) are torn writes" in r.stderr and f"(first at {events_file.name}:4)" in r.stderr
    assert r.stdout == whole.stdout and victim.decode() in r.stdout.splitlines()


def test_events_reports_a_line_it_cannot_parse_with_its_place_and_exits_1(tmp_path: Path) -> None:
    cfg, events_file = shipped_trail(tmp_path)
    n = len(cli("events", "--config", str(cfg), "--json").stdout.splitlines())
    lost = cut(events_file, 5)
    r = cli("events", "--config", str(cfg), "--json")
    assert r.returncode == 1
    assert f"1 line(s) are not JSON events and were not printed (first at {events_file.name}:6)" in r.stderr
    printed = r.stdout.splitlines()
    assert len(printed) == n - 1 and lost.decode() not in printed, "every other event is still printed"


def test_verify_over_the_local_sink_names_a_cut_line_and_explains_a_torn_one(tmp_path: Path) -> None:
    cfg, events_file = shipped_trail(tmp_path)
    tear(events_file, 3)
    torn = cli("verify", "--config", str(cfg))
    assert torn.returncode == 0 and f"{events_file.name}:4: torn line" in torn.stdout
    cut(events_file, 5)
    r = cli("verify", "--config", str(cfg))
    assert r.returncode != 0
    assert f"{events_file.name}:6: not JSON" in r.stdout


def test_verify_reports_a_dead_letter_line_it_cannot_parse(tmp_path: Path) -> None:
    cfg, _ = shipped_trail(tmp_path)
    dead = tmp_path / "state" / "deadletter"
    dead.mkdir()
    (dead / "local.jsonl").write_bytes(b'{"sink": "local", "reason": "refused", "event": {"seq"\n')
    r = cli("verify", "--config", str(cfg))
    assert r.returncode != 0
    assert "local.jsonl:1: not a dead-letter record" in r.stdout
