"""The trail of one sink, as ``redis-shipper verify --from TYPE`` reads it back.

Each sink type registers a reader here (shipper/registry/sinks.py): given a :class:`TrailQuery`
(the sink's config, the agent's config, the time window), it returns the sink's lines through the
generic readers of :mod:`.readers` -- an iterator for files, an async iterator for an HTTP sink.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..config import AgentConfig
from .readers import ES_PAGE, Line, default_loki_selector, read_elasticsearch, read_files, read_local, read_loki

#: without --since, Loki is asked about this much history (its max_query_length is 721 h)
LOKI_DEFAULT_LOOKBACK = 30 * 86400.0


@dataclass
class TrailQuery:
    """What ``verify`` asks a sink type's reader for: the trail of ``sink`` around a window."""

    #: the sink's config entry (its type's model)
    sink: Any
    agent: AgentConfig
    since_ns: int | None
    until_ns: int | None
    #: also read this much before/after the window (events whose timestamps are out of seq order)
    margin_ns: int
    now: float
    #: a Loki stream selector given on the command line
    selector: str | None = None
    loki_limit: int = 1000
    es_page: int = ES_PAGE
    on_unfinished: Callable[[str], None] | None = None
    on_invalid: Callable[[str, str], None] | None = None


def trail_local(q: TrailQuery) -> Iterator[Line]:
    """The trail of a ``type: local`` sink: its rotated files."""
    from ..sinks.local import local_dir

    return read_local(local_dir(q.sink, q.agent.state_dir), on_unfinished=q.on_unfinished)


def trail_file(q: TrailQuery) -> Iterator[Line]:
    """The trail of a ``type: file`` sink: its one file."""
    return read_files([q.sink.path], on_unfinished=q.on_unfinished)


def trail_loki(q: TrailQuery) -> AsyncIterator[Line]:
    """The trail of a Loki sink: the agent's streams (its static labels) in the window."""
    start = (q.since_ns if q.since_ns is not None else int((q.now - LOKI_DEFAULT_LOOKBACK) * 1e9)) - q.margin_ns
    end = (q.until_ns if q.until_ns is not None else int(q.now * 1e9)) + q.margin_ns
    discovered = q.agent.discover_labels.copy_labels if q.agent.discover_labels else []
    selector = q.selector or default_loki_selector(dict(q.agent.labels), discovered)
    return read_loki(q.sink, selector=selector, start_ns=start, end_ns=end, limit=q.loki_limit)


def trail_elasticsearch(q: TrailQuery) -> AsyncIterator[Line]:
    """The trail of an Elasticsearch sink: its documents in the window."""
    start = q.since_ns - q.margin_ns if q.since_ns is not None else None
    end = q.until_ns + q.margin_ns if q.until_ns is not None else None
    return read_elasticsearch(q.sink, start_ns=start, end_ns=end, page=q.es_page, on_invalid=q.on_invalid)
