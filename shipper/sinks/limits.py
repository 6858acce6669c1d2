"""The largest entry each sink accepts, and the cut that makes an event fit it.

Every sink declares ``max_entry_bytes``: the most canonical JSON bytes one event may take (see
docs/configuration.md). An event over it would be refused by the server (Loki answers 400
"line too long" to an entry over its ``max_line_size``) and dead-lettered, so the agent cuts it
instead, the way the follower cuts an over-long line: the text is shortened, valid UTF-8 is
kept, and ``fields.truncated_bytes`` says how many bytes of text were cut.

Why the cut happens when the event is sealed into the spool (``Spool._seal_batch``), not in the
sink: the audit chain hashes the bytes the spool stores, and every sink ships those exact bytes.
An event cut by one sink after sealing would no longer match its hash, and ``verify`` would
report it as altered. Cut before sealing, the chain covers the shipped event, ``verify`` stays
honest (it proves what the sinks hold, and ``truncated_bytes`` in those bytes says that text
was removed), and one event has one set of bytes whatever the sink. The bound is therefore the
smallest ``max_entry_bytes`` of the configured sinks (:func:`spool_limit`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson

from parsers.events import dumps
from shipper.observe import metrics

log = logging.getLogger(__name__)

#: Loki's default ``limits_config.max_line_size`` is ``256KB``, which Loki parses with
#: ``flagext.ByteSize`` (1 KB = 1024 bytes): 262,144 bytes, compared with the line's length in
#: bytes (tests/test_real_loki_sizes.py checks both sides of it on the real Loki).
LOKI_MAX_ENTRY_BYTES = 256 << 10
#: Elasticsearch bounds a whole ``_bulk`` request (``http.max_content_length``, 100mb by
#: default), not a document. A document carries its event about twice (the mapped fields and
#: ``event.original``), and an event over ``batch.max_bytes`` (1 MiB by default) travels alone:
#: 1 MiB keeps that request near 2 MiB, far under the server's bound and under the 1 MB-class
#: proxy limits once compressed, and ships whole every line the follower keeps
#: (``max_line_bytes``, 1 MiB).
ELASTICSEARCH_MAX_ENTRY_BYTES = 1 << 20
#: The file and local sinks have no server to refuse anything; their lines are read back whole
#: by ``events`` and ``verify``. 1 MiB, the follower's ``max_line_bytes``: any one line it keeps
#: ships whole, and only a runaway block (an unbounded crash report) is cut.
FILE_MAX_ENTRY_BYTES = 1 << 20
#: below this an event's fixed part (chain keys, labels, timestamp...) may not fit at all
MIN_ENTRY_BYTES = 1024

#: room left for ``"truncated_bytes":N`` (and ``"fields":{}`` when the event had none)
_RESERVE = 64
#: what is never cut: the event's identity and chain position live outside these keys
_CUTTABLE = ("message", "fields")


def spool_limit(sink_configs: Iterable[Any]) -> int:
    """The bound every sealed event must fit: the smallest ``max_entry_bytes`` of the sinks (the
    local sink's default when none is configured, as the runtime then uses the local sink)."""
    limits = [int(c.max_entry_bytes) for c in sink_configs if getattr(c, "max_entry_bytes", None)]
    return min(limits) if limits else FILE_MAX_ENTRY_BYTES


def _strings(ev: dict[str, Any]) -> list[tuple[int, Any, Any]]:
    """(length, container, key) of every string under the cuttable keys, longest first."""
    out: list[tuple[int, Any, Any]] = []
    todo: list[Any] = []
    for k in _CUTTABLE:
        v = ev.get(k)
        if isinstance(v, str):
            out.append((len(v), ev, k))
        elif isinstance(v, dict | list):
            todo.append(v)
    while todo:
        c = todo.pop()
        items = c.items() if isinstance(c, dict) else enumerate(c)
        for k, v in items:
            if isinstance(v, str):
                if v:
                    out.append((len(v), c, k))
            elif isinstance(v, dict | list):
                todo.append(v)
    out.sort(key=lambda t: t[0], reverse=True)
    return out


def _cut(text: str, json_excess: int) -> tuple[str, int]:
    """``text`` shortened (at a character boundary) so that its JSON form loses at least
    ``json_excess`` bytes; (the new text, UTF-8 bytes cut). Every character takes at least as
    many bytes in JSON as in UTF-8, so cutting that many UTF-8 bytes is always enough."""
    b = text.encode()
    keep = max(0, len(b) - json_excess)
    kept = b[:keep].decode("utf-8", "ignore")  # drops only a character the cut split
    return kept, len(b) - len(kept.encode())


def _truncated_before(ev: dict[str, Any]) -> int:
    """Bytes the follower (or an earlier cut) already removed from this event."""
    fields = ev.get("fields")
    prior = fields.get("truncated_bytes") if isinstance(fields, dict) else None
    return prior if isinstance(prior, int) and not isinstance(prior, bool) and prior > 0 else 0


def _set_truncated(ev: dict[str, Any], n: int) -> None:
    fields = ev.get("fields")
    if not isinstance(fields, dict):
        fields = ev["fields"] = {}
    fields["truncated_bytes"] = n


def fit(ev: dict[str, Any], raw: bytes, limit: int) -> bytes:
    """The canonical bytes of ``ev`` cut to at most ``limit`` bytes, ``ev`` changed to match.

    The longest texts (message, crash report, stack trace, any string in ``fields``) are cut from
    their end first, until the event fits; ``fields.truncated_bytes`` adds up the UTF-8 bytes cut
    (on top of what the follower already cut from the line). When strings alone cannot make it
    fit (an event of many small fields), ``fields`` is reduced to ``truncated_bytes``. An event
    whose fixed part alone is over ``limit`` is returned unchanged, with a warning: the sink
    then refuses it and dead-letters it, visibly.
    """
    if len(raw) <= limit:
        return raw
    before = len(raw)
    prior = _truncated_before(ev)
    cut_total = 0
    for _attempt in range(3):  # one pass fits unless the reserve was short; never more than 3
        excess = len(raw) - limit + _RESERVE
        for _n, container, key in _strings(ev):
            if excess <= 0:
                break
            old = container[key]
            new, cut = _cut(old, excess)
            container[key] = new
            cut_total += cut
            excess -= len(orjson.dumps(old)) - len(orjson.dumps(new))
        _set_truncated(ev, prior + cut_total)
        raw = dumps(ev)
        if len(raw) <= limit or excess > 0:  # fits, or every text is already empty
            break
    if len(raw) > limit:
        fields = ev.get("fields")
        dropped = len(orjson.dumps({k: v for k, v in fields.items() if k != "truncated_bytes"})) \
            if isinstance(fields, dict) else 0
        ev["fields"] = {"truncated_bytes": prior + cut_total + dropped}
        raw = dumps(ev)
    if len(raw) > limit:
        log.warning("an event of %d bytes cannot be cut under max_entry_bytes %d (its fixed part is %d bytes)",
                    before, limit, len(raw))
        return raw
    source = str(ev.get("source"))
    metrics.EVENTS_TRUNCATED.labels(source).inc()
    metrics.EVENTS_TRUNCATED_BYTES.labels(source).inc(before - len(raw))
    return raw
