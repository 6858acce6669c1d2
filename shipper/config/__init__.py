"""Load and validate the agent's YAML config.

Every error names its key path and the reason (``sources[0].path: field required``), unknown
keys get a did-you-mean, ``${ENV}`` forms are expanded in every string (config/env.py), and
secrets come from files or env vars. :class:`ConfigError` carries all errors at once, so
``redis-shipper check`` can print them together and exit 2.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import Field, ValidationError

from ..registry import SINKS, SOURCES
from ..registry import sinks as _builtin_sinks  # noqa: F401 - registers the built-in sink types
from ..registry import sources as _builtin_sources  # noqa: F401 - registers the built-in source types
from .base import Duration, Size, Strict, parse_duration, parse_size, read_secret
from .conflicts import duplicate_redis_sources
from .env import expand_env  # ${VAR} semantics: shipper/config/env.py
from .files import FileSourceConfig
from .kubernetes import KubernetesSourceConfig
from .labels import DiscoverLabelsConfig
from .redis import RedisSourceConfig, TLSConfig
from .sinks import (
    BasicAuth,
    ElasticsearchSinkConfig,
    FileSinkConfig,
    LocalSinkConfig,
    LokiSinkConfig,
)

__all__ = [
    "AgentConfig",
    "BasicAuth",
    "ConfigError",
    "Duration",
    "ElasticsearchSinkConfig",
    "FileSinkConfig",
    "FileSourceConfig",
    "KubernetesSourceConfig",
    "LocalSinkConfig",
    "LokiSinkConfig",
    "RedisSourceConfig",
    "Size",
    "TLSConfig",
    "load_config",
    "named_sinks",
    "parse_config",
    "parse_duration",
    "parse_size",
    "read_secret",
]

def _union(models: tuple[type[Strict], ...]) -> Any:
    """The discriminated union (on ``type:``) of a registry's config models."""
    return Annotated[Union[models], Field(discriminator="type")]  # noqa: UP007 - a tuple of models


#: every registered source/sink type's config (shipper/registry/): the union the config validates
SourceConfig: Any = _union(SOURCES.models())
SinkConfig: Any = _union(SINKS.models())


class SpoolConfig(Strict):
    #: at least 1 MiB: a smaller spool cannot hold one sink batch, so the agent would only block.
    #: The default holds a 10-minute sink outage at 1,000 events/s (docs/operations.md#sizing)
    max_bytes: Annotated[Size, Field(ge=1 << 20)] = 512 << 20
    #: what a full spool does: block the sources (default, nothing lost) or drop the oldest (counted)
    when_full: Literal["block", "drop_oldest"] = "block"


class MetricsConfig(Strict):
    #: host:port of /metrics, /healthz, /ready; loopback unless you say otherwise; "" disables
    listen: str = "127.0.0.1:9377"


class ReadyConfig(Strict):
    #: /ready is 503 naming a sink that has had events waiting this long without acknowledging any
    stall_after: Annotated[Duration, Field(gt=0)] = 60.0
    #: /ready is 503 naming a sink whose deliveries have failed for this long (rides out a restart
    #: of Loki or Elasticsearch); the reason names the last error
    sink_failure_grace: Annotated[Duration, Field(ge=0)] = 60.0


class AuditConfig(Strict):
    #: seconds between ``chain_anchor`` events (every stream's head) while streams move; 0 disables
    anchor_interval: Duration = 300.0


class OffloadConfig(Strict):
    #: ``auto``: while a sink has a full batch waiting and the sources are busy (a backfill, a
    #: burst: see ``min_input_rate``), a second process reads it from the spool and builds the
    #: request body, so the agent uses two cores; ``off``: one process always
    mode: Literal["auto", "off"] = "auto"
    #: the second process starts only while the sources append at least this many events/s
    #: (0: whenever a full batch waits). Below it, a sink catching up alone (after an outage) is
    #: served by the agent itself, which one core is enough for, at ~30 MB less RSS
    min_input_rate: float = Field(default=5000.0, ge=0)
    #: the second process exits after this long without work (an idle agent is one process)
    idle_stop: Duration = 30.0


class AgentConfig(Strict):
    state_dir: str = "./state"
    #: zone of Redis's local timestamps (IANA name); default: the host's zone
    timezone: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    #: how ``instance`` is derived when labels do not set it
    instance_preset: Literal["multi-target", "sidecar", "pod", "hostname"] | None = None
    discover_labels: DiscoverLabelsConfig | None = None
    sources: list[SourceConfig] = Field(default_factory=list)
    sinks: list[SinkConfig] = Field(default_factory=list)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    ready: ReadyConfig = Field(default_factory=ReadyConfig)
    #: on SIGTERM, how long to keep flushing the spool to the sinks before exiting
    shutdown_timeout: Duration = 10.0
    audit: AuditConfig = Field(default_factory=AuditConfig)
    offload: OffloadConfig = Field(default_factory=OffloadConfig)
    log_level: Literal["debug", "info", "warning", "error"] = "info"


