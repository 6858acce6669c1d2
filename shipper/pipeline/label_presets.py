"""The labels of a Redis known without asking Prometheus: ``instance_preset`` and ``${ENV}`` templates.

What :mod:`shipper.pipeline.labels` ships before discovery answers, and all that a config without
``discover_labels`` ships: the ``instance`` each common way of scraping redis_exporter gives, and
the static labels with their templates expanded. Pure functions of the config, the environment and
the host name (no I/O), so ``redis-shipper check`` and the tests can call them freely.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

#: redis_exporter's default ``--web.listen-address`` port
EXPORTER_PORT = 9121
#: the same grammar as the config loader's ``${VAR}`` / ``${VAR:-default}``
_TEMPLATE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "::", ""}


def expand_template(value: str, env: Mapping[str, str], hostname: str, key: str) -> str:
    """Expand ``${VAR}`` / ``${VAR:-default}``; ``${HOSTNAME}`` falls back to the host name.

    Raises :class:`ValueError` naming the label when a variable is unset and has no default:
    shipping a literal ``${POD_IP}`` as a label would silently break the Grafana jump.
    """

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        if name == "HOSTNAME":
            return hostname
        raise ValueError(f"{key}: environment variable {name} is not set (use ${{{name}:-default}})")

    return _TEMPLATE.sub(sub, value)


@dataclass(frozen=True)
class RedisAddress:
    """Where a ``type: redis`` source points: enough to rebuild the scrape target's spelling."""

    scheme: str  # redis | rediss | unix
    host: str  # "" for unix sockets
    port: int
    path: str = ""  # unix socket path

    @property
    def hostport(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def target(self) -> str:
        """The spelling redis_exporter's README uses for multi-target scrape targets."""
        if self.scheme == "unix":
            return f"unix://{self.path}"
        return f"{self.scheme}://{self.hostport}"


def parse_redis_url(url: str) -> RedisAddress:
    """Scheme, host and port of a Redis URL, credentials and db dropped.

    ``redis://user:secret@db1:6380/2`` -> ``RedisAddress("redis", "db1", 6380)``. A URL without
    a port gets 6379, as redis-py and redis_exporter assume.
    """
    parts: SplitResult = urlsplit(url if "://" in url else f"redis://{url}")
    scheme = (parts.scheme or "redis").lower()
    if scheme == "unix":
        return RedisAddress("unix", "", 0, unquote(parts.path))
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    return RedisAddress(scheme, (parts.hostname or "127.0.0.1").lower(), port)


def preset_instance(
    preset: str, redis: RedisAddress | None, env: Mapping[str, str], hostname: str
) -> str:
    """The ``instance`` Prometheus assigns under each common way of scraping redis_exporter.

    * ``multi-target``: the README's ``/scrape`` job relabels ``__address__`` -> ``__param_target``
      -> ``instance``, so instance is the target as written: ``redis://host:port``. We rebuild it
      from the polled Redis's URL (credentials and db dropped, ``rediss`` kept for TLS).
    * ``sidecar``: instance is the exporter's ``__address__``, ``<host>:9121``. The exporter runs
      next to Redis, so its host is Redis's host; when we reach Redis over loopback we use
      ``$POD_IP`` (what Kubernetes pod discovery puts in ``__address__``) or the host name.
    * ``pod``: ``$POD_NAME`` (the README's ``__meta_kubernetes_pod_name`` relabel); a pod's host
      name is its name, so the host name is the fallback.
    * ``hostname``: the kernel's host name, like Alloy's ``constants.hostname`` (Go's os.Hostname).
    """
    if preset == "multi-target":
        if redis is None:
            raise ValueError(
                "instance_preset multi-target needs a `type: redis` source (its URL gives host:port); "
                "otherwise set labels.instance"
            )
        return redis.target
    if preset == "sidecar":
        if redis is not None and redis.scheme != "unix" and redis.host not in _LOOPBACK:
            host = redis.host
        else:
            host = env.get("POD_IP") or hostname
        host = f"[{host}]" if ":" in host else host
        return f"{host}:{EXPORTER_PORT}"
    if preset == "pod":
        return env.get("POD_NAME") or hostname
    if preset == "hostname":
        return hostname
    raise ValueError(f"unknown instance_preset {preset!r}")
