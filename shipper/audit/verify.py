"""Check an audit trail read back from a sink: complete (no unexplained gap) and unaltered.

Input: the raw event lines a sink holds (local JSON Lines, Loki lines, Elasticsearch
``event.original``), in any order, with duplicates. Every line is the canonical JSON the spool
sealed (docs/audit.md): ``stream`` names the chain, ``seq`` numbers it from 1 with no holes,
``prev_hash`` is the SHA-256 of the predecessor's canonical bytes (64 zeros for seq 1).

Output: a :class:`Report` per stream with

* **gaps** -- missing seqs, as ranges, each *explained* (still pending in the agent's spool,
  dead-lettered for this very sink, dropped by a full spool) or *unexplained*;
* **duplicates** -- the same seq more than once: identical bytes are the harmless trace of an
  at-least-once replay; different bytes are a *conflict* (one of them is not what was sealed);
* **chain breaks** -- an event whose ``prev_hash`` is not the hash of the predecessor that is
  present, diagnosed as *altered* (an event's bytes changed after sealing: it no longer hashes
  to what its successor recorded) or *reordered* (the break disappears if an event is put back
  at the seq it was sealed with);
* **declared gaps** -- ``data_gap``, ``slowlog_entries_lost``, ``dead_lettered`` and
  ``spool_overflow`` events found in the trail: the agent's own record of where the *source
  data* or a sink is incomplete, and why;
* **anchors** -- known (seq, hash) pairs from the agent's chain heads, a heads file kept
  off-host, or ``chain_anchor`` events: a missing tail or a rewritten event shows against them.

Why pure (no files, no sockets, no clock): the same checker runs on whatever a reader fetched,
and a third party can re-implement it from docs/audit.md and compare reports.

Memory: every line read is kept (bytes plus two hashes) until :meth:`Verifier.report`; bound a
large trail with a time window or a stream filter.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from parsers.events import dumps, event_id, parse_timestamp

#: ``prev_hash`` of seq 1 (same value as ``shipper.pipeline.spool.GENESIS``)
GENESIS = "0" * 64
#: agent events that say "the trail is incomplete here, and why"
DECLARED_GAP_EVENTS = ("data_gap", "slowlog_entries_lost", "dead_lettered", "spool_overflow")
#: how far (in seqs) a moved event is searched for when a break is diagnosed
REORDER_SEARCH = 8
_HEX64 = re.compile(r"[0-9a-f]{64}")


def chain_hash(raw: bytes) -> str:
    """SHA-256 (hex) of an event's canonical bytes: what its successor records as ``prev_hash``."""
    return hashlib.sha256(raw).hexdigest()


def timestamp_ns(ts: Any) -> int | None:
    """Nanoseconds since the epoch of an event ``timestamp``, or None when it is not one."""
    if not isinstance(ts, str):
        return None
    try:
        dt = parse_timestamp(ts)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


@dataclass
class _Copy:
    """One distinct byte string seen for a (stream, seq)."""

    raw: bytes
    hash: str
    prev_hash: str
    ts_ns: int | None
    canonical: bool
    where: list[str] = field(default_factory=list)


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


def _short(h: str) -> str:
    return h[:12]


@dataclass
class _Known:
    """An event known to exist outside the trail (still in the spool, or dead-lettered)."""

    copy: _Copy
    origin: str  # "pending" | "deadletter"


