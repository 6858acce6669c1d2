"""Where events a sink refused for good go: one JSON Lines file per sink, fsynced; and what the
``dead_lettered`` agent event that declares them says.

That agent event goes to the same sink, which can refuse it too (a Loki tenant whose
``max_line_size`` is small, or a 400 that refuses a whole push, the event included). So one
``dead_lettered`` event declares at most :data:`IDS_PER_EVENT` events, and the refusal of a
``dead_lettered`` event neither loses the declaration it carried (``verify`` explains the missing
events by it) nor starts a loop of events about events: the event about refused ``dead_lettered``
events (:func:`note_fields`, ``refused_notes``) carries their ``seqs``, and if that one is refused
in turn, no further event is made (the refusal is logged and counted, and the events are in the
dead-letter file).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from ..api import SpooledEvent
from ..audit.verify import seq_ranges_field

#: items declared by one ``dead_lettered`` event: its ids then take about 2 KB, so the event fits
#: a Loki tenant with a ``max_line_size`` of a few KB
IDS_PER_EVENT = 50


class DeadLetters:
    """Events a sink refused for good, appended as JSON Lines to ``state_dir/deadletter/<sink>.jsonl``."""

    def __init__(self, state_dir: str) -> None:
        self.dir = Path(state_dir) / "deadletter"

    def write(self, sink: str, items: list[tuple[SpooledEvent, str]]) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{sink}.jsonl"
        with open(path, "ab") as f:
            for sev, reason in items:
                f.write(orjson.dumps({"sink": sink, "reason": reason, "spool_seq": sev.seq,
                                      "event": orjson.Fragment(sev.raw)}))
                f.write(b"\n")
            f.flush()
            os.fsync(f.fileno())
        return path


def is_note(ev: dict[str, Any]) -> bool:
    """Whether ``ev`` is a ``dead_lettered`` agent event."""
    return ev.get("source") == "agent" and ev.get("event") == "dead_lettered"


def note_fields(sink: str, items: list[tuple[SpooledEvent, str]], path: Path) -> list[dict[str, Any]]:
    """The fields of the ``dead_lettered`` events declaring ``items`` (refused by ``sink``, written
    to ``path``): one per :data:`IDS_PER_EVENT` items, each naming its items by id and seq range,
    so that no declaration is itself too large for a sink with a small entry limit. Nothing when
    every item is itself an event about refused ``dead_lettered`` events: declaring those again
    could go on for ever (see the module docstring)."""
    notes = [s.event for s, _ in items if is_note(s.event)]
    if notes and len(notes) == len(items) and all(_fields(n).get("refused_notes") for n in notes):
        return []
    out: list[dict[str, Any]] = []
    for k in range(0, len(items), IDS_PER_EVENT):
        chunk = items[k : k + IDS_PER_EVENT]
        pairs = [(s.event.get("stream"), s.event.get("seq")) for s, _ in chunk]
        fields: dict[str, Any] = {
            "sink": sink,
            "events": len(chunk),
            "reason": chunk[0][1][:500],
            "ids": [s.event.get("id") for s, _ in chunk],
            "first_spool_row": min(s.seq for s, _ in chunk),
            "last_spool_row": max(s.seq for s, _ in chunk),
            "seqs": seq_ranges_field(pairs),
            "deadletter_file": str(path),
        }
        if notes:
            fields["refused_notes"] = len(notes)
            fields["reason"] = fields["reason"][:200]
            if k == 0:  # what the refused declarations declared, in the compact form
                fields["seqs"] = merge_seqs([fields["seqs"], *(_fields(n).get("seqs") for n in notes)])
        out.append(fields)
    return out


def merge_seqs(values: Iterable[Any]) -> dict[str, list[list[int]]]:
    """One ``seqs`` field (``{stream: [[first, last], ...]}``) covering every one of ``values``;
    anything not of that form is ignored."""
    by: dict[str, list[tuple[int, int]]] = {}
    for v in values:
        if not isinstance(v, dict):
            continue
        for stream, ranges in v.items():
            if not isinstance(ranges, list):
                continue
            for r in ranges:
                if isinstance(r, list | tuple) and len(r) == 2 and all(type(x) is int for x in r):
                    by.setdefault(str(stream), []).append((r[0], r[1]))
    out: dict[str, list[list[int]]] = {}
    for stream, rs in sorted(by.items()):
        merged: list[list[int]] = []
        for lo, hi in sorted(rs):
            if merged and lo <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        out[stream] = merged
    return out


def _fields(ev: dict[str, Any]) -> dict[str, Any]:
    f = ev.get("fields")
    return f if isinstance(f, dict) else {}
