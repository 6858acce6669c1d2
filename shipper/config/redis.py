"""Config of ``type: redis`` sources (owned by the poller)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Duration, SecretRefs, Strict
from .drop import DropRule


class PollConfig(Strict):
    enabled: bool = True
    interval: Duration = 10.0


class SlowlogConfig(PollConfig):
    interval: Duration = 1.0
    #: fastest the poller may go when the ring fills
    min_interval: Duration = 0.05
    #: none | keys | hash | drop -- AUTH/HELLO/MIGRATE/CONFIG SET secrets are redacted anyway
    redact: Literal["none", "keys", "hash", "drop"] = "keys"
    #: at most this many entries per SLOWLOG GET (bounded reply)
    max_entries: int = Field(default=1024, ge=1)


class TLSConfig(Strict):
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False
    server_name: str | None = None


class RedisPollSettings(SecretRefs):
    """How a Redis is polled, whatever gives its address: a ``type: redis`` source's URL, or a pod
    discovered by a ``type: kubernetes`` source (its ``poll:``)."""

    username: str | None = None
    password: str | None = None
    password_file: str | None = None
    password_env: str | None = None
    tls: TLSConfig | None = None
    #: socket connect/read timeout: short, so the poller never blocks on a sick Redis
    timeout: Duration = 2.0
    slowlog: SlowlogConfig = Field(default_factory=SlowlogConfig)
    latency: PollConfig = Field(default_factory=lambda: PollConfig(interval=10.0))
    acl_log: PollConfig = Field(default_factory=lambda: PollConfig(interval=10.0))
    config: PollConfig = Field(default_factory=lambda: PollConfig(interval=60.0))
    commandlog: PollConfig = Field(default_factory=lambda: PollConfig(interval=1.0))
    info: PollConfig = Field(default_factory=lambda: PollConfig(interval=10.0))
    #: CLUSTER INFO + CLUSTER SHARDS (NODES before 7.0) diffs; quiet on a Redis not in cluster mode
    cluster: PollConfig = Field(default_factory=lambda: PollConfig(interval=10.0))


class RedisSourceConfig(RedisPollSettings):
    type: Literal["redis"]
    url: str = "redis://127.0.0.1:6379"
    #: events not to ship (shipper/config/drop.py); counted, never a gap in the audit chain
    drop: list[DropRule] = Field(default_factory=list)
