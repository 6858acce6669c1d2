"""Build the sources and sinks a validated config names: ``file:``/``redis:``/``kubernetes:``
sources, ``file``/``local``/``loki``/``elasticsearch`` sinks."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from ..api import Sink, Source
from ..config import AgentConfig, ConfigError, named_sinks


def source_name(sc: Any) -> str:
    """The name (and audit stream) of a configured source: ``file:<path>``, ``redis:<url without
    secrets>``, ``kubernetes:<node>``."""
    if sc.type == "file":
        return f"file:{sc.path}"
    if sc.type == "redis":
        from ..sources.redis.client import safe_url

        return f"redis:{safe_url(sc.url)}"
    return f"{sc.type}:{getattr(sc, 'node', '')}"


def build_source(sc: Any, tz: tzinfo, *, name: str | None = None) -> Source:
    """The source for one validated ``sources:`` entry; ``name`` (its audit stream) defaults to
    one derived from the entry."""
    if sc.type == "file":
        from ..sources.files.source import FileSource

        return FileSource(sc, tz=tz, name=name or source_name(sc), rotate_wait=sc.rotate_wait,
                          idle_flush=sc.idle_flush, stale_after=sc.stale_after)
    if sc.type == "redis":
        from ..sources.redis.source import RedisSource

        return RedisSource(sc, name=name or source_name(sc))
    if sc.type == "kubernetes":
        from ..sources.kubernetes.source import KubernetesSource

        return KubernetesSource(sc, name=name or source_name(sc))
    raise ConfigError([("sources[].type", f"unknown source type {sc.type!r}")])  # pragma: no cover


def build_sources(cfg: AgentConfig, tz: tzinfo) -> list[Source]:
    """One source per ``sources:`` entry, in order."""
    return [build_source(sc, tz) for sc in cfg.sources]


def build_sinks(cfg: AgentConfig) -> list[Sink]:
    """One sink per configured sink, named, with the retry bounds the sink worker applies."""
    sinks: list[Sink] = []
    for name, sc in named_sinks(cfg):
        if sc.type == "file":
            from ..sinks.file import FileSink

            sink: Sink = FileSink(sc)
        elif sc.type == "local":
            from ..sinks.local import LocalSink

            sink = LocalSink(sc, state_dir=cfg.state_dir)
        elif sc.type == "loki":
            from ..sinks.loki import LokiSink

            sink = LokiSink(sc)
        elif sc.type == "elasticsearch":
            from ..sinks.elasticsearch import ElasticsearchSink

            sink = ElasticsearchSink(sc)
        else:  # pragma: no cover
            raise ConfigError([("sinks", f"unknown sink type {sc.type!r}")])
        sink.name = name
        retry = getattr(sc, "retry", None)
        if retry is not None:  # the runtime owns backoff: hand it the sink's configured bounds
            sink.retry_initial = retry.initial
            sink.retry_max = retry.max
        sinks.append(sink)
    return sinks
