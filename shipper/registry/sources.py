"""The built-in source types: ``file``, ``redis``, ``kubernetes``.

As for sinks (shipper/registry/sinks.py): the config model is imported here, the other parts
when first used.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from ..config.files import FileSourceConfig
from ..config.kubernetes import KubernetesSourceConfig
from ..config.redis import RedisSourceConfig
from . import SOURCES, Lazy, SourceType

if TYPE_CHECKING:
    from ..api import Source


def _named(target: str) -> Callable[[Any, tzinfo, str], Source]:
    """The factory of a source class that takes its config and its name (no time zone: its
    events carry their own)."""
    cls = Lazy(target)
    return lambda sc, tz, name: cls(sc, name=name)


def _build_file(sc: FileSourceConfig, tz: tzinfo, name: str) -> Source:
    from ..sources.files.source import FileSource

    return FileSource(sc, tz=tz, name=name, rotate_wait=sc.rotate_wait, idle_flush=sc.idle_flush,
                      stale_after=sc.stale_after)


def _redis_name(sc: RedisSourceConfig) -> str:
    from ..sources.redis.client import safe_url

    return f"redis:{safe_url(sc.url)}"


SOURCES.register(SourceType(
    "file", FileSourceConfig,
    build=_build_file,
    stream_name=lambda sc: f"file:{sc.path}",
    describe=Lazy("shipper.commands.check:describe_file_source"),
    probe=None,
))
SOURCES.register(SourceType(
    "redis", RedisSourceConfig,
    build=_named("shipper.sources.redis.source:RedisSource"),
    stream_name=_redis_name,
    describe=Lazy("shipper.commands.check:describe_redis_source"),
    probe=Lazy("shipper.commands.check_connect:check_redis"),
))
SOURCES.register(SourceType(
    "kubernetes", KubernetesSourceConfig,
    build=_named("shipper.sources.kubernetes.source:KubernetesSource"),
    stream_name=lambda sc: f"kubernetes:{sc.node}",
    describe=Lazy("shipper.commands.check:describe_kubernetes_source"),
    probe=Lazy("shipper.commands.check_connect:check_kubernetes"),
))
