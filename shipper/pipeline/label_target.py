"""One Redis whose ``run_id`` selects the labels of its events, and its discovery state.

Why a module of its own: a target is the unit the :class:`~shipper.pipeline.labels.Labeler`
creates (one per configured ``type: redis`` source, one per discovered pod), refreshes in its
own task and releases; this module holds that record and the Redis connection it reads
``INFO server`` from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from shipper.config import RedisSourceConfig
from shipper.observe import metrics

log = logging.getLogger("shipper.labels")

#: the client name of the label discovery's INFO connection (CLIENT LIST, SLOWLOG)
LABELS_CLIENT_NAME = "redis-shipper-labels"



@dataclass
class LabelTarget:
    """One polled Redis: its fallback labels, what discovery found, and the merged result."""

    index: int  # position in cfg.sources; -1 for a target added at run time
    source: RedisSourceConfig | None
    base: dict[str, str]
    merged: dict[str, str]
    name: str = ""  # redacted URL, for logs and metric labels
    run_id: str | None = None
    discovered: dict[str, str] = field(default_factory=dict)
    last_success: float | None = None
    errors: int = 0
    last_error: str | None = None
    warned: set[str] = field(default_factory=set)
    # job/instance set in `labels:` by the user; once a series has carried one of them it is
    # the user's choice of job, and a series without it is not adopted (see Labeler.refresh)
    pinned: dict[str, str] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)
    #: its refresh loop, and its redis.asyncio client for INFO (both made by start/add_target)
    task: asyncio.Task[None] | None = None
    client: Any = None
    #: the error kinds counted for it (their metric series go when the target goes)
    error_kinds: set[str] = field(default_factory=set)

    def record_success(self) -> None:
        """Prometheus confirmed the labels: note when, and say so once after trouble."""
        self.last_success = time.time()
        if self.last_error is not None:
            log.info("label discovery for %s recovered", self.name)
        self.last_error = None
        metrics.LABEL_DISCOVERY_LAST_SUCCESS.labels(self.name).set(self.last_success)
        metrics.LABEL_DISCOVERY_UP.labels(self.name).set(1)

    def record_failure(self, kind: str, message: str, secrets: set[str]) -> bool:
        """Keep the last good labels; log once per change of trouble, count every time.
        ``secrets`` are masked in the message. Returns False (the round's outcome)."""
        self.errors += 1
        self.error_kinds.add(kind)
        for secret in secrets:
            message = message.replace(secret, "***")
        if message != self.last_error:
            log.warning("%s; keeping labels %s", message, self.merged)
        self.last_error = message
        metrics.LABEL_DISCOVERY_ERRORS.labels(self.name, kind).inc()
        metrics.LABEL_DISCOVERY_UP.labels(self.name).set(0)
        return False

    async def release(self) -> None:
        """Cancel and await the refresh loop, close the Redis connection (never raises)."""
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    def forget_metrics(self) -> None:
        """Remove this target's metric series (a pod that is gone has no health to report)."""
        for gauge in (metrics.LABEL_DISCOVERY_UP, metrics.LABEL_DISCOVERY_LAST_SUCCESS):
            with contextlib.suppress(KeyError):
                gauge.remove(self.name)
        for kind in self.error_kinds:
            with contextlib.suppress(KeyError):
                metrics.LABEL_DISCOVERY_ERRORS.remove(self.name, kind)


def redis_client(src: RedisSourceConfig) -> Any:
    """A redis.asyncio client with the source's auth, TLS and timeout (the poller's rules).

    Why not the poller's connection: labels must work (and be tested) on their own, and a second
    connection for one INFO per ``refresh`` costs nothing.
    """
    import redis.asyncio as aioredis

    from shipper.sources.redis.client import connection_pool

    return aioredis.Redis.from_pool(connection_pool(src, client_name=LABELS_CLIENT_NAME, decode_responses=True))


def describe_error(e: BaseException) -> str:
    """An exception as one short line (timeouts have an empty str())."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