def named_sinks(cfg: AgentConfig) -> list[tuple[str, Any]]:
    """(name, config) of each sink as the agent names them: the type, then ``loki2``, ``loki3``...

    No sink configured means the embedded local sink. Sink names key the spool cursors, the
    dead-letter files and the metrics, so the runtime and ``verify`` must agree on them.
    """
    specs: list[Any] = list(cfg.sinks) or [LocalSinkConfig(type="local")]
    counts: dict[str, int] = {}
    out: list[tuple[str, Any]] = []
    for sc in specs:
        counts[sc.type] = counts.get(sc.type, 0) + 1
        out.append((sc.type if counts[sc.type] == 1 else f"{sc.type}{counts[sc.type]}", sc))
    return out


class ConfigError(Exception):
    """One or more config problems, each ``(key_path, reason)``."""

    def __init__(self, problems: list[tuple[str, str]], source: str = "config"):
        self.problems = problems
        self.source = source
        super().__init__("\n".join(f"{source}: {k}: {r}" if k else f"{source}: {r}" for k, r in problems))


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _model_for(loc: tuple[Any, ...]) -> type[Strict] | None:
    """Find the model class at a pydantic error location, to suggest known keys."""
    model: Any = AgentConfig
    prev: Any = None
    for part in loc:
        if isinstance(part, int) or model is None:
            prev = part
            continue
        if isinstance(prev, int) and part in _TAGS:
            model = _TAGS[part](loc)
            prev = part
            continue
        prev = part
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return model
        ann = fields[part].annotation
        model = _unwrap_model(ann)
    return model


class _Tags:
    """``type:`` tag -> the model at an error location under ``sources:`` or ``sinks:``."""

    def __contains__(self, tag: object) -> bool:
        return isinstance(tag, str) and (tag in SOURCES.names() or tag in SINKS.names())

    def __getitem__(self, tag: str) -> Any:
        def model(loc: tuple[Any, ...]) -> Any:
            family = SOURCES if loc and loc[0] == "sources" else SINKS
            return family.get(tag).config if tag in family.names() else None
        return model


_TAGS = _Tags()


def _rebuild_unions() -> None:
    """A type registered after start-up (a test's toy sink): the config accepts it from now on."""
    global SourceConfig, SinkConfig
    SourceConfig, SinkConfig = _union(SOURCES.models()), _union(SINKS.models())
    for field, union in (("sources", SourceConfig), ("sinks", SinkConfig)):
        AgentConfig.__annotations__[field] = list[union]
        AgentConfig.model_fields[field].annotation = list[union]
    AgentConfig.model_rebuild(force=True)


SOURCES.on_change(_rebuild_unions)
SINKS.on_change(_rebuild_unions)


def _unwrap_model(ann: Any) -> Any:
    """The first pydantic model inside an annotation (list[...], Optional, Annotated, unions)."""
    if isinstance(ann, type) and hasattr(ann, "model_fields"):
        return ann
    for sub in (*getattr(ann, "__args__", ()), getattr(ann, "__origin__", None)):
        if sub is not None and sub is not ann:
            found = _unwrap_model(sub)
            if found is not None:
                return found
    return None


def _format_errors(err: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for e in err.errors():
        loc = list(e["loc"])
        # drop discriminator tags from the path: sources.0.file.path -> sources[0].path
        path = ""
        for i, part in enumerate(loc):
            if isinstance(part, int):
                path += f"[{part}]"
            elif i > 0 and isinstance(loc[i - 1], int) and part in _TAGS:
                pass
            else:
                path = _join(path, part)
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            model = _model_for(tuple(loc[:-1]))
            known = list(getattr(model, "model_fields", {}).keys()) if model else []
            aliases = [f.alias for f in getattr(model, "model_fields", {}).values() if f.alias] if model else []
            close = difflib.get_close_matches(str(loc[-1]), known + aliases, n=1)
            msg = "unknown key" + (f" (did you mean '{close[0]}'?)" if close else "")
            if known:
                msg += f"; known keys: {', '.join(sorted(set(aliases) | set(known) - {'copy_labels'}))}"
        elif e["type"] == "union_tag_invalid":
            msg = f"unknown type {e.get('input', {}).get('type')!r}" if isinstance(e.get("input"), dict) else msg
            msg += "; expected one of " + str(e.get("ctx", {}).get("expected_tags", ""))
        elif e["type"] == "union_tag_not_found":
            msg = "missing 'type' key"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        problems.append((path, msg))
    return problems


def parse_config(data: Any, source: str = "config") -> AgentConfig:
    """Validate an already-loaded YAML tree; raise :class:`ConfigError` with every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([("", "the top level must be a mapping of keys")], source)
    missing: list[tuple[str, str]] = []
    data = expand_env(data, "", missing)
    try:
        cfg = AgentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(missing + _format_errors(err), source) from None
    missing += duplicate_redis_sources(cfg.sources)
    if missing:
        raise ConfigError(missing, source)
    return cfg


def load_config(path: str | os.PathLike[str]) -> AgentConfig:
    """Read, expand and validate a YAML config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([("", f"cannot read {str(p)!r}: {e.strerror}")], str(p)) from None
    except UnicodeDecodeError as e:
        raise ConfigError([("", f"not UTF-8 text: {e}")], str(p)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError([("", f"invalid YAML: {where}{getattr(e, 'problem', e)}")], str(p)) from None
    return parse_config(data, str(p))
