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

This module gathers the lines and assembles the report; the parts it uses each do one job:
:mod:`.sealed_lines` (what a line holds), :mod:`.report` (the findings),
:mod:`.declared_events` (what the agent's own events explain) and :mod:`.chain_check` (links
and their diagnosis). Every name importers use is importable from here.

Why pure (no files, no sockets, no clock): the same checker runs on whatever a reader fetched,
and a third party can re-implement it from docs/audit.md and compare reports.

Memory: every line read is kept (bytes plus two hashes) until :meth:`Verifier.report`; bound a
large trail with a time window or a stream filter.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from .chain_check import REORDER_SEARCH, check_chain, genuine_copy
from .declared_events import (
    DECLARED_GAP_EVENTS,
    Explanations,
    anchors_from,
    explanations_from,
    seq_ranges_field,
)
from .report import ChainBreak, Declared, Duplicate, GapRange, InvalidLine, Report, StreamReport
from .sealed_lines import (
    GENESIS,
    Copy,
    Known,
    chain_hash,
    excerpt,
    is_canonical,
    parse_sealed,
    short_hash,
    timestamp_ns,
)

__all__ = [
    "DECLARED_GAP_EVENTS",
    "GENESIS",
    "REORDER_SEARCH",
    "ChainBreak",
    "Declared",
    "Duplicate",
    "GapRange",
    "InvalidLine",
    "Report",
    "StreamReport",
    "Verifier",
    "chain_hash",
    "seq_ranges_field",
    "timestamp_ns",
]


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
        self._trail: dict[str, dict[int, list[Copy]]] = defaultdict(dict)
        self._known: dict[str, dict[int, Known]] = defaultdict(dict)
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
        ev, reason = parse_sealed(raw)
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
        ev, _ = parse_sealed(raw)
        if ev is None:
            return
        c = Copy(raw, chain_hash(raw), ev["prev_hash"], timestamp_ns(ev.get("timestamp")),
                  is_canonical(ev, raw), [where])
        self._known[ev["stream"]].setdefault(ev["seq"], Known(c, origin))

    def add_anchor(self, stream: str, seq: int, hash_hex: str, source: str) -> None:
        """A (seq, hash) the stream must contain: from the agent's chain heads, a heads file
        kept elsewhere, or a ``chain_anchor`` event."""
        self._anchors.append((stream, int(seq), str(hash_hex), source))

    def _add_unparsable(self, raw: bytes, where: str, reason: str) -> None:
        # a crash in the middle of a write can leave a fragment that the next write continues
        # on the same line: split "<fragment>{...sealed event...}" and keep the event
        start = raw.find(b'{"', 1)
        while start > 0:
            ev, _ = parse_sealed(raw[start:])
            if ev is not None:
                self._store(ev, raw[start:], where)
                fragment = raw[:start]
                self._bad.append((InvalidLine(where, "torn line (a write cut short)", excerpt(fragment)), fragment))
                return
            start = raw.find(b'{"', start + 1)
        # a lone fragment (the last line of a file cut by a crash) may be the start of an event
        fragment = raw if raw.startswith(b'{"') else b""
        self._bad.append((InvalidLine(where, reason, excerpt(raw)), fragment))

    def _store(self, ev: dict[str, Any], raw: bytes, where: str) -> None:
        stream, seq = ev["stream"], ev["seq"]
        copies = self._trail[stream].setdefault(seq, [])
        for c in copies:
            if c.raw == raw:
                c.where.append(where)
                return
        # timestamps matter only for a window (parsing them is a third of the cost per line)
        ts = timestamp_ns(ev.get("timestamp")) if self._windowed else None
        copies.append(Copy(raw, chain_hash(raw), ev["prev_hash"], ts, is_canonical(ev, raw), [where]))
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
        self._all_anchors = self._anchors + anchors_from(self._declared)
        explain = explanations_from(self._declared, self.sink)
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


    def _stream_report(self, name: str, ex: Explanations) -> StreamReport | None:
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
        check_chain(sr, lo, hi, trail, known)
        sr.not_canonical = [s for s in present if not all(c.canonical for c in trail[s])]
        self._check_anchors(sr, anchors, trail, known, lo, hi)
        sr.declared = sorted((d for d, w in self._declared.get(name, []) if w and d.event != "chain_anchor"),
                             key=lambda d: d.seq)
        return sr

    def _gaps(self, sr: StreamReport, name: str, lo: int, hi: int, trail: dict[int, list[Copy]],
              known: dict[int, Known], ex: Explanations) -> None:
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

    def _duplicates(self, sr: StreamReport, present: list[int], trail: dict[int, list[Copy]]) -> None:
        for s in present:
            copies = trail[s]
            n = sum(len(c.where) for c in copies)
            if n < 2:
                continue
            where = [w for c in copies for w in c.where]
            genuine = None
            if len(copies) > 1:
                genuine = genuine_copy(copies, trail.get(s - 1), trail.get(s + 1), s)
            sr.duplicates.append(Duplicate(s, n, len(copies) == 1, where, genuine))
            if s == 1 and sum(c.prev_hash == GENESIS for c in copies) > 1:
                sr.notes.append("the stream restarted from seq 1 at least once (different seq-1 events): "
                                "the agent's state_dir was lost or reset, so seqs repeat with other events")

    def _check_anchors(self, sr: StreamReport, anchors: list[tuple[str, int, str, str]],
                       trail: dict[int, list[Copy]], known: dict[int, Known], lo: int, hi: int) -> None:
        for _, seq, h, source in anchors:
            cs = trail.get(seq) or ([known[seq].copy] if seq in known else [])
            if cs:
                sr.anchors_checked += 1
                if not any(c.hash == h for c in cs):
                    sr.anchor_problems.append(
                        f"seq {seq} hashes to {short_hash(cs[0].hash)} but {source} recorded {short_hash(h)}: "
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