class Verifier:
    """Feed it lines with :meth:`add`, context with :meth:`add_known` / :meth:`add_anchor`,
    then call :meth:`report`.

    ``sink`` is the name of the sink the trail was read from (``local``, ``loki``...): only
    that sink's dead letters explain missing seqs. ``since_ns``/``until_ns`` is the window the
    user asked about: a stream is checked between its first and last seq *stamped inside the
    window*; events read outside it (readers fetch a margin) only fill holes and anchor links,
    because timestamps come from the data and are not monotonic in seq.
    """

    def __init__(
        self,
        *,
        sink: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        streams: Iterable[str] | None = None,
        require_genesis: bool = False,
    ) -> None:
        self.sink = sink
        self.since_ns = since_ns
        self.until_ns = until_ns
        self.only = set(streams) if streams else None
        self.require_genesis = require_genesis
        self._windowed = since_ns is not None or until_ns is not None
        self._trail: dict[str, dict[int, list[_Copy]]] = defaultdict(dict)
        self._known: dict[str, dict[int, _Known]] = defaultdict(dict)
        self._anchors: list[tuple[str, int, str, str]] = []
        self._all_anchors: list[tuple[str, int, str, str]] = []
        self._declared: dict[str, list[tuple[Declared, bool]]] = defaultdict(list)
        self._bad: list[tuple[InvalidLine, bytes]] = []
        self._lines = 0

    # ---- input -----------------------------------------------------------------------------
    def add(self, raw: bytes, where: str = "") -> None:
        """One line of the trail (without its newline)."""
        raw = raw.rstrip(b"\r\n")
        if not raw.strip():
            return
        self._lines += 1
        ev, reason = _parse(raw)
        if ev is None:
            self._add_unparsable(raw, where, reason)
            return
        self._store(ev, raw, where)

    def add_lines(self, items: Iterable[tuple[bytes, str]]) -> None:
        for raw, where in items:
            self.add(raw, where)

    def add_invalid(self, where: str, reason: str) -> None:
        """Something a reader found that holds no event (e.g. a document without the raw line)."""
        self._lines += 1
        self._bad.append((InvalidLine(where, reason, ""), b""))

    def add_known(self, raw: bytes, origin: str, where: str = "") -> None:
        """An event that exists but is not (yet) in this sink: ``pending`` (in the agent's
        spool, not acknowledged by the sink) or ``deadletter`` (refused by the sink for good,
        kept in the dead-letter file). It explains its seq's absence and lets the chain be
        checked across it."""
        ev, _ = _parse(raw)
        if ev is None:
            return
        c = _Copy(raw, chain_hash(raw), ev["prev_hash"], timestamp_ns(ev.get("timestamp")),
                  _is_canonical(ev, raw), [where])
        self._known[ev["stream"]].setdefault(ev["seq"], _Known(c, origin))

    def add_anchor(self, stream: str, seq: int, hash_hex: str, source: str) -> None:
        """A (seq, hash) the stream must contain: from the agent's chain heads, a heads file
        kept elsewhere, or a ``chain_anchor`` event."""
        self._anchors.append((stream, int(seq), str(hash_hex), source))

    def _add_unparsable(self, raw: bytes, where: str, reason: str) -> None:
        # a crash in the middle of a write can leave a fragment that the next write continues
        # on the same line: split "<fragment>{...sealed event...}" and keep the event
        start = raw.find(b'{"', 1)
        while start > 0:
            ev, _ = _parse(raw[start:])
            if ev is not None:
                self._store(ev, raw[start:], where)
                fragment = raw[:start]
                self._bad.append((InvalidLine(where, "torn line (a write cut short)", _excerpt(fragment)), fragment))
                return
            start = raw.find(b'{"', start + 1)
        # a lone fragment (the last line of a file cut by a crash) may be the start of an event
        fragment = raw if raw.startswith(b'{"') else b""
        self._bad.append((InvalidLine(where, reason, _excerpt(raw)), fragment))

    def _store(self, ev: dict[str, Any], raw: bytes, where: str) -> None:
        stream, seq = ev["stream"], ev["seq"]
        copies = self._trail[stream].setdefault(seq, [])
        for c in copies:
            if c.raw == raw:
                c.where.append(where)
                return
        # timestamps matter only for a window (parsing them is a third of the cost per line)
        ts = timestamp_ns(ev.get("timestamp")) if self._windowed else None
        copies.append(_Copy(raw, chain_hash(raw), ev["prev_hash"], ts, _is_canonical(ev, raw), [where]))
        name = ev.get("event")
        if name in DECLARED_GAP_EVENTS or name == "chain_anchor":
            raw_fields = ev.get("fields")
            fields: dict[str, Any] = raw_fields if isinstance(raw_fields, dict) else {}
            d = Declared(seq, str(name), str(ev.get("timestamp", "")), str(ev.get("message", "")), fields)
            self._declared[stream].append((d, self._in_window(ts)))

    def _in_window(self, ts: int | None) -> bool:
        if ts is None:
            return True
        if self.since_ns is not None and ts < self.since_ns:
            return False
        if self.until_ns is not None and ts >= self.until_ns:
            return False
        return True

    # ---- analysis --------------------------------------------------------------------------
    def report(self) -> Report:
        self._all_anchors = self._anchors + self._anchors_from_trail()
        explain = self._explanations()
        names = set(self._trail) | {a[0] for a in self._all_anchors}
        if self.only is not None:
            names &= self.only
        streams = []
        for name in sorted(names):
            sr = self._stream_report(name, explain)
            if sr is not None:
                streams.append(sr)
        invalid = self._invalid_lines()
        report = Report(streams, invalid, self._lines, self.sink, (self.since_ns, self.until_ns))
        for declared in self._declared.values():  # drop: rules' counts recorded by the anchors
            for d, in_window in declared:
                if d.event == "chain_anchor" and in_window and isinstance(d.fields.get("dropped"), dict):
                    for stream, rules in d.fields["dropped"].items():
                        for rule, n in (rules if isinstance(rules, dict) else {}).items():
                            per = report.dropped.setdefault(str(stream), {})
                            per[str(rule)] = per.get(str(rule), 0) + int(n)
        return report

    def _anchors_from_trail(self) -> list[tuple[str, int, str, str]]:
        out: list[tuple[str, int, str, str]] = []
        for stream, items in self._declared.items():
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

    def _explanations(self) -> _Explanations:
        """What the agent told us about missing seqs: dead letters, spool overflows."""
        ex = _Explanations()
        for stream, items in self._declared.items():
            for d, _ in items:
                f = d.fields
                if d.event == "dead_lettered":
                    if self.sink is not None and f.get("sink") != self.sink:
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

    def _stream_report(self, name: str, ex: _Explanations) -> StreamReport | None:
        trail = self._trail.get(name, {})
        known = self._known.get(name, {})
        anchors = [a for a in self._all_anchors if a[0] == name]
        in_window = [s for s, cs in trail.items() if any(self._in_window(c.ts_ns) for c in cs)]
        if not in_window and not anchors:
            return None
        sr = StreamReport(name)
        lo = min(in_window) if in_window else None
        hi = max(in_window) if in_window else None
        # anchors beyond the last event read: the tail is missing (or not delivered yet).
        # With --until the window ends before "now", and later anchors say nothing about it.
        for _, seq, _, source in anchors:
            if self.until_ns is not None and (hi is None or seq > hi):
                sr.notes.append(f"anchor seq {seq} ({source}) is beyond the window: not checked")
                continue
            if hi is None or seq > hi:
                hi = seq
            if lo is None:
                lo = 1 if self.since_ns is None else seq
        if lo is None or hi is None:
            return None
        if lo > 1 and self.since_ns is None:
            if self.require_genesis:
                lo = 1
            else:
                sr.notes.append(f"the trail begins at seq {lo}: seqs 1..{lo - 1} are not in this sink "
                                "(retention, or the sink was added later)")
        present = sorted(s for s in trail if lo <= s <= hi)
        sr.events = len(present)
        sr.lines = sum(len(c.where) for s in present for c in trail[s])
        sr.first_seq = present[0] if present else None
        sr.last_seq = present[-1] if present else None
        self._gaps(sr, name, lo, hi, trail, known, ex)
        self._duplicates(sr, present, trail)
        self._chain(sr, name, lo, hi, trail, known)
        sr.not_canonical = [s for s in present if not all(c.canonical for c in trail[s])]
        self._check_anchors(sr, anchors, trail, known, lo, hi)
        sr.declared = sorted((d for d, w in self._declared.get(name, []) if w and d.event != "chain_anchor"),
                             key=lambda d: d.seq)
        return sr

    def _gaps(self, sr: StreamReport, name: str, lo: int, hi: int, trail: dict[int, list[_Copy]],
              known: dict[int, _Known], ex: _Explanations) -> None:
        """Missing seqs in [lo, hi], as ranges of equal explanation."""
        missing: list[tuple[int, str | None]] = []
        prev = lo - 1
        for s in [*sorted(x for x in trail if lo <= x <= hi), hi + 1]:
            for m in range(prev + 1, s):
                missing.append((m, ex.explain(name, m, known.get(m), sr.stream)))
            prev = s
        # a spool_overflow that did not record which seqs it dropped explains at most as many
        # missing events as it dropped (a count is all it gives)
        for i, (m, why) in enumerate(missing):
            if why is None and ex.unattributed > 0:
                ex.unattributed -= 1
                missing[i] = (m, "probably dropped by a full spool (spool_overflow at "
                                 f"{', '.join(ex.unattributed_from)} did not record which seqs)")
        for m, why in missing:
            last = sr.gaps[-1] if sr.gaps else None
            if last is not None and last.last == m - 1 and last.explanation == why:
                last.last = m
            else:
                sr.gaps.append(GapRange(m, m, why))

    def _duplicates(self, sr: StreamReport, present: list[int], trail: dict[int, list[_Copy]]) -> None:
        for s in present:
            copies = trail[s]
            n = sum(len(c.where) for c in copies)
            if n < 2:
                continue
            where = [w for c in copies for w in c.where]
            genuine = None
            if len(copies) > 1:
                genuine = self._genuine(copies, trail.get(s - 1), trail.get(s + 1), s)
            sr.duplicates.append(Duplicate(s, n, len(copies) == 1, where, genuine))
            if s == 1 and sum(c.prev_hash == GENESIS for c in copies) > 1:
                sr.notes.append("the stream restarted from seq 1 at least once (different seq-1 events): "
                                "the agent's state_dir was lost or reset, so seqs repeat with other events")

    @staticmethod
    def _genuine(copies: list[_Copy], before: list[_Copy] | None, after: list[_Copy] | None,
                 seq: int) -> int | None:
        """Which of conflicting copies links to both neighbours (None if it cannot be told)."""
        prev_hashes = {c.hash for c in before} if before else ({GENESIS} if seq == 1 else None)
        next_prev = {c.prev_hash for c in after} if after else None
        fits = [i for i, c in enumerate(copies)
                if (prev_hashes is None or c.prev_hash in prev_hashes) and (next_prev is None or c.hash in next_prev)]
        return fits[0] if len(fits) == 1 else None

    def _chain(self, sr: StreamReport, name: str, lo: int, hi: int, trail: dict[int, list[_Copy]],
               known: dict[int, _Known]) -> None:
        def copies(s: int) -> list[_Copy]:
            if s in trail:
                return trail[s]
            k = known.get(s)
            return [k.copy] if k is not None else []

        broken: dict[int, ChainBreak] = {}
        seqs = sorted({s for s in trail if lo <= s <= hi} | {s for s in known if lo <= s <= hi})
        for s in seqs:
            cur = copies(s)
            if s == 1:
                if not any(c.prev_hash == GENESIS for c in cur):
                    broken[s] = ChainBreak(s, cur[0].prev_hash, GENESIS, "seq 1 does not start from the genesis "
                                           "hash", cur[0].where[0])
                continue
            pred = copies(s - 1)
            if not pred:
                sr.unverified_links += 1
                continue
            hashes = {c.hash for c in pred}
            if not any(c.prev_hash in hashes for c in cur):
                broken[s] = ChainBreak(s, cur[0].prev_hash, pred[0].hash, "", cur[0].where[0])
        if not broken:
            return
        # diagnosis 1: moved events. The recorded prev_hash of seq s is the hash of the event
        # that preceded s when it was sealed; if that is an event of the stream given back the
        # seq t it was sealed with, the event now at x was sealed as t, and s as t + 1.
        sealed_as = _renumber_index(broken, seqs, copies)
        explained: set[int] = set()
        moved: dict[int, int] = {}
        for s, b in broken.items():
            hit = sealed_as.get(b.recorded_prev_hash)
            if hit is None:
                continue
            x, t = hit
            if x != t:
                moved[x] = t
            if s != t + 1:
                moved[s] = t + 1
            parts = []
            if s != t + 1:
                parts.append(f"seq {s} was sealed as seq {t + 1}")
            parts.append(f"its predecessor was the event now at seq {x}" + (f" (sealed as {t})" if x != t else ""))
            b.diagnosis = "reordered: " + ", ".join(parts)
            explained.add(s)
        # diagnosis 2: altered events. One altered event breaks its outgoing link (its hash
        # changed); if its prev_hash was changed too, its incoming link breaks as well. So a
        # run of consecutive broken links s..s+r-1 is explained by altering s-1 (r == 1) or
        # s..s+r-2 (r >= 2).
        rest = sorted(s for s in broken if s not in explained)
        runs: list[list[int]] = []
        for s in rest:
            if runs and runs[-1][-1] == s - 1:
                runs[-1].append(s)
            else:
                runs.append([s])
        altered: set[int] = set()
        for run in runs:
            if len(run) == 1:
                s = run[0]
                culprit = s - 1
                if s + 1 not in trail and s + 1 not in known and s == seqs[-1]:
                    broken[s].diagnosis = (f"seq {culprit} hashes to {_short(broken[s].predecessor_hash)}, "
                                           f"but seq {s} recorded {_short(broken[s].recorded_prev_hash)}: "
                                           f"seq {culprit} was altered, or seq {s}'s prev_hash (it is the "
                                           "last event read, so which cannot be told)")
                else:
                    at = copies(culprit)[0].where[0] if copies(culprit) else "?"
                    broken[s].diagnosis = (f"seq {culprit} ({at}) was altered after sealing: it hashes to "
                                           f"{_short(broken[s].predecessor_hash)}, seq {s} recorded "
                                           f"{_short(broken[s].recorded_prev_hash)}")
                altered.add(culprit)
            else:
                for s in run:
                    culprits = [x for x in (s - 1, s) if run[0] <= x <= run[-1] - 1]
                    altered.update(culprits)
                    broken[s].diagnosis = (f"seq {'/'.join(map(str, culprits))} altered after sealing "
                                           f"(including prev_hash)")
        sr.breaks = [broken[s] for s in sorted(broken)]
        sr.altered = sorted(a for a in altered if a not in moved)
        sr.reordered = sorted((now, was) for now, was in moved.items() if now != was)


    def _check_anchors(self, sr: StreamReport, anchors: list[tuple[str, int, str, str]],
                       trail: dict[int, list[_Copy]], known: dict[int, _Known], lo: int, hi: int) -> None:
        for _, seq, h, source in anchors:
            cs = trail.get(seq) or ([known[seq].copy] if seq in known else [])
            if cs:
                sr.anchors_checked += 1
                if not any(c.hash == h for c in cs):
                    sr.anchor_problems.append(
                        f"seq {seq} hashes to {_short(cs[0].hash)} but {source} recorded {_short(h)}: "
                        "the event was rewritten after the anchor was taken")
            elif seq < lo:
                sr.notes.append(f"anchor seq {seq} ({source}) is before the checked range")
            # a missing anchored seq inside [lo, hi] is already reported as a gap

    def _invalid_lines(self) -> list[InvalidLine]:
        """Lines that hold no sealed event. A torn fragment is harmless when the event it was
        cut from is in the trail whole (the agent re-sent it after the crash)."""
        out = []
        for bad, fragment in self._bad:
            if fragment and any(c.raw.startswith(fragment) for cs in self._trail.values()
                                for copies in cs.values() for c in copies):
                bad.explanation = "torn write; the whole event is in the trail (replayed after a crash)"
            elif fragment and any(k.copy.raw.startswith(fragment) for ks in self._known.values()
                                  for k in ks.values()):
                bad.explanation = "a write in progress (or cut by a crash); the event is still in the spool"
            out.append(bad)
        return out


