"""The Loki encoder: spooled events to push bodies (the mapping is in shipper/sinks/loki.py's
docstring and docs/sinks.md), and the per-event annex that lets a body be built from bytes.

Pure and free of the HTTP client: the tests and the benches build bodies without a server.
"""

from __future__ import annotations

import calendar
import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson
import snappy

from parsers.events import parse_timestamp
from shipper.api import Encoded, SpooledEvent
from shipper.sinks.compress import gzip_body

if TYPE_CHECKING:  # loki_annex imports this module
    from shipper.pipeline.spool_rows import AnnexedRow
    from shipper.sinks.loki_annex import Taken

log = logging.getLogger("shipper.sinks.loki")

#: Loki's default ``max_label_names_per_series``
MAX_LABELS = 15
#: event keys that go to structured metadata (high cardinality: never stream labels)
METADATA_KEYS = ("id", "origin", "stream", "file", "offset", "seq", "pid", "role", "category", "event")
#: the stream of an event that would otherwise have no label at all (Loki answers 400 to ``{}``)
FALLBACK_LABELS = {"job": "redis-shipper"}
#: the headers of a JSON body
JSON_HEADERS = {"Content-Type": "application/json", "Content-Encoding": "gzip"}

_BAD_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def sanitize_label_name(name: str) -> str:
    """``cluster.name`` -> ``cluster_name``; ``1st`` -> ``_1st``; ``""`` -> ``""`` (dropped)."""
    if not name:
        return ""
    out = _BAD_LABEL_CHARS.sub("_", name)
    if out[0].isdigit():
        out = "_" + out
    return out


def quote_label_value(value: str) -> str:
    """A Go-``strconv.Unquote``-compatible double-quoted string (JSON escaping is a subset)."""
    return orjson.dumps(value).decode("utf-8")


def selector(labels: dict[str, str]) -> str:
    """Loki's stream selector text ``{a="1", b="2"}``, names sorted (what Loki itself prints)."""
    return "{" + ", ".join(f"{k}={quote_label_value(v)}" for k, v in sorted(labels.items())) + "}"


#: epoch seconds of each minute ``YYYY-MM-DDTHH:MM`` seen (a backlog spans few minutes, many seconds)
_EPOCH_CACHE: dict[str, int] = {}


def timestamp_ns(ts: str) -> int:
    """Nanoseconds since the epoch of an event timestamp; ValueError if it is not one.

    The fast path handles the canonical ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` with a per-minute
    cache (consecutive log lines share minutes); anything else goes through fromisoformat.
    """
    if len(ts) == 27 and ts[19] == "." and ts[26] == "Z" and ts[10] == "T":
        minute = ts[:16]
        base = _EPOCH_CACHE.get(minute)
        if base is None:
            try:
                tt = (int(ts[0:4]), int(ts[5:7]), int(ts[8:10]), int(ts[11:13]), int(ts[14:16]))
            except ValueError:
                raise ValueError(f"not a timestamp: {ts!r}") from None
            if not (1 <= tt[1] <= 12 and 1 <= tt[2] <= 31 and tt[3] < 24 and tt[4] < 60):
                raise ValueError(f"not a timestamp: {ts!r}")
            base = calendar.timegm(tt + (0, 0, 0, 0))
            if len(_EPOCH_CACHE) > 4096:
                _EPOCH_CACHE.clear()
            _EPOCH_CACHE[minute] = base
        try:
            sec = int(ts[17:19])
        except ValueError:
            raise ValueError(f"not a timestamp: {ts!r}") from None
        frac = ts[20:26]
        if not (sec < 61 and frac.isdigit()):
            raise ValueError(f"not a timestamp: {ts!r}")
        return (base + sec) * 1_000_000_000 + int(frac) * 1000
    dt = parse_timestamp(ts)  # raises ValueError on garbage
    if dt.tzinfo is None:
        raise ValueError(f"timestamp without a zone: {ts!r}")
    micros = calendar.timegm(dt.utctimetuple()) * 1_000_000 + dt.microsecond
    return micros * 1000


