"""The built-in sink types: ``file``, ``local``, ``loki``, ``elasticsearch``.

Each registration names the type's config model (imported here: the config union needs it) and
its other parts, imported when first used so that loading a config does not import every
sink's client library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config.sinks import ElasticsearchSinkConfig, FileSinkConfig, LocalSinkConfig, LokiSinkConfig
from . import SINKS, SinkType

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from ..api import Sink
    from ..audit.readers import Line, TrailQuery
    from ..commands.check import Report
    from ..config import AgentConfig


# ---- file
def _build_file(sc: FileSinkConfig, cfg: AgentConfig) -> Sink:
    from ..sinks.file import FileSink

    return FileSink(sc)


def _read_file(q: TrailQuery) -> Iterator[Line]:
    from ..audit.readers import trail_file

    return trail_file(q)


def _describe_file(key: str, sc: FileSinkConfig, cfg: AgentConfig, report: Report) -> str:
    from ..commands.check import describe_file_sink

    return describe_file_sink(key, sc, cfg, report)


# ---- local
def _build_local(sc: LocalSinkConfig, cfg: AgentConfig) -> Sink:
    from ..sinks.local import LocalSink

    return LocalSink(sc, state_dir=cfg.state_dir)


def _read_local(q: TrailQuery) -> Iterator[Line]:
    from ..audit.readers import trail_local

    return trail_local(q)


def _describe_local(key: str, sc: LocalSinkConfig, cfg: AgentConfig, report: Report) -> str:
    from ..commands.check import describe_local_sink

    return describe_local_sink(key, sc, cfg, report)


# ---- loki and elasticsearch (HTTP sinks: the same offline check and --connect probe)
def _build_loki(sc: LokiSinkConfig, cfg: AgentConfig) -> Sink:
    from ..sinks.loki import LokiSink

    return LokiSink(sc)


def _read_loki(q: TrailQuery) -> AsyncIterator[Line]:
    from ..audit.readers import trail_loki

    return trail_loki(q)


def _build_elasticsearch(sc: ElasticsearchSinkConfig, cfg: AgentConfig) -> Sink:
    from ..sinks.elasticsearch import ElasticsearchSink

    return ElasticsearchSink(sc)


def _read_elasticsearch(q: TrailQuery) -> AsyncIterator[Line]:
    from ..audit.readers import trail_elasticsearch

    return trail_elasticsearch(q)


def _describe_http(key: str, sc: Any, cfg: AgentConfig, report: Report) -> str:
    from ..commands.check import describe_http_sink

    return describe_http_sink(key, sc, cfg, report)


async def _probe_http(key: str, sc: Any, timeout: float, report: Report) -> None:
    from ..commands.check import check_sink

    await check_sink(key, sc, timeout, report)


SINKS.register(SinkType("file", FileSinkConfig, _build_file, _read_file, _describe_file, probe=None))
SINKS.register(SinkType("local", LocalSinkConfig, _build_local, _read_local, _describe_local, probe=None))
SINKS.register(SinkType("loki", LokiSinkConfig, _build_loki, _read_loki, _describe_http, _probe_http))
SINKS.register(SinkType("elasticsearch", ElasticsearchSinkConfig, _build_elasticsearch, _read_elasticsearch,
                        _describe_http, _probe_http))