class _Explanations:
    def __init__(self) -> None:
        #: (stream, first seq, last seq, explanation)
        self.ranges: list[tuple[str, int, int, str]] = []
        #: event id -> explanation (dead_lettered ``ids``)
        self.ids: dict[str, str] = {}
        self.unattributed = 0
        self.unattributed_from: list[str] = []

    def explain(self, stream: str, seq: int, known: _Known | None, _sr: str) -> str | None:
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


def _renumber_index(broken: dict[int, Any], seqs: list[int], copies: Any) -> dict[str, tuple[int, int]]:
    """hash -> (seq the event carries now, seq t) for every event near a break re-sealed as t.

    Bounded: ``REORDER_SEARCH`` seqs either side of each break, and at most 200 breaks get this
    diagnosis (a trail rewritten wholesale is reported as breaks without it).
    """
    import bisect

    out: dict[str, tuple[int, int]] = {}
    done: set[tuple[int, int]] = set()
    for s in sorted(broken)[:200]:
        i = bisect.bisect_left(seqs, s)
        near = seqs[max(0, i - REORDER_SEARCH): i + REORDER_SEARCH + 1]
        for x in near:
            for c in copies(x):
                out.setdefault(c.hash, (x, x))
                try:
                    ev = orjson.loads(c.raw)
                except orjson.JSONDecodeError:
                    continue
                for t in range(max(1, s - REORDER_SEARCH - 1), s + REORDER_SEARCH + 1):
                    if t == x or (x, t) in done:
                        continue
                    done.add((x, t))
                    ev["seq"] = t
                    out.setdefault(chain_hash(dumps(ev)), (x, t))
    return out


def _parse(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """The sealed event in a line, or (None, why not)."""
    try:
        ev = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        return None, f"not JSON ({e})"
    if not isinstance(ev, dict):
        return None, "not a JSON object"
    stream, seq, prev = ev.get("stream"), ev.get("seq"), ev.get("prev_hash")
    if not isinstance(stream, str) or not stream:
        return None, "not a sealed event: no 'stream'"
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return None, "not a sealed event: 'seq' is not a positive integer"
    if not isinstance(prev, str) or not _HEX64.fullmatch(prev):
        return None, "not a sealed event: 'prev_hash' is not 64 hex digits"
    return ev, ""


def _is_canonical(ev: dict[str, Any], raw: bytes) -> bool:
    try:
        return dumps(ev) == raw
    except TypeError:
        return False


def _excerpt(raw: bytes, n: int = 200) -> str:
    return raw[:n].decode("utf-8", "replace")
