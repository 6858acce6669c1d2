"""What the agent's own events in a trail say about it: which missing seqs are explained, and
which chain heads are anchored.

``dead_lettered`` and ``spool_overflow`` events name the seqs a sink will never hold and why;
``chain_anchor`` events record (seq, hash) heads. Reading those fields is one job, apart from
checking the chain, so the wire form (``fields.seqs``, ``fields.heads``) is defined in one place
for the agent that writes it (:func:`seq_ranges_field`) and for the verifier that reads it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from parsers.events import event_id

from .report import Declared
from .sealed_lines import Known

#: agent events that say "the trail is incomplete here, and why"
DECLARED_GAP_EVENTS = ("data_gap", "slowlog_entries_lost", "dead_lettered", "spool_overflow")

#: per stream: the declared events read, each with "stamped inside the window asked about"
DeclaredByStream = dict[str, list[tuple[Declared, bool]]]


class Explanations:
    """Why seqs are missing from the sink, as the agent declared it (and its spool shows it)."""

    def __init__(self) -> None:
        #: (stream, first seq, last seq, explanation)
        self.ranges: list[tuple[str, int, int, str]] = []
        #: event id -> explanation (dead_lettered ``ids``)
        self.ids: dict[str, str] = {}
        self.unattributed = 0
        self.unattributed_from: list[str] = []

    def explain(self, stream: str, seq: int, known: Known | None, _sr: str) -> str | None:
        if known is not None:
            if known.origin == "pending":
                return "pending: still in the agent's spool, not yet delivered to this sink"
            return f"dead-lettered: refused by this sink for good, kept in {known.copy.where[0].rsplit(':', 1)[0]}"
        for s, lo, hi, label in self.ranges:
            if s == stream and lo <= seq <= hi:
                return label
        if self.ids:
            # events without a source-given id carry id = event_id(stream, "seq:<n>")
            by_id = self.ids.get(event_id(stream, f"seq:{seq}"))
            if by_id is not None:
                return by_id
        return None


def explanations_from(declared: DeclaredByStream, sink: str | None) -> Explanations:
    """What the agent told us about missing seqs: dead letters (of ``sink`` only), spool overflows."""
    ex = Explanations()
    for stream, items in declared.items():
        for d, _ in items:
            f = d.fields
            if d.event == "dead_lettered":
                if sink is not None and f.get("sink") != sink:
                    continue
                label = f"dead-lettered by sink {f.get('sink')} ({stream} seq {d.seq})"
                for s, lo, hi in _seq_ranges(f.get("seqs")):
                    ex.ranges.append((s, lo, hi, label))
                for i in f.get("ids") or []:
                    if isinstance(i, str):
                        ex.ids[i] = label
            elif d.event == "spool_overflow":
                label = f"dropped by a full spool (spool_overflow at {stream} seq {d.seq})"
                ranges = list(_seq_ranges(f.get("seqs")))
                for s, lo, hi in ranges:
                    ex.ranges.append((s, lo, hi, label))
                if not ranges:
                    n = f.get("dropped_events")
                    if isinstance(n, int) and n > 0:
                        ex.unattributed += n
                        ex.unattributed_from.append(f"{stream} seq {d.seq}")
    return ex


def anchors_from(declared: DeclaredByStream) -> list[tuple[str, int, str, str]]:
    """(stream, seq, hash, source) of every head a ``chain_anchor`` inside the window recorded."""
    out: list[tuple[str, int, str, str]] = []
    for stream, items in declared.items():
        for d, in_window in items:
            if d.event != "chain_anchor" or not in_window:
                continue
            heads = d.fields.get("heads")
            if not isinstance(heads, dict):
                continue
            for s, head in heads.items():
                seq, h = _head_pair(head)
                if seq is not None and h is not None:
                    out.append((str(s), seq, h, f"chain_anchor at {stream} seq {d.seq}"))
    return out


def seq_ranges_field(pairs: Iterable[tuple[str, int]]) -> dict[str, list[list[int]]]:
    """``{stream: [[first, last], ...]}`` from (stream, seq) pairs: the compact form a
    ``dead_lettered`` or ``spool_overflow`` event can carry in ``fields.seqs`` so that
    ``verify`` explains exactly those seqs, from any host."""
    by: dict[str, list[int]] = defaultdict(list)
    for stream, seq in pairs:
        if isinstance(stream, str) and isinstance(seq, int):
            by[stream].append(seq)
    out: dict[str, list[list[int]]] = {}
    for stream, seqs in sorted(by.items()):
        ranges: list[list[int]] = []
        for q in sorted(set(seqs)):
            if ranges and ranges[-1][1] == q - 1:
                ranges[-1][1] = q
            else:
                ranges.append([q, q])
        out[stream] = ranges
    return out


def _seq_ranges(value: Any) -> Iterable[tuple[str, int, int]]:
    """``{"stream": [[first, last], ...]}`` (the proposed ``seqs`` field) -> (stream, first, last)."""
    if not isinstance(value, dict):
        return
    for s, ranges in value.items():
        if not isinstance(ranges, list):
            continue
        for r in ranges:
            if isinstance(r, list | tuple) and len(r) == 2 and all(isinstance(x, int) for x in r):
                yield str(s), int(r[0]), int(r[1])
            elif isinstance(r, int):
                yield str(s), r, r


def _head_pair(head: Any) -> tuple[int | None, str | None]:
    if isinstance(head, dict):
        seq, h = head.get("seq"), head.get("hash")
    elif isinstance(head, list | tuple) and len(head) == 2:
        seq, h = head
    else:
        return None, None
    if isinstance(seq, int) and not isinstance(seq, bool) and isinstance(h, str):
        return seq, h
    return None, None
