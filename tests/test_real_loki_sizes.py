"""Event sizes against the real Loki (tests/loki_server.py): where Loki's default entry limit is,
that ``redis-shipper run`` cuts an over-long line to the sink's ``max_entry_bytes`` instead of
having it dead-lettered, that garbage lines after a valid line are one event each (none too large),
and that a ``dead_lettered`` event the server refuses in turn neither loops nor loses what it
declared. Each test has its own tenant or ``job`` label; the ``small`` tenant has
``max_line_size`` 4000 bytes. ``verify --from loki`` checks every trail at the end."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import yaml
from loki_server import wait_for

from shipper.cli import main as cli
from shipper.sinks.limits import LOKI_MAX_ENTRY_BYTES
from shipper.sinks.loki import timestamp_ns

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.real_loki, pytest.mark.integration]
START = timestamp_ns("2026-11-25T00:00:00.000000Z")
SINCE = "2026-11-25T00:00:00Z"
#: a real line of redis-7.0/persistence-bgsave.log
DB_SAVED = b"12345:M 25 Nov 2026 18:57:04.076 * DB saved on disk"


def end_ns() -> int:
    return int((time.time() + 600) * 1e9)



class Agent:
    """One ``redis-shipper run`` with one Loki sink and one file source, in ``tmp``."""

    def __init__(self, tmp: Path, loki: Any, *, tenant: str, job: str, log: Path) -> None:
        self.tmp, self.loki, self.tenant, self.job, self.path = tmp, loki, tenant, job, log
        self.config = tmp / "agent.yaml"
        self.config.write_text(yaml.safe_dump({
            "state_dir": str(tmp / "state"), "timezone": "UTC", "labels": {"job": job},
            "sinks": [{"type": "loki", "url": loki.url, "tenant": tenant, "batch": {"max_wait": "50ms"},
                       "retry": {"initial": "50ms", "max": "1s"}}],
            "sources": [{"type": "file", "path": str(log), "poll_interval": "50ms", "idle_flush": "200ms"}],
            "metrics": {"listen": ""}, "audit": {"anchor_interval": 0}, "shutdown_timeout": 5}))
        self.dead = tmp / "state" / "deadletter" / "loki.jsonl"

    @contextmanager
    def running(self) -> Iterator[Agent]:
        with open(self.tmp / "agent.log", "ab") as err:
            proc = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(self.config)],
                                    cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        try:
            yield self
        finally:
            proc.terminate()
            try:
                assert proc.wait(30) == 0, (self.tmp / "agent.log").read_text()[-3000:]
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(10)

    def entries(self, query: str = "") -> list[tuple[int, str]]:
        """(timestamp ns, line) of this agent's entries in Loki (``query``: more of the selector)."""
        sel = f'{{job="{self.job}"{", " + query if query else ""}}}'
        return [(ts, line) for _, ts, line in self.loki.entries(self.tenant, sel, START, end_ns())]

    def file_events(self) -> list[dict[str, Any]]:
        return sorted((orjson.loads(line) for _, line in self.entries('source="redis"')), key=lambda e: e["seq"])

    def dead_letters(self) -> list[dict[str, Any]]:
        return [orjson.loads(x) for x in self.dead.read_bytes().splitlines()] if self.dead.exists() else []

    def verify(self, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
        capsys.readouterr()
        code = cli(["verify", "--config", str(self.config), "--from", "loki", "--since", SINCE,
                    "--no-agent-state", "--json"])
        return code, orjson.loads(capsys.readouterr().out)


def push(loki: Any, tenant: str, line: str) -> requests.Response:
    body = {"streams": [{"stream": {"job": "edge"}, "values": [[str(time.time_ns()), line]]}]}
    return requests.post(loki.url + "/loki/api/v1/push", json=body, headers={"X-Scope-OrgID": tenant}, timeout=30)


def test_loki_takes_an_entry_of_exactly_its_default_limit_and_refuses_one_byte_more(loki):
    """The default ``max_entry_bytes`` of the Loki sink is Loki's own default ``max_line_size``."""
    assert push(loki, "sizes-edge", "x" * LOKI_MAX_ENTRY_BYTES).status_code == 204
    r = push(loki, "sizes-edge", "x" * (LOKI_MAX_ENTRY_BYTES + 1))
    assert r.status_code == 400 and "Max entry size" in r.text, r.text


def test_a_600_kb_line_arrives_cut_to_the_sink_limit_and_3000_garbage_lines_as_3000_events(loki, tmp_path, capsys):
    """The two cases of issue 20 on the real Loki with its default limit: nothing dead-lettered,
    every line in Loki, the trail complete for ``verify --from loki``."""
    huge = b"12345:M 25 Nov 2026 18:57:05.000 # " + b"Module configuration: " + b"x" * 600_000
    garbage = [b"garbage %d \x7f not a Redis line %s" % (i, b"y" * 100) for i in range(3000)]
    log = tmp_path / "redis.log"
    log.write_bytes(b"\n".join([DB_SAVED, *garbage, huge, b"12345:M 25 Nov 2026 18:57:06.000 * Ready"]) + b"\n")
    agent = Agent(tmp_path, loki, tenant="sizes", job="sizes", log=log)
    with agent.running():
        events = wait_for("3,003 events in Loki", lambda: (lambda e: e if len(e) >= 3003 else None)(
            agent.file_events()))
        time.sleep(1)  # anything late or twice would show now
        events = agent.file_events()
    assert agent.dead_letters() == []
    assert len(events) == 3003 and [e["seq"] for e in events] == list(range(1, 3004))
    saved, rest, big, ready = events[0], events[1:3001], events[3001], events[3002]
    assert saved["event"] == "db_saved" and saved["lines"] == 1
    assert [e["message"] for e in rest] == [g.decode() for g in garbage]
    assert all(e["event"] == "unrecognized" and e["lines"] == 1 and e["fields"]["raw"] for e in rest)
    assert ready["message"] == "Ready"
    # the huge line: cut to what the sink takes, saying how much was cut
    (line,) = [line for _, line in agent.entries('source="redis"') if orjson.loads(line)["seq"] == big["seq"]]
    assert 200_000 < len(line.encode()) <= LOKI_MAX_ENTRY_BYTES
    assert big["message"].startswith("Module configuration: xxx")
    assert big["fields"]["truncated_bytes"] == len(huge) - len(huge.split(b"# ", 1)[0]) - 2 - len(big["message"])
    code, rep = agent.verify(capsys)
    assert code == 0, rep["problems"]


def test_dead_lettered_events_fit_the_small_tenant_none_loops_and_verify_explains_every_refusal(
        loki, tmp_path, capsys):
    """300 lines of 5 KB against ``max_line_size`` 4000 (the sink's default ``max_entry_bytes``
    is 256 KB, so they are sent whole and refused). Their ``dead_lettered`` events name at most
    50 events each, so they fit; one refused with a batch (a 400 refuses the whole push) is
    declared once more; nothing is dead-lettered twice, nothing goes on after that, and
    ``verify`` explains every missing event from Loki alone."""
    lines = [b"12345:M 25 Nov 2026 18:57:%02d.%03d * DB saved on disk %s" % (i // 1000, i % 1000, b"x" * 5000)
             for i in range(300)]
    log = tmp_path / "redis.log"
    log.write_bytes(b"\n".join([*lines, b"12345:M 25 Nov 2026 18:58:00.000 * DB saved on disk"]) + b"\n")
    agent = Agent(tmp_path, loki, tenant="small", job="sizes-dead", log=log)

    def notes() -> list[dict[str, Any]]:
        return [e for e in (orjson.loads(line) for _, line in agent.entries('source="agent"'))
                if e["event"] == "dead_lettered"]

    with agent.running():
        wait_for("the last line in Loki", lambda: agent.file_events())
        wait_for("every dead letter declared in Loki", lambda: len(agent.dead_letters()) >= 300 and
                 {d["event"]["id"] for d in agent.dead_letters()} <= {i for n in notes() for i in n["fields"]["ids"]})
        time.sleep(3)  # a loop would show now: more dead letters, more declarations
        dead, declared = agent.dead_letters(), notes()
    big = [d["event"] for d in dead if d["event"]["source"] == "redis" and len(d["event"]["message"]) > 4000]
    assert len(big) == 300
    assert all("Max entry size" in d["reason"] or "HTTP 400" in d["reason"] for d in dead)
    assert len({d["spool_seq"] for d in dead}) == len(dead), "nothing refused twice"
    assert all(len(orjson.dumps(n)) <= 4000 and n["fields"]["events"] <= 50 for n in declared)
    assert sum(n["fields"]["events"] for n in declared) == len(dead), "each refusal declared once"
    refused_notes = [d for d in dead if d["event"]["event"] == "dead_lettered"]
    assert all("refused_notes" not in d["event"]["fields"] for d in refused_notes)
    code, rep = agent.verify(capsys)
    assert code == 0, rep["problems"]