_NOTHING = object()
_NO_MD: dict[str, str] = {}


def _compile_metadata_of(keys: tuple[str, ...]) -> Any:
    """``metadata_of(get) -> {key: str(value)}`` for the ``keys`` an event has (not None, not
    ""), as one straight-line function: it runs once per event on the sink's hot loop, where a
    comprehension over the keys cost 1.3-1.4 µs and this ~0.95 µs (bench/loki_bench.py)."""
    lines = ["def metadata_of(get):", "    md = {}"]
    for k in keys:
        lines += [f"    v = get({k!r})",
                  "    if v is not None and v != '':",
                  f"        md[{k!r}] = v if type(v) is str else str(v)"]
    lines.append("    return md")
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), "<loki metadata_of>", "exec"), namespace)  # noqa: S102 - our own constant keys
    return namespace["metadata_of"]


_metadata_of = _compile_metadata_of(METADATA_KEYS)


def _by_time(entry: tuple[int, int, str, dict[str, str]]) -> int:
    return entry[0]


class _Stream:
    __slots__ = ("labels", "selector", "entries", "last_ns", "ordered")

    def __init__(self, labels: dict[str, str]):
        self.labels = labels
        self.selector = selector(labels)
        #: (ns, index in batch, line, metadata)
        self.entries: list[tuple[int, int, str, dict[str, str]]] = []
        self.last_ns = -(1 << 63)
        #: entries were appended in time order (no sort needed)
        self.ordered = True


def plain_labels(labels: Any) -> bool:
    """Labels whose names and values are str (or absent): the same after a JSON round trip, and
    never equal to a value of another type in the encoder's caches (``1 == True``)."""
    if labels is None:
        return True
    if type(labels) is not dict:
        return False
    for k, v in labels.items():
        if type(k) is not str or (type(v) is not str and v is not None):
            return False
    return True


def plain_values(vals: tuple[Any, ...]) -> bool:
    """Stream values that are str or absent (see :func:`plain_labels`)."""
    for v in vals:
        if type(v) is not str and v is not None:
            return False
    return True


