"""The Loki sink's annex (shipper/api.py ``Annexer``): each event's stream, timestamp and
structured metadata, computed once when the spool seals the event, so that a push body is
built from bytes instead of from the parsed events.

Why: without it the sink parses every stored event again (``orjson.loads``) to find what the
agent knew when it sealed it, then groups the events into streams and builds each entry's
metadata dict; that was the larger half of the CPU of a backlog's sink side
(docs/performance.md). With it, building a body is a split of each annex, a dict lookup per
event and one ``orjson.dumps`` with the annex's JSON embedded as ``orjson.Fragment``.

The annex of an event is ``<ns>\\t<stream labels JSON>\\t<structured metadata JSON or empty>``
(JSON never holds a raw tab or newline: orjson escapes control characters). It is empty when
the event is not *plain*, that is when its JSON form could map to another Loki entry than its
dict does (a float, a non-str label value or key, a timestamp that is not a str) or when it has
no usable timestamp: the batch holding it is then built by :class:`LokiEncoder` from the parsed
events, which also rejects what cannot be sent, exactly as without annexes. The bodies are the
same bytes either way (tests/test_loki_annex.py), so a replay stays one Loki deduplicates.

Only the JSON encoding has an annex: protobuf bodies are always built from the events.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from parsers.events import Event
from shipper.api import Annexer, Encoded, SpooledEvent
from shipper.pipeline.spool_rows import AnnexedRow
from shipper.sinks.loki_encoder import _EPOCH_CACHE as _EPOCH
from shipper.sinks.loki_encoder import (
    JSON_HEADERS,
    METADATA_KEYS,
    LokiEncoder,
    plain_labels,
    plain_values,
    timestamp_ns,
)

#: the annex's layout; part of the fingerprint, so a spool written by another layout is rebuilt
FORMAT = "loki-json-annex-1"

_Fragment = orjson.Fragment
_dumps = orjson.dumps
_TAB = b"\t"


def _compile_plain_metadata_of(keys: tuple[str, ...]) -> Any:
    """``metadata_of(get) -> {key: str(value)}`` as ``shipper.sinks.loki_encoder``'s, or None when a
    value is of a type whose JSON form reads back as another value (a float: NaN becomes null) or
    whose ``str`` is not that of its JSON form (a dict, a list). Straight-line, the builtins bound
    as locals: it runs once per event on the agent's busiest path."""
    lines = ["def plain_metadata_of(get, type=type, str=str, int=int, bool=bool):", "    md = {}"]
    for k in keys:
        lines += [f"    v = get({k!r})",
                  "    t = type(v)",
                  "    if t is str:",
                  "        if v:",
                  f"            md[{k!r}] = v",
                  "    elif t is int or t is bool:",
                  f"        md[{k!r}] = str(v)",
                  "    elif v is not None:",
                  "        return None"]
    lines.append("    return md")
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), "<loki plain_metadata_of>", "exec"), namespace)  # noqa: S102 - our own constant keys
    return namespace["plain_metadata_of"]


_plain_metadata_of = _compile_plain_metadata_of(METADATA_KEYS)


def _compile_vals_of(keys: tuple[str, ...]) -> Any:
    """``vals_of(get) -> (get(k) for k in keys)`` as a tuple, straight-line: a third of the cost of
    ``tuple(map(get, keys))`` (one call per event)."""
    items = "".join(f"get({k!r}), " for k in keys)
    namespace: dict[str, Any] = {}
    exec(compile(f"def vals_of(get):\n    return ({items})", "<loki vals_of>", "exec"), namespace)  # noqa: S102
    return namespace["vals_of"]


