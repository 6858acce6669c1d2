"""A full state_dir under the real ``redis-shipper run``, as an operator meets it: the disk fills
while 30,000 lines arrive, ``/ready`` names the failing write, and once space returns everything
resumes without a restart, nothing lost, duplicates at most one batch. SIGTERM while the disk is
still full exits cleanly.

A read-only remount is tested in tests/test_readonly_state.py: ``mount -o remount,ro`` is refused
(EBUSY) while the agent holds the spool open for writing, so that test has the kernel force it
(an ext4 error under ``errors=remount-ro``). Its errno (EROFS) takes the same retry path as
ENOSPC (shipper/pipeline/state_guard.py).

These tests need root (they mount a small tmpfs): skipped locally when not root, a failure in
CI (CI runs as root).
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from tmpfs import fill, mounted_tmpfs

LINES = 30_000


@pytest.fixture
def state_disk(tmp_path: Path) -> Iterator[Path]:
    """An 8 MiB tmpfs for the state_dir, unmounted at teardown."""
    with mounted_tmpfs(tmp_path, "8m") as mnt:
        yield mnt



class Writer(threading.Thread):
    """Appends ``LINES`` Redis log lines at ``rate`` lines/s."""

    def __init__(self, log: Path, rate: int = 3000) -> None:
        super().__init__(daemon=True)
        self.log, self.rate, self.n = log, rate, 0

    def run(self) -> None:
        t0 = time.monotonic()
        with open(self.log, "ab", buffering=0) as f:
            while self.n < LINES:
                due = min(LINES, int((time.monotonic() - t0) * self.rate))
                chunk = b"".join(b"4242:M 25 Nov 2026 17:%02d:%02d.%03d * marker-%07d\n"
                                 % (i // 60000 % 60, i // 1000 % 60, i % 1000, i) for i in range(self.n, due))
                f.write(chunk)
                self.n = due
                time.sleep(0.01)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


def markers(out: Path) -> Counter[int]:
    if not out.exists():
        return Counter()
    found = Counter()
    for line in out.read_bytes().splitlines():
        m = re.search(rb"marker-(\d+)", line)
        if m:
            found[int(m.group(1))] += 1
    return found


def wait_for(pred, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.2)
    return False


def start(tmp_path: Path, state: Path) -> tuple[subprocess.Popen[bytes], Path, str]:
    log, out = tmp_path / "redis.log", tmp_path / "out.jsonl"
    log.touch()
    port = free_port()
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"state_dir: {state}\ntimezone: UTC\nmetrics: {{listen: '127.0.0.1:{port}'}}\n"
                   f"shutdown_timeout: 5\nspool: {{max_bytes: 2MiB}}\n"
                   f"sources:\n  - type: file\n    path: {log}\nsinks:\n  - type: file\n    path: {out}\n")
    p = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(cfg)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, 30)
    return p, out, f"http://127.0.0.1:{port}"


def stop(p: subprocess.Popen[bytes]) -> tuple[int, str]:
    p.send_signal(signal.SIGTERM)
    code = p.wait(60)
    return code, p.stderr.read().decode() if p.stderr else ""


def test_a_full_state_dir_resumes_without_a_restart_nothing_lost(tmp_path: Path, state_disk: Path) -> None:
    p, out, url = start(tmp_path, state_disk / "state")
    writer = Writer(tmp_path / "redis.log")
    try:
        writer.start()
        assert wait_for(lambda: len(markers(out)) >= 3000, 60)
        filler = fill(state_disk)
        # the failing write is named while it lasts; the process stays alive
        assert wait_for(lambda: "state:spool" in get(f"{url}/ready")[1], 60), get(f"{url}/ready")
        code, body = get(f"{url}/ready")
        assert code == 503
        reason = next(x["reason"] for x in orjson.loads(body)["not_ready"] if x["part"] == "state:spool")
        assert "disk is full" in reason or "ENOSPC" in reason, reason
        assert get(f"{url}/healthz")[0] == 200
        metrics = get(f"{url}/metrics")[1]
        assert re.search(r'redis_shipper_state_write_errors_total\{component="spool"\} [1-9]', metrics)
        assert "redis_shipper_state_dir_free_bytes" in metrics
        time.sleep(3)
        filler.unlink()
        writer.join(60)
        assert wait_for(lambda: len(markers(out)) >= LINES, 180), f"{len(markers(out))} of {LINES} shipped"
        assert wait_for(lambda: get(f"{url}/ready")[0] == 200, 60), get(f"{url}/ready")
    finally:
        code, err = stop(p)
    seen = markers(out)
    assert sorted(seen) == list(range(LINES)), "nothing lost"
    dupes = sum(n - 1 for n in seen.values())
    assert dupes <= 2000, f"{dupes} duplicates: at most one batch"
    assert code == 0, err[-3000:]
    assert "Traceback" not in err and "never retrieved" not in err, err[-3000:]
    assert err.count("cannot write") <= 3, "the error is logged once per episode, not per retry"


def test_sigterm_while_the_state_dir_is_still_full_exits_cleanly_and_the_next_start_resumes(
        tmp_path: Path, state_disk: Path) -> None:
    p, out, url = start(tmp_path, state_disk / "state")
    writer = Writer(tmp_path / "redis.log")
    writer.start()
    try:
        assert wait_for(lambda: len(markers(out)) >= 3000, 60)
        filler = fill(state_disk)
        assert wait_for(lambda: "state:spool" in get(f"{url}/ready")[1], 60)
    finally:
        code, err = stop(p)
    assert code == 0, err[-3000:]
    assert "Traceback" not in err and "never retrieved" not in err, err[-3000:]
    filler.unlink()
    writer.join(60)
    p, out, url = start(tmp_path, state_disk / "state")
    try:
        assert wait_for(lambda: len(markers(out)) >= LINES, 180), f"{len(markers(out))} of {LINES} shipped"
    finally:
        code, err = stop(p)
    assert code == 0 and "state_reset" not in err, "the spool was closed whole: nothing to reset"
    seen = markers(out)
    assert sorted(seen) == list(range(LINES)), "nothing lost"
    assert sum(n - 1 for n in seen.values()) <= 2000
