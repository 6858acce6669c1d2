"""Damaged or lost state through the real ``redis-shipper run``: whatever the state files hold
(truncated, zeroed, emptied, garbage, WAL deleted, positions.json garbage), the agent starts
without a traceback, says what it lost in a ``state_reset`` event, and the lines are counted end
to end in the file sink."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest


def write_lines(log: Path, start: int, n: int) -> None:
    with open(log, "ab") as f:
        for i in range(start, start + n):
            f.write(b"4242:M 25 Nov 2026 17:%02d:%02d.%03d * marker-%07d\n" % (i // 60000 % 60, i // 1000 % 60,
                                                                               i % 1000, i))


def config(tmp: Path, log: Path, sink: str) -> Path:
    cfg = tmp / "agent.yaml"
    cfg.write_text(f"state_dir: {tmp / 'state'}\ntimezone: UTC\nmetrics: {{listen: ''}}\nshutdown_timeout: 1\n"
                   f"sources:\n  - type: file\n    path: {log}\nsinks:\n{sink}")
    return cfg


def file_sink(out: Path) -> str:
    return f"  - type: file\n    path: {out}\n"


#: a Loki nobody listens to: every event stays in the spool
DOWN_SINK = "  - type: loki\n    url: http://127.0.0.1:9\n    retry: {initial: 0.1s, max: 0.5s}\n"


def read_out(out: Path) -> list[dict]:
    return [orjson.loads(x) for x in out.read_bytes().splitlines()] if out.exists() else []


def markers(out: Path) -> Counter[int]:
    return Counter(int(m.group(1)) for e in read_out(out) if (m := re.search(r"marker-(\d+)", e.get("message", ""))))


def run_until(cfg: Path, done, *, kill: bool = False, timeout: float = 60) -> str:  # type: ignore[no-untyped-def]
    """Run the agent until ``done()``; SIGTERM (exit 0 required) or SIGKILL it; its stderr."""
    p = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(cfg)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not done() and p.poll() is None:
            time.sleep(0.2)
        reached = done()
    finally:
        p.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        code = p.wait(30)
    err = p.stderr.read().decode() if p.stderr else ""
    assert reached, err[-3000:]
    assert kill or code == 0, err[-3000:]
    return err


def damage(state: Path, kind: str) -> None:
    spool = state / "spool.sqlite"
    if kind == "truncated":
        with open(spool, "r+b") as f:
            f.truncate(spool.stat().st_size // 2)
    elif kind == "zeroed":
        spool.write_bytes(b"\0" * spool.stat().st_size)
    elif kind == "emptied":
        spool.write_bytes(b"")
    elif kind == "deleted":
        spool.unlink()
    elif kind == "garbage":
        spool.write_bytes(os.urandom(spool.stat().st_size))
    elif kind == "wal_deleted":
        wal = state / "spool.sqlite-wal"
        assert wal.exists() and wal.stat().st_size > 0, "the killed agent left its WAL"
        wal.unlink()
    elif kind == "positions_garbage":
        (state / "positions.json").write_bytes(b"\x00{not json" * 50)
    else:  # pragma: no cover
        raise AssertionError(kind)


N = 2000


@pytest.mark.parametrize("kind", ["truncated", "zeroed", "emptied", "deleted", "garbage", "wal_deleted",
                                  "positions_garbage"])
def test_damaged_state_starts_cleanly_says_what_it_lost_and_ships_every_line(tmp_path: Path, kind: str) -> None:
    log, out = tmp_path / "redis.log", tmp_path / "out.jsonl"
    write_lines(log, 0, N)
    cfg = config(tmp_path, log, file_sink(out))
    # the WAL only outlives an agent that did not close the spool
    run_until(cfg, lambda: len(markers(out)) == N, kill=kind == "wal_deleted")
    time.sleep(1.2 if kind == "wal_deleted" else 0)
    damage(tmp_path / "state", kind)
    write_lines(log, N, N)
    err = run_until(cfg, lambda: len(markers(out)) == 2 * N)
    assert "Traceback" not in err, err[-3000:]
    seen = markers(out)
    assert sorted(seen) == list(range(2 * N)), "no line lost"
    resets = [e for e in read_out(out) if e.get("event") == "state_reset"]
    if kind == "positions_garbage":  # the spool is the truth: positions.json is only a mirror
        assert resets == [] and max(seen.values()) == 1
        return
    assert len(resets) == 1, [e.get("message") for e in resets]
    fields = resets[0]["fields"]
    assert fields["file"].endswith("spool.sqlite") and fields["reason"]
    assert '"msg":"state_reset: ' in err, "logged too"
    if kind == "wal_deleted":
        # the spool went back to its last checkpoint: the lines read since are read and shipped again
        # every event had reached the sink; the stamp may not have seen the last acknowledgement
        assert fields["rows_lost"] > 0 and 0 <= fields["unrecoverable_events"] <= 5
        assert fields["resumed_from"].startswith("the spool's own")
        assert sum(n - 1 for n in seen.values()) <= N
    else:
        assert fields["resumed_from"] == "positions.json" and fields["positions_restored"] >= 1
        assert fields["unrecoverable_events"] == 0, "every event had reached the sink"
        assert max(seen.values()) == 1, "resumed exactly where it stood: nothing shipped twice"


def test_a_lost_spool_counts_the_events_no_sink_had_and_exactly_those_are_missing(tmp_path: Path) -> None:
    log, out = tmp_path / "redis.log", tmp_path / "out.jsonl"
    write_lines(log, 0, N)
    state = tmp_path / "state"
    # Loki is down: every line is read and committed to the spool, none shipped
    size = log.stat().st_size

    def all_spooled() -> bool:  # the spool's positions table (positions.json is rewritten once a second)
        if not (state / "spool.sqlite").exists():
            return False
        db = sqlite3.connect(f"file:{state / 'spool.sqlite'}?mode=ro", uri=True, timeout=5)
        try:
            return any(b'"offset":%d' % size in v for (v,) in db.execute("SELECT value FROM positions"))
        except sqlite3.Error:
            return False
        finally:
            db.close()

    run_until(config(tmp_path, log, DOWN_SINK), all_spooled)
    damage(state, "zeroed")
    write_lines(log, N, N)
    err = run_until(config(tmp_path, log, file_sink(out)), lambda: len(markers(out)) == N)
    assert "Traceback" not in err
    reset = next(e for e in read_out(out) if e.get("event") == "state_reset")
    assert sorted(markers(out)) == list(range(N, 2 * N)), "the lines the lost spool held are gone"
    # the N lines and the agent's own events (the start) that were waiting for Loki
    assert N <= reset["fields"]["unrecoverable_events"] <= N + 5
    assert f"up to {reset['fields']['unrecoverable_events']} event(s) it held had not reached every sink" \
        in reset["message"]
