"""The built-in sink types: ``file``, ``local``, ``loki``, ``elasticsearch``.

Each registration names the type's config model (imported here: the config union needs it) and
its other parts, imported when first used (:class:`Lazy`) so that loading a config does not
import every sink's client library.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..config.sinks import ElasticsearchSinkConfig, FileSinkConfig, LocalSinkConfig, LokiSinkConfig
from . import SINKS, Lazy, SinkType

if TYPE_CHECKING:
    from ..api import Sink
    from ..config import AgentConfig

#: the HTTP sinks share their offline check and their --connect probe
_DESCRIBE_HTTP = Lazy("shipper.commands.check:describe_http_sink")
_PROBE_HTTP = Lazy("shipper.commands.check_connect:check_sink")


def _of_config(target: str) -> Callable[[Any, AgentConfig], Sink]:
    """The factory of a sink class that takes its config alone."""
    cls = Lazy(target)
    return lambda sc, cfg: cls(sc)


def _build_local(sc: LocalSinkConfig, cfg: AgentConfig) -> Sink:
    from ..sinks.local import LocalSink

    return LocalSink(sc, state_dir=cfg.state_dir)


SINKS.register(SinkType("file", FileSinkConfig, _of_config("shipper.sinks.file:FileSink"),
                        Lazy("shipper.audit.trails:trail_file"),
                        Lazy("shipper.commands.check:describe_file_sink"), probe=None))
SINKS.register(SinkType("local", LocalSinkConfig, _build_local, Lazy("shipper.audit.trails:trail_local"),
                        Lazy("shipper.commands.check:describe_local_sink"), probe=None))
SINKS.register(SinkType("loki", LokiSinkConfig, _of_config("shipper.sinks.loki:LokiSink"),
                        Lazy("shipper.audit.trails:trail_loki"), _DESCRIBE_HTTP, _PROBE_HTTP))
SINKS.register(SinkType("elasticsearch", ElasticsearchSinkConfig,
                        _of_config("shipper.sinks.elasticsearch:ElasticsearchSink"),
                        Lazy("shipper.audit.trails:trail_elasticsearch"), _DESCRIBE_HTTP, _PROBE_HTTP))