class LokiAnnexer(Annexer):
    """The annex of :class:`LokiEncoder`'s JSON bodies (see the module docstring)."""

    def __init__(self, encoder: LokiEncoder) -> None:
        if encoder.encoding != "json":
            raise ValueError("the Loki annex is for the JSON encoding only")
        self.encoder = encoder
        self.fingerprint = orjson.dumps([FORMAT, encoder.structured_metadata, list(encoder.stream_labels)]).decode()
        #: the labels of the previous event, and the (labels JSON, overflow) of each tuple of stream
        #: values seen since they last changed (the events of a source share their labels). One
        #: tuple, replaced whole: the spool seals on the event loop and, after a drop_oldest, on its
        #: own thread, and each call keeps the pair it started with.
        self._state: tuple[Any, dict[tuple[Any, ...], tuple[bytes, dict[str, str]]]] = (object(), {})
        self._md_on = encoder.structured_metadata
        self._vals_of = _compile_vals_of(tuple(encoder.stream_labels))

    def annex(self, event: Event, raw: bytes) -> bytes:
        """See the module docstring. Runs once per event on the agent's busiest path: the
        timestamp's fast path is :func:`timestamp_ns`'s, inlined, and the stream values are read
        by a function compiled for the configured keys."""
        get = event.get
        ts = get("timestamp")
        if type(ts) is not str:
            return b""
        if len(ts) == 27 and ts[19] == "." and ts[26] == "Z" and ts[10] == "T" \
                and (base := _EPOCH.get(ts[:16])) is not None and (sec := ts[17:19]).isdigit() \
                and (frac := ts[20:26]).isdigit() and (secs := int(sec)) < 61:
            ns = (base + secs) * 1_000_000_000 + int(frac) * 1000
        else:
            try:
                ns = timestamp_ns(ts)
            except ValueError:
                return b""  # rejected by the encoder, with its reason, on the ordinary path
        labels = get("labels")
        last, by_vals = self._state
        if labels != last:
            if not plain_labels(labels):
                return b""
            by_vals = {}
            self._state = (labels, by_vals)
        vals = self._vals_of(get)
        try:
            hit = by_vals.get(vals)
        except TypeError:  # an unhashable value (a dict, a list): not plain
            return b""
        if hit is None:
            if not plain_values(vals):
                return b""
            stream, overflow, _sel = self.encoder.stream_labels_of(event)
            hit = by_vals[vals] = (orjson.dumps(stream), overflow)
        labels_json, overflow = hit
        if not self._md_on:
            return b"%d\t%b\t" % (ns, labels_json)
        md = _plain_metadata_of(get)
        if md is None:
            return b""
        if overflow:
            for k, v in overflow.items():
                md.setdefault(k, v)
        return b"%d\t%b\t%b" % (ns, labels_json, _dumps(md) if md else b"")

    def encode_annexed(self, batch: list[SpooledEvent]) -> Encoded:
        payload, n = payload_of_annexes(batch)
        return Encoded(self.encoder.compress(payload), dict(JSON_HEADERS), [], n)

    def encode_rows(self, rows: Iterable[AnnexedRow], max_bytes: int,
                    max_events: int) -> tuple[Encoded, Taken] | None:
        return self.encoder.encode_rows(rows, max_bytes, max_events)


def payload_of_annexes(batch: list[SpooledEvent]) -> tuple[bytes, int]:
    """The uncompressed push body of ``batch`` from its annexes (each non-empty), and its number of
    entries: streams in order of first appearance, each stream's entries in time order (a stable
    sort, only when they arrived out of order), as :meth:`LokiEncoder.group` orders them."""
    if not batch:
        return _payload({}), 0
    built = payload_of_rows([(0, 0.0, [se.raw for se in batch], [se.annex or b"" for se in batch], 0)],
                            sys.maxsize, sys.maxsize)
    if built is None:
        raise ValueError("payload_of_annexes: an event of the batch has no annex")
    return built[0], len(batch)


def _by_time(entry: tuple[int, Any]) -> int:
    return entry[0]


@dataclass
class Taken:
    """Which spooled events a body built by :func:`payload_of_rows` holds."""

    first: int
    last: int
    count: int
    #: the sum of their canonical bytes' lengths
    size: int
    #: the ``added`` time of the row of the first
    first_added: float


def payload_of_rows(rows: Iterable[AnnexedRow], max_bytes: int, max_events: int) -> tuple[bytes, Taken] | None:
    """``payload_of_annexes`` of the batch ``spool_rows.annexed_after`` would read from ``rows``
    (the same events, the same bytes), without a ``SpooledEvent`` per event; None when the
    batch has an event without an annex (the caller reads it as a batch of events) or no event.

    Why: the offload process builds every body of a backlog; one loop from the stored rows to
    the entries, keeping the row the last batch ended in, costs 0.72x of reading a batch of
    events and then building from it (bench/stage_costs.py)."""
    # labels JSON -> [entries (ns, entry), last ns, in order]
    streams: dict[bytes, list[Any]] = {}
    total = count = 0
    first_seq = last_seq = -1
    first_added = 0.0
    split, decode, fragment = bytes.split, bytes.decode, _Fragment
    for first, added, parts, annexes, start in rows:
        if annexes is None:
            if start < len(parts):
                return None
            continue
        for i in range(start, len(parts)):
            one = parts[i]
            size = len(one)
            if count and (total + size > max_bytes or count >= max_events):
                return _payload(streams), Taken(first_seq, last_seq, count, total, first_added)
            annex = annexes[i]
            if not annex:
                return None
            if not count:
                first_seq, first_added = first + i, added
            ns_text, labels_json, md = split(annex, _TAB, 2)
            ns = int(ns_text)
            st = streams.get(labels_json)
            if st is None:
                st = streams[labels_json] = [[], ns, True]
            elif ns < st[1]:
                st[2] = False
            st[1] = ns
            line = decode(one, "utf-8", "replace")
            st[0].append((ns, [decode(ns_text), line, fragment(md)] if md else [decode(ns_text), line]))
            total += size
            count += 1
            last_seq = first + i
    if not count:
        return None
    return _payload(streams), Taken(first_seq, last_seq, count, total, first_added)


def _payload(streams: dict[bytes, list[Any]]) -> bytes:
    doc = []
    for labels_json, (entries, _last, ordered) in streams.items():
        if not ordered:
            entries.sort(key=_by_time)
        doc.append({"stream": _Fragment(labels_json), "values": [e for _ns, e in entries]})
    return orjson.dumps({"streams": doc})
