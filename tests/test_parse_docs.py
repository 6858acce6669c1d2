"""docs/events.md documents every event name the log parsers can produce."""

from __future__ import annotations

from pathlib import Path

import pytest

from parsers.catalogue import known_events
from parsers.sentinel import EVENTS

DOC = (Path(__file__).resolve().parent.parent / "docs" / "events.md").read_text()
BLOCK_EVENTS = [
    "logo",
    "crash_report",
    "watchdog_timer_expired",
    "sigalrm_received",
    "unrecognized",
    "blank_lines",
    "failover_completed",
    "failover_aborted",
]
NAMES = sorted({e for _, e in known_events()} | {e for _, e in EVENTS.values()} | set(BLOCK_EVENTS))


@pytest.mark.parametrize("event", NAMES)
def test_event_name_is_documented(event):
    assert f"`{event}`" in DOC


@pytest.mark.parametrize("etype", sorted(EVENTS))
def test_sentinel_event_type_is_documented(etype):
    assert f"`{etype}`" in DOC


def test_the_event_schema_is_shipped_in_the_package_and_is_valid():
    import json
    from importlib.resources import files

    import jsonschema

    schema = json.loads((files("parsers") / "schema" / "event.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["additionalProperties"] is True
    assert set(schema["required"]) == {
        "timestamp",
        "source",
        "category",
        "event",
        "level",
        "pid",
        "role",
        "message",
        "fields",
    }
