"""Build the sources and sinks a validated config names, each by its type's registered factory
(shipper/registry/: ``file``/``redis``/``kubernetes`` sources, ``file``/``local``/``loki``/
``elasticsearch`` sinks)."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from ..api import Sink, Source
from ..config import AgentConfig, named_sinks
from ..registry import SINKS, SOURCES


def source_name(sc: Any) -> str:
    """The name (and audit stream) of a configured source, as its type derives it: ``file:<path>``,
    ``redis:<url without secrets>``, ``kubernetes:<node>``."""
    return SOURCES.get(sc.type).stream_name(sc)


def build_source(sc: Any, tz: tzinfo, *, name: str | None = None) -> Source:
    """The source for one validated ``sources:`` entry; ``name`` (its audit stream) defaults to
    one derived from the entry."""
    kind = SOURCES.get(sc.type)
    return kind.build(sc, tz, name or kind.stream_name(sc))


def build_sources(cfg: AgentConfig, tz: tzinfo) -> list[Source]:
    """One source per ``sources:`` entry, in order."""
    return [build_source(sc, tz) for sc in cfg.sources]


def build_sinks(cfg: AgentConfig) -> list[Sink]:
    """One sink per configured sink, named, with the retry bounds the sink worker applies."""
    sinks: list[Sink] = []
    for name, sc in named_sinks(cfg):
        sink = SINKS.get(sc.type).build(sc, cfg)
        sink.name = name
        retry = getattr(sc, "retry", None)
        if retry is not None:  # the runtime owns backoff: hand it the sink's configured bounds
            sink.retry_initial = retry.initial
            sink.retry_max = retry.max
        sinks.append(sink)
    return sinks
