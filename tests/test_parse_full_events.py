"""Every event of every sample log, field for field, pinned by a digest.

The golden files (tests/test_golden.py) are the reviewed, readable record, but they leave out what
would make a diff unreadable (the CLIENT LIST text, the body of a crash report, the message) and do
not see key order or the parser's pending offset. This test pins all of it: for every file in
sample-logs/, in four settings (UTC; Paris with a reference time; New York with a forced year and
``kind="redis"``; ``kind="sentinel"`` with lines of at most 60 bytes), the canonical JSON of every
event ``LogParser.feed`` and ``flush`` return, the ``pending_offset`` after every line, and the events
of ``parse_lines`` on the whole file, hashed with SHA-256. A speed-up of the parser must leave every
digest as it is; a deliberate change of the events changes them, and is reviewed in the golden
files' diff first. Regenerate after such a change::

    python tests/test_parse_full_events.py --regenerate
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from parsers.events import dumps  # noqa: E402
from parsers.logfile import LogParser, parse_lines  # noqa: E402

from conftest import SAMPLE_LOGS  # noqa: E402

DIGESTS = Path(__file__).resolve().parent / "golden" / "full-events.sha256.json"
SETTINGS: list[dict[str, Any]] = [
    {"kind": "auto", "tz": UTC},
    {"kind": "auto", "tz": ZoneInfo("Europe/Paris"), "reference_time": datetime(2026, 11, 30, tzinfo=UTC)},
    {"kind": "redis", "tz": ZoneInfo("America/New_York"), "year": 2019},
    {"kind": "sentinel", "tz": UTC, "max_line_bytes": 60},
]
LOGS = sorted(SAMPLE_LOGS.glob("*/*.log"))


def digest(log: Path) -> str:
    """SHA-256 of everything the parser makes of ``log`` in every setting."""
    data = log.read_bytes()
    h = hashlib.sha256()
    for setting in SETTINGS:
        p = LogParser(**setting)
        pos = 0
        while pos < len(data):
            nl = data.find(b"\n", pos)
            if nl < 0:
                evs = p.feed(data[pos:], pos, partial=True)
                nl = len(data)
            else:
                evs = p.feed(data[pos:nl], pos)
            for ev in evs:
                h.update(dumps(ev) + b"\n")
            h.update(b"P %d\n" % (-1 if p.pending_offset is None else p.pending_offset))
            pos = nl + 1
        for ev in p.flush():
            h.update(dumps(ev) + b"\n")
        for ev in parse_lines(data, **setting):
            h.update(dumps(ev) + b"\n")
    return h.hexdigest()


def _name(log: Path) -> str:
    return str(log.relative_to(SAMPLE_LOGS))


def test_every_sample_log_has_a_pinned_digest() -> None:
    pinned = json.loads(DIGESTS.read_text())
    assert len(LOGS) >= 20
    assert sorted(pinned) == sorted(_name(p) for p in LOGS), "run python tests/test_parse_full_events.py --regenerate"


@pytest.mark.parametrize("log", LOGS, ids=[_name(p) for p in LOGS])
def test_the_parser_makes_the_same_events_field_for_field_of_every_sample_log(log: Path) -> None:
    pinned = json.loads(DIGESTS.read_text())
    assert digest(log) == pinned.get(_name(log)), f"the events of {_name(log)} changed"


if __name__ == "__main__":
    if sys.argv[1:] == ["--regenerate"]:
        DIGESTS.write_text(json.dumps({_name(p): digest(p) for p in LOGS}, indent=1, sort_keys=True) + "\n")
        print(f"wrote {DIGESTS}")
    else:
        sys.exit("usage: python tests/test_parse_full_events.py --regenerate")
