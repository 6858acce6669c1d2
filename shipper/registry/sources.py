"""The built-in source types: ``file``, ``redis``, ``kubernetes``.

As for sinks (shipper/registry/sinks.py): the config model is imported here, the other parts
when first used.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING

from ..config.files import FileSourceConfig
from ..config.kubernetes import KubernetesSourceConfig
from ..config.redis import RedisSourceConfig
from . import SOURCES, SourceType

if TYPE_CHECKING:
    from ..api import Source
    from ..commands.check import Report
    from ..config import AgentConfig


# ---- file
def _build_file(sc: FileSourceConfig, tz: tzinfo, name: str) -> Source:
    from ..sources.files.source import FileSource

    return FileSource(sc, tz=tz, name=name, rotate_wait=sc.rotate_wait, idle_flush=sc.idle_flush,
                      stale_after=sc.stale_after)


def _file_name(sc: FileSourceConfig) -> str:
    return f"file:{sc.path}"


def _describe_file(key: str, sc: FileSourceConfig, cfg: AgentConfig, report: Report) -> str:
    from ..commands.check import describe_file_source

    return describe_file_source(key, sc, cfg, report)


# ---- redis
def _build_redis(sc: RedisSourceConfig, tz: tzinfo, name: str) -> Source:
    from ..sources.redis.source import RedisSource

    return RedisSource(sc, name=name)


def _redis_name(sc: RedisSourceConfig) -> str:
    from ..sources.redis.client import safe_url

    return f"redis:{safe_url(sc.url)}"


def _describe_redis(key: str, sc: RedisSourceConfig, cfg: AgentConfig, report: Report) -> str:
    from ..commands.check import describe_redis_source

    return describe_redis_source(key, sc, cfg, report)


async def _probe_redis(key: str, sc: RedisSourceConfig, timeout: float, report: Report) -> str | None:
    from ..commands.check import check_redis

    return await check_redis(key, sc, timeout, report)


# ---- kubernetes
def _build_kubernetes(sc: KubernetesSourceConfig, tz: tzinfo, name: str) -> Source:
    from ..sources.kubernetes.source import KubernetesSource

    return KubernetesSource(sc, name=name)


def _kubernetes_name(sc: KubernetesSourceConfig) -> str:
    return f"kubernetes:{sc.node}"


def _describe_kubernetes(key: str, sc: KubernetesSourceConfig, cfg: AgentConfig, report: Report) -> str:
    from ..commands.check import describe_kubernetes_source

    return describe_kubernetes_source(key, sc, cfg, report)


async def _probe_kubernetes(key: str, sc: KubernetesSourceConfig, timeout: float, report: Report) -> None:
    from ..commands.check import check_kubernetes

    await check_kubernetes(key, sc, timeout, report)


SOURCES.register(SourceType("file", FileSourceConfig, _build_file, _file_name, _describe_file, probe=None))
SOURCES.register(SourceType("redis", RedisSourceConfig, _build_redis, _redis_name, _describe_redis, _probe_redis))
SOURCES.register(SourceType("kubernetes", KubernetesSourceConfig, _build_kubernetes, _kubernetes_name,
                            _describe_kubernetes, _probe_kubernetes))
