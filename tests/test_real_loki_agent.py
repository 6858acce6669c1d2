"""`redis-shipper run` (a subprocess, its real sink worker) against the real Loki: what the
server refuses for good is dead-lettered with a ``dead_lettered`` agent event and the agent moves
on; what Loki takes out of order (a rotated file's tail read after the new file's first lines, two
sources writing into one stream) is all taken, once.

Each test has its own ``job`` label; the 400 tests use the ``small`` tenant (tests/loki_server.py:
``max_line_size`` 4000 bytes, at most 4 label names per stream).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from loki_server import wait_for

from shipper.sinks.loki import timestamp_ns

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "sample-logs"
pytestmark = [pytest.mark.real_loki, pytest.mark.integration]
#: from before every sample log to well after the agent's own events (stamped with the time now)
START = timestamp_ns("2026-11-20T00:00:00.000000Z")


def end_ns() -> int:
    return int((time.time() + 600) * 1e9)


class Agent:
    """One ``redis-shipper run`` with a Loki sink, its state dir and its stderr in ``tmp``."""

    def __init__(self, tmp: Path, loki: Any, *, tenant: str, job: str, sources: list[dict[str, Any]]):
        self.tmp, self.loki, self.tenant, self.job = tmp, loki, tenant, job
        self.config = tmp / "agent.yaml"
        self.config.write_text(yaml.safe_dump({
            "state_dir": str(tmp / "state"), "timezone": "UTC", "labels": {"job": job},
            "sinks": [{"type": "loki", "url": loki.url, "tenant": tenant, "batch": {"max_wait": "50ms"},
                       "retry": {"initial": "50ms", "max": "1s"}}],
            "sources": [{"type": "file", "poll_interval": "50ms", "idle_flush": "200ms", **s} for s in sources],
            "metrics": {"listen": ""}, "audit": {"anchor_interval": 0}, "shutdown_timeout": 5}))
        self.dead = tmp / "state" / "deadletter" / "loki.jsonl"
        self.log = tmp / "agent.log"

    @contextmanager
    def running(self) -> Iterator[Agent]:
        with open(self.log, "ab") as err:
            proc = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(self.config)],
                                    cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        try:
            yield self
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def events(self, query: str = "") -> list[dict[str, Any]]:
        """The events in Loki under this agent's ``job`` (``query``: more of the selector)."""
        sel = f'{{job="{self.job}"{", " + query if query else ""}}}'
        return [orjson.loads(line) for _, _, line in self.loki.entries(self.tenant, sel, START, end_ns())]

    def file_events(self) -> list[dict[str, Any]]:
        return self.events('source=~"redis|sentinel"')

    def dead_letters(self) -> list[dict[str, Any]]:
        return [orjson.loads(x) for x in self.dead.read_bytes().splitlines()] if self.dead.exists() else []



def parse(data: bytes, tmp: Path) -> list[dict[str, Any]]:
    """The events ``redis-shipper parse`` finds in these bytes of a log."""
    p = tmp / f"parse-{time.monotonic_ns()}.log"
    p.write_bytes(data)
    out = subprocess.run([sys.executable, "-m", "shipper.cli", "parse", "--timezone", "UTC", str(p)],
                         cwd=ROOT, capture_output=True, check=True).stdout
    return [orjson.loads(x) for x in out.splitlines()]


