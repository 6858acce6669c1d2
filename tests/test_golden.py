"""Golden files: the events of every file in sample-logs/, pinned.

Each tests/golden/<dir>__<file>.jsonl holds one compact line per event: offset, lines,
timestamp, source, role, level, pid, category, event and the fields (the big text fields
``report`` and ``stack_trace`` are summarised by their line count, so a diff stays readable).
The files were reviewed by hand against the logs; a change in the parser that changes any
event shows up here as a diff to review, not as a silent change of what the agent ships.

Regenerate after a deliberate change (then REVIEW the diff)::

    python tests/test_golden.py --regenerate
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from parsers.events import dumps, loads  # noqa: E402
from parsers.logfile import parse_lines  # noqa: E402

from conftest import SAMPLE_LOGS  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "golden"
#: a fixed reference time: the sample logs carry years, but the golden output must not depend on
#: when the files were checked out (their mtime) in case one day they do not
REFERENCE = datetime(2026, 11, 30, tzinfo=UTC)
SUMMARISED = ("report", "stack_trace")
#: the CLIENT LIST string is long and its parts are already in client_id, client_addr, ...
DROPPED = ("client",)


def golden_path(log: Path) -> Path:
    rel = log.relative_to(SAMPLE_LOGS)
    return GOLDEN / (str(rel.with_suffix("")).replace("/", "__") + ".jsonl")


def compact(ev: dict[str, Any]) -> dict[str, Any]:
    fields = {k: v for k, v in ev["fields"].items() if k not in DROPPED}
    for k in SUMMARISED:
        if k in fields:
            fields[k] = f"<{fields[k].count(chr(10)) + 1} lines>"
    return {
        "offset": ev["offset"],
        "lines": ev["lines"],
        "timestamp": ev["timestamp"],
        "source": ev["source"],
        "role": ev["role"],
        "level": ev["level"],
        "pid": ev["pid"],
        "category": ev["category"],
        "event": ev["event"],
        "fields": fields,
    }


def render(log: Path) -> bytes:
    evs = parse_lines(log.read_bytes(), tz=UTC, reference_time=REFERENCE)
    return b"".join(dumps(compact(e)) + b"\n" for e in evs)


LOGS = sorted(SAMPLE_LOGS.glob("*/*.log"))


def test_sample_logs_are_there():
    assert len(LOGS) >= 20, "sample-logs/ is part of the repository"


@pytest.mark.parametrize("log", LOGS, ids=[str(p.relative_to(SAMPLE_LOGS)) for p in LOGS])
def test_sample_log_parses_to_its_reviewed_golden_events(log):
    gp = golden_path(log)
    assert gp.exists(), (
        f"no golden file for {log}: run `python tests/test_golden.py --regenerate` and review it"
    )
    want = [loads(ln) for ln in gp.read_bytes().splitlines()]
    got = [loads(ln) for ln in render(log).splitlines()]
    for i, (w, g) in enumerate(zip(want, got, strict=False)):
        assert g == w, f"event {i} of {log.name} differs"
    assert len(got) == len(want)


@pytest.mark.parametrize("log", LOGS, ids=[str(p.relative_to(SAMPLE_LOGS)) for p in LOGS])
def test_no_line_of_a_real_sample_log_is_unrecognized(log):
    """Every message in sample-logs/ (which covers the catalogue issue 2 names) is classified."""
    evs = parse_lines(log.read_bytes(), tz=UTC, reference_time=REFERENCE)
    bad = [e["message"][:120] for e in evs if e["event"] == "unrecognized"]
    assert not bad


def test_every_golden_file_belongs_to_a_sample_log():
    stale = {p.name for p in GOLDEN.glob("*.jsonl")} - {golden_path(p).name for p in LOGS}
    assert not stale, f"golden files without a sample log: {sorted(stale)}"


if __name__ == "__main__":
    if "--regenerate" not in sys.argv:
        sys.exit("usage: python tests/test_golden.py --regenerate")
    GOLDEN.mkdir(exist_ok=True)
    for log in LOGS:
        golden_path(log).write_bytes(render(log))
        print("wrote", golden_path(log).relative_to(GOLDEN.parent.parent))
