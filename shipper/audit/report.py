"""The verifier's findings, as plain data: what ``redis-shipper verify`` prints and emits as JSON.

Kept apart from the checker so that readers of a report (the ``verify`` command, tests, a
third party comparing its own checker) depend on its shape only, not on how it was computed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class GapRange:
    first: int
    last: int
    #: why these seqs are missing from this sink; None = nobody knows (a failure)
    explanation: str | None = None

    @property
    def count(self) -> int:
        return self.last - self.first + 1


@dataclass
class Duplicate:
    seq: int
    #: lines holding this seq
    copies: int
    #: all copies are the same bytes (an at-least-once replay): harmless
    identical: bool
    where: list[str]
    #: for a conflict: which distinct copy (in ``where`` order of first sight) links into the chain
    genuine: int | None = None


@dataclass
class ChainBreak:
    #: the event whose ``prev_hash`` does not match the hash of the event at ``seq - 1``
    seq: int
    recorded_prev_hash: str
    predecessor_hash: str
    diagnosis: str
    where: str


@dataclass
class Declared:
    seq: int
    event: str
    timestamp: str
    message: str
    fields: dict[str, Any]


@dataclass
class StreamReport:
    stream: str
    #: distinct seqs of the checked range present in the trail
    events: int = 0
    #: lines read for those seqs (duplicates included)
    lines: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    gaps: list[GapRange] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    breaks: list[ChainBreak] = field(default_factory=list)
    #: seqs whose bytes changed after sealing
    altered: list[int] = field(default_factory=list)
    #: (seq it carries now, seq it was sealed with)
    reordered: list[tuple[int, int]] = field(default_factory=list)
    #: seqs whose bytes are valid JSON but not the canonical encoding (re-encoded or edited)
    not_canonical: list[int] = field(default_factory=list)
    declared: list[Declared] = field(default_factory=list)
    anchors_checked: int = 0
    anchor_problems: list[str] = field(default_factory=list)
    #: links that could not be checked because the predecessor is missing
    unverified_links: int = 0
    notes: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        """Every unexplained problem, one sentence each (empty = this stream verifies)."""
        out: list[str] = []
        for g in self.gaps:
            if g.explanation is None:
                out.append(f"missing seq {_range(g.first, g.last)} ({g.count} events), unexplained")
        for d in self.duplicates:
            if not d.identical:
                out.append(f"seq {d.seq} appears with different contents ({d.copies} copies): conflict")
        for b in self.breaks:
            out.append(f"chain break at seq {b.seq}: {b.diagnosis}")
        for s in self.not_canonical:
            out.append(f"seq {s} is not in the canonical encoding (re-encoded or edited)")
        out.extend(self.anchor_problems)
        return out

    @property
    def ok(self) -> bool:
        return not self.problems()


@dataclass
class InvalidLine:
    where: str
    reason: str
    excerpt: str
    #: set when the line is harmless (e.g. a torn write whose event was replayed whole)
    explanation: str | None = None


@dataclass
class Report:
    streams: list[StreamReport]
    invalid: list[InvalidLine]
    lines_read: int
    sink: str | None
    window: tuple[int | None, int | None]
    #: {stream: {rule: n}} dropped by drop: rules, as the chain_anchor events recorded them
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.streams) and all(i.explanation for i in self.invalid) and bool(
            self.streams
        )

    def problems(self) -> list[str]:
        out = [f"{s.stream}: {p}" for s in self.streams for p in s.problems()]
        out += [f"{i.where}: {i.reason}" for i in self.invalid if not i.explanation]
        if not self.streams:
            out.append("no sealed event found in the trail: nothing can be proven")
        return out

    def stream(self, name: str) -> StreamReport:
        for s in self.streams:
            if s.stream == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "sink": self.sink,
            "window": {"since_ns": self.window[0], "until_ns": self.window[1]},
            "lines_read": self.lines_read,
            "problems": self.problems(),
            "streams": [{**asdict(s), "ok": s.ok, "problems": s.problems()} for s in self.streams],
            "invalid": [asdict(i) for i in self.invalid],
            "dropped": self.dropped,
        }


def _range(a: int, b: int) -> str:
    return str(a) if a == b else f"{a}..{b}"