def behind(late: list[dict[str, Any]], early: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events of ``late`` older than an event of ``early`` in their stream (one stream per
    level here): sent after it, they reach Loki out of order."""
    newest: dict[str, str] = {}
    for e in early:
        newest[e["level"]] = max(newest.get(e["level"], ""), e["timestamp"])
    return [e for e in late if e["timestamp"] < newest.get(e["level"], "")]


def what(events: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """Events compared across files and offsets: kind, own timestamp, message (a multiset)."""
    return Counter((e["event"], e["timestamp"], e["message"]) for e in events)


def test_a_crash_report_over_the_servers_max_line_size_is_dead_lettered_and_the_agent_moves_on(loki, tmp_path):
    """Redis 7.0's real crash report (344 lines, one 15 KB event) against a Loki whose
    ``max_line_size`` is 4000 bytes: a real 400. The crash report goes to the dead-letter file, a
    ``dead_lettered`` agent event reaches Loki beside the Redis events, and the lines of the
    restart that follows are delivered."""
    data = (SAMPLES / "redis-7.0" / "crash-then-restart.log").read_bytes()
    events = parse(data, tmp_path)
    (crash,) = [e for e in events if e["event"] == "crash_report"]
    restart = next(e["offset"] for e in events if e["offset"] > crash["offset"])
    assert len(orjson.dumps(crash)) > 4000 > max(len(orjson.dumps(e)) for e in events if e is not crash)
    log = tmp_path / "redis.log"
    log.write_bytes(data[:restart])  # up to the end of the crash report
    agent = Agent(tmp_path, loki, tenant="small", job="agent-line-size", sources=[{"path": str(log)}])
    with agent.running():
        wait_for("the crash report dead-lettered", agent.dead_letters)
        with open(log, "ab") as f:
            f.write(data[restart:])
        notes = wait_for("a dead_lettered event in Loki", lambda: [
            e for e in agent.events('source="agent"') if e["event"] == "dead_lettered"])
        wait_for("every other event in Loki", lambda: len(agent.file_events()) >= len(events) - 1)
        time.sleep(1)  # anything late or twice would show now
        stored = agent.file_events()
    dead = agent.dead_letters()
    assert crash["message"] in {d["event"]["message"] for d in dead}
    assert all("HTTP 400" in d["reason"] and "Max entry size" in d["reason"] for d in dead), dead[0]["reason"]
    assert what(stored) == what([e for e in events if e is not crash]), "the rest delivered, once"
    (note,) = notes
    assert note["level"] == "warning" and note["fields"]["sink"] == "loki"
    assert note["fields"]["events"] == len(dead) and "Max entry size" in note["fields"]["reason"]
    assert {d["event"]["id"] for d in dead} == set(note["fields"]["ids"])
    assert "refused" in agent.log.read_text()


def test_a_source_with_too_many_labels_is_dead_lettered_and_the_other_source_delivered(loki, tmp_path):
    """A source whose events carry 5 label names (job, env, dc, source, level) against a Loki
    that allows 4: a real 400 for its batches, every one of its events dead-lettered and none in
    Loki, each refusal told by a ``dead_lettered`` event in Loki; the agent's other source, on 3
    labels, delivered in full."""
    wide, narrow = tmp_path / "wide.log", tmp_path / "narrow.log"
    wide.write_bytes((SAMPLES / "redis-7.0" / "security.log").read_bytes())
    narrow.touch()
    agent = Agent(tmp_path, loki, tenant="small", job="agent-labels",
                  sources=[{"path": str(wide), "labels": {"env": "prod", "dc": "eu"}}, {"path": str(narrow)}])
    wide_events = parse(wide.read_bytes(), tmp_path)
    with agent.running():
        wait_for("every event of the wide source dead-lettered", lambda: len(agent.dead_letters()) >= len(wide_events))
        narrow.write_bytes((SAMPLES / "redis-7.0" / "replication-master.log").read_bytes())
        narrow_events = parse(narrow.read_bytes(), tmp_path)
        wait_for("the narrow source delivered", lambda: len(agent.file_events()) >= len(narrow_events))
        notes = wait_for("a dead_lettered event in Loki", lambda: [
            e for e in agent.events('source="agent"') if e["event"] == "dead_lettered"])
        time.sleep(1)
        stored = agent.file_events()
    dead = agent.dead_letters()
    # Loki refuses a whole push for one bad stream (and writes the good ones): an agent event
    # that shared a batch with the wide source's last events is in the file too, and in Loki
    assert what([d["event"] for d in dead if d["event"]["source"] != "agent"]) == what(wide_events)
    assert all("HTTP 400" in d["reason"] and "label names" in d["reason"] for d in dead), dead[0]["reason"]
    assert what(stored) == what(narrow_events), "none of the refused source, all of the other"
    assert {e["stream"].split("/", 1)[1] for e in stored} == {f"file:{narrow}"}
    assert sum(n["fields"]["events"] for n in notes) == len(dead)
    assert {i for n in notes for i in n["fields"]["ids"]} == {d["event"]["id"] for d in dead}


def test_a_rotated_files_tail_read_after_the_new_files_first_lines_is_taken_out_of_order(loki, tmp_path):
    """A rename rotation while lines flow: the new file's first lines reach Loki, then the writer
    still holding the old file adds its last lines there (older timestamps, same stream). Loki
    takes them out of order: nothing refused, every line once."""
    lines = (SAMPLES / "redis-7.0" / "startup-shutdown.log").read_bytes().splitlines(keepends=True)
    third = len(lines) // 3
    head, tail, new = b"".join(lines[:third]), b"".join(lines[third:2 * third]), b"".join(lines[2 * third:])
    head_ev, tail_ev, new_ev = (parse(x, tmp_path) for x in (head, tail, new))
    assert len(behind(tail_ev, new_ev)) >= 5, "the tail is older than the new file's first lines"
    log, rotated = tmp_path / "redis.log", tmp_path / "redis.log.1"
    log.write_bytes(head)
    agent = Agent(tmp_path, loki, tenant="ooo", job="agent-rotation",
                  sources=[{"path": str(log), "rotate_wait": "60s"}])
    with agent.running():
        wait_for("the first lines", lambda: len(agent.file_events()) >= len(head_ev))
        log.rename(rotated)
        log.write_bytes(new)
        wait_for("the new file's first lines", lambda: len(agent.file_events()) >= len(head_ev) + len(new_ev))
        with open(rotated, "ab") as f:  # the writer's descriptor still points at the rotated file
            f.write(tail)
        wait_for("the rotated file's tail", lambda: len(agent.file_events()) >= len(head_ev + tail_ev + new_ev))
        time.sleep(1)
        stored = agent.file_events()
    assert not agent.dead_letters(), "nothing refused"
    assert what(stored) == what(head_ev + tail_ev + new_ev), "every line once"
    series = loki.series("ooo", '{job="agent-rotation", source="redis"}', START, end_ns())
    assert len(series) == len({e["level"] for e in stored}), "one stream per level: the tail went into it late"


def test_two_sources_sharing_a_stream_are_both_taken_out_of_order(loki, tmp_path):
    """Two logs of one host with the same labels write into the same Loki streams; the second
    source's lines are older than what the first already delivered. Loki takes both: nothing
    refused, every line once."""
    lines = (SAMPLES / "redis-7.0" / "replication-master.log").read_bytes().splitlines(keepends=True)
    half = len(lines) // 2
    older, newer = b"".join(lines[:half]), b"".join(lines[half:])
    older_ev, newer_ev = parse(older, tmp_path), parse(newer, tmp_path)
    assert len(behind(older_ev, newer_ev)) >= 5, "the second source is behind the first"
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(newer)
    b.touch()
    agent = Agent(tmp_path, loki, tenant="ooo", job="agent-shared", sources=[{"path": str(a)}, {"path": str(b)}])
    with agent.running():
        wait_for("the newer lines", lambda: len(agent.file_events()) >= len(newer_ev))
        b.write_bytes(older)
        wait_for("the older lines", lambda: len(agent.file_events()) >= len(older_ev) + len(newer_ev))
        time.sleep(1)
        stored = agent.file_events()
    assert not agent.dead_letters(), "nothing refused"
    assert what(stored) == what(older_ev + newer_ev), "every line once"
    assert {e["stream"].split("/", 1)[1] for e in stored} == {f"file:{a}", f"file:{b}"}, "<host>/<source>"
    series = loki.series("ooo", '{job="agent-shared", source="redis"}', START, end_ns())
    assert len(series) == len({e["level"] for e in stored}), "one stream per level, whichever the file"