class LokiEncoder:
    """Builds push bodies from spooled events: stream labels, metadata, order, JSON or protobuf,
    compression (see the module docstring for the mapping).

    Pure and self-contained, so the same code builds a body in the agent or in the offload
    process, byte for byte the same.
    """

    def __init__(self, *, encoding: str = "json", structured_metadata: bool = True,
                 stream_labels: list[str] | tuple[str, ...] = ("source", "level"), sink_name: str = "loki"):
        self.name = sink_name
        self.encoding = encoding
        self.structured_metadata = structured_metadata
        self.stream_labels = [k for k in stream_labels if k != "labels"]
        self._label_cache: dict[tuple[Any, ...], tuple[dict[str, str], dict[str, str], str]] = {}
        self._warned_overflow = False

    # ----------------------------------------------------------------- mapping
    def stream_labels_of(self, ev: dict[str, Any]) -> tuple[dict[str, str], dict[str, str], str]:
        """(stream labels, overflow labels, selector text) of an event.

        Cached by the raw label values: an agent has few distinct label sets, and building the
        selector text per event would cost more than everything else in the encoder.
        """
        raw_labels = ev.get("labels")
        items = tuple(raw_labels.items()) if isinstance(raw_labels, dict) else ()
        vals = tuple([ev.get(k) for k in self.stream_labels])
        key: tuple[Any, ...] = (items, vals)
        if not (plain_values(vals) and plain_labels(raw_labels)):
            # 1, True and 1.0 hash alike but are the labels "1", "true" and "1.0": types join the key
            key = (items, vals, tuple([type(v) for _, v in items]), tuple([type(v) for v in vals]))
        try:
            hit = self._label_cache.get(key)
        except TypeError:  # an unhashable value in labels: compute without the cache
            hit, key = None, ()
        if hit is not None:
            return hit
        ordered: list[tuple[str, Any]] = []
        if isinstance(raw_labels, dict):
            ordered.extend(sorted((str(k), v) for k, v in raw_labels.items()))
        for k in self.stream_labels:
            ordered.append((k, ev.get(k)))
        labels: dict[str, str] = {}
        overflow: dict[str, str] = {}
        for k, v in ordered:
            if v is None or isinstance(v, dict | list):
                continue
            name = sanitize_label_name(k)
            sv = v if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
            if not name or sv == "" or name in labels or name in overflow:
                continue
            if len(labels) >= MAX_LABELS:
                overflow[name] = sv
            else:
                labels[name] = sv
        if not labels:
            labels = dict(FALLBACK_LABELS)
        if overflow and not self._warned_overflow:
            self._warned_overflow = True
            log.warning(
                "loki sink %s: more than %d stream labels; %s moved to %s",
                self.name, MAX_LABELS, sorted(overflow),
                "structured metadata" if self.structured_metadata else "the line only",
            )
        result = (labels, overflow, selector(labels))
        if key:
            if len(self._label_cache) > 10_000:
                self._label_cache.clear()
            self._label_cache[key] = result
        return result

    def group(self, batch: list[SpooledEvent]) -> tuple[list[_Stream], list[tuple[int, str]]]:
        """Streams in order of first appearance, entries sorted by time (stable), and the
        events that cannot be sent at all (no usable timestamp) with the reason.

        The hot loop of the sink (bench/loki_bench.py, bench/agent_bench.py): consecutive events
        usually share their labels, so while they do, the stream of each tuple of stream values
        is looked up by value; a stream is sorted only if its entries arrived out of order.
        """
        streams: dict[str, _Stream] = {}
        rejected: list[tuple[int, str]] = []
        keys = self.stream_labels
        md_on = self.structured_metadata
        metadata_of = _metadata_of
        # the streams of the values of ``keys`` seen since the labels last changed: events of a
        # source share their labels, and their levels alternate (a third of the events of the
        # promtail_compare backlog change level), so a lookup by value beats recomputing (group +
        # encode_json of that backlog: 6.2-6.8 against 6.5-7.6 µs per event, 3 rounds, same run)
        last_labels: Any = _NOTHING
        shortcut = False
        by_vals: dict[tuple[Any, ...], tuple[_Stream, dict[str, str]]] = {}
        st: _Stream
        overflow: dict[str, str] = {}
        epoch = _EPOCH_CACHE
        for i, se in enumerate(batch):
            ev = se.event
            get = ev.get
            ts = get("timestamp")
            # timestamp_ns's fast path, inlined: it runs once per event
            if type(ts) is str and len(ts) == 27 and ts[19] == "." and ts[26] == "Z" and ts[10] == "T" \
                    and (base := epoch.get(ts[:16])) is not None and (sec := ts[17:19]).isdigit() \
                    and (frac := ts[20:26]).isdigit() and (secs := int(sec)) < 61:
                ns = (base + secs) * 1_000_000_000 + int(frac) * 1000
            else:
                try:
                    ns = timestamp_ns(ts)  # type: ignore[arg-type]
                except (KeyError, TypeError, ValueError) as e:
                    rejected.append((i, f"loki: event has no usable timestamp: {e}"))
                    continue
            raw_labels = get("labels")
            vals = tuple(map(get, keys))
            if raw_labels != last_labels:
                by_vals.clear()
                last_labels = raw_labels
                # the lookup by value is for str labels: 1, True and 1.0 are one dict key but three
                # label values ("1", "true", "1.0"), and {"a": 1} == {"a": True}
                shortcut = plain_labels(raw_labels)
            by_value = shortcut and plain_values(vals)
            hit = by_vals.get(vals) if by_value else None
            if hit is not None:
                st, overflow = hit
            else:
                labels, overflow, sel = self.stream_labels_of(ev)
                st = streams.get(sel)
                if st is None:
                    st = streams[sel] = _Stream(labels)
                if by_value:
                    by_vals[vals] = (st, overflow)
            if md_on:
                md = metadata_of(get)
                if overflow:
                    for k, v in overflow.items():
                        md.setdefault(k, v)
            else:
                md = _NO_MD
            if ns < st.last_ns:
                st.ordered = False
            st.last_ns = ns
            st.entries.append((ns, i, se.raw.decode("utf-8", "replace"), md))
        out = list(streams.values())
        for s in out:
            if not s.ordered:
                s.entries.sort(key=_by_time)
        return out, rejected

    # ----------------------------------------------------------------- encoding
    def encode_json(self, streams: list[_Stream]) -> bytes:
        """``{"streams":[{"stream":{..},"values":[["<ns>","<line>",{md}],..]}]}`` (not yet compressed)."""
        doc = {
            "streams": [
                {
                    "stream": st.labels,
                    "values": [[str(ns), line, md] if md else [str(ns), line] for ns, _i, line, md in st.entries],
                }
                for st in streams
            ]
        }
        return orjson.dumps(doc)

    def encode_protobuf(self, streams: list[_Stream]) -> bytes:
        """``logproto.PushRequest`` serialised (not yet compressed)."""
        from shipper.sinks._proto import push_pb

        req = push_pb.PushRequest()
        for st in streams:
            s = req.streams.add()
            s.labels = st.selector
            for ns, _, line, md in st.entries:
                e = s.entries.add()
                e.timestamp.seconds, e.timestamp.nanos = divmod(ns, 1_000_000_000)
                e.line = line
                for k, v in md.items():
                    e.structuredMetadata.add(name=k, value=v)
        return req.SerializeToString()

    def compress(self, payload: bytes) -> bytes:
        """gzip level 1 for JSON; raw (block) snappy for protobuf -- not the framed format."""
        if self.encoding == "json":
            return gzip_body(payload)
        return snappy.compress(payload)

    def build(self, batch: list[SpooledEvent]) -> tuple[bytes, dict[str, str], list[tuple[int, str]], int]:
        """(uncompressed payload, headers, pre-rejected events, number of entries); from the
        annexes when every event of the batch has one (the spool hands them to the sink whose
        annexer made them: the same bytes, shipper/sinks/loki_annex.py)."""
        if self.encoding == "json" and batch and all(se.annex for se in batch):
            from shipper.sinks.loki_annex import payload_of_annexes

            payload, n = payload_of_annexes(batch)
            return payload, dict(JSON_HEADERS), [], n
        streams, rejected = self.group(batch)
        n = sum(len(st.entries) for st in streams)
        if self.encoding == "json":
            return self.encode_json(streams), dict(JSON_HEADERS), rejected, n
        return self.encode_protobuf(streams), {"Content-Type": "application/x-protobuf"}, rejected, n

    def encode_rows(self, rows: Iterable[AnnexedRow], max_bytes: int,
                    max_events: int) -> tuple[Encoded, Taken] | None:
        """The body of the batch read from spool rows with annexes (shipper/sinks/loki_annex.py
        ``payload_of_rows``) and which events it holds; None when that batch must be read as events
        (an event without an annex, the protobuf encoding) or is empty."""
        if self.encoding != "json":
            return None
        from shipper.sinks.loki_annex import payload_of_rows

        built = payload_of_rows(rows, max_bytes, max_events)
        if built is None:
            return None
        payload, taken = built
        return Encoded(self.compress(payload), dict(JSON_HEADERS), [], taken.count), taken

    def encode(self, batch: list[SpooledEvent]) -> Encoded:
        """The compressed body of ``batch`` (what :meth:`LokiSink.send` posts)."""
        payload, headers, rejected, n = self.build(batch)
        return Encoded(self.compress(payload), headers, rejected, n)
