"""Sources that would read the same thing twice: refused at config time.

Two ``type: redis`` sources on one host:port share their checkpoint keys and their metric
label, so every ACL LOG or SLOWLOG entry would be shipped twice and each poller would move
the other's cursor. ``check`` and ``run`` both refuse such a config, naming both sources.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def redis_endpoint(url: str) -> str:
    """``host:port`` of a Redis URL (no credentials), or a unix socket path."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    return f"{(parts.hostname or '127.0.0.1').lower()}:{port}"


def duplicate_redis_sources(sources: list[Any]) -> list[tuple[str, str]]:
    """``(key_path, reason)`` for each ``type: redis`` source on an endpoint an earlier one polls."""
    seen: dict[str, int] = {}
    problems: list[tuple[str, str]] = []
    for i, src in enumerate(sources):
        if getattr(src, "type", None) != "redis":
            continue
        endpoint = redis_endpoint(src.url)
        if endpoint in seen:
            problems.append((f"sources[{i}].url",
                             f"sources[{seen[endpoint]}] and sources[{i}] both poll {endpoint}: "
                             "they would ship every entry twice; keep one"))
        else:
            seen[endpoint] = i
    return problems
