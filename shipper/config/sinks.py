"""Config of sinks (owned by the sinks)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shipper.sinks.limits import (
    ELASTICSEARCH_MAX_ENTRY_BYTES,
    FILE_MAX_ENTRY_BYTES,
    LOKI_MAX_ENTRY_BYTES,
    MIN_ENTRY_BYTES,
)

from .base import Duration, SecretRefs, Size, Strict
from .redis import TLSConfig

#: the most canonical JSON bytes one event may take in this sink (shipper/sinks/limits.py)
EntrySize = Annotated[Size, Field(ge=MIN_ENTRY_BYTES)]


class BatchConfig(Strict):
    max_bytes: Size = 1 << 20
    #: the agent's p99 freshness at a steady rate is max_wait + ~45 ms (bench/freshness_budget.py),
    #: and Loki's live tail adds up to 0.5 s of its own (its querier sleeps 0.5 s when it has
    #: nothing to send): 0.25 s keeps the tail's p99 under 1 s. The price: up to 4 requests/s
    #: instead of 2 while batches do not fill (docs/performance.md). A quiet input does not wait
    #: this long (shipper/pipeline/sink_worker.py, ``SinkWorker.QUIET``)
    max_wait: Duration = 0.25


class RetryConfig(Strict):
    initial: Duration = 0.5
    max: Duration = 30.0
    #: request timeout
    timeout: Duration = 10.0


class BasicAuth(SecretRefs):
    username: str
    password: str | None = None
    password_file: str | None = None
    password_env: str | None = None


class FileSinkConfig(Strict):
    type: Literal["file"]
    path: str
    max_entry_bytes: EntrySize = FILE_MAX_ENTRY_BYTES


class LocalSinkConfig(Strict):
    """The embedded default: rotated JSON Lines under state_dir/events/."""

    type: Literal["local"]
    dir: str | None = None  # default: <state_dir>/events
    max_file_bytes: Size = 64 << 20
    retention: Duration = 7 * 86400.0
    max_total_bytes: Size = 1 << 30
    max_entry_bytes: EntrySize = FILE_MAX_ENTRY_BYTES


class LokiSinkConfig(SecretRefs):
    type: Literal["loki"]
    url: str
    tenant: str | None = None
    basic_auth: BasicAuth | None = None
    bearer_token_file: str | None = None
    bearer_token_env: str | None = None
    tls: TLSConfig | None = None
    encoding: Literal["json", "protobuf"] = "json"  # measured: less CPU and fewer bytes (docs/sinks.md)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    structured_metadata: bool = True
    #: event keys promoted to stream labels (beside the configured labels); keep them few
    stream_labels: list[str] = Field(default_factory=lambda: ["source", "level"])
    #: the server's limits_config.max_line_size (Loki's default 256KB = 262,144 bytes)
    max_entry_bytes: EntrySize = LOKI_MAX_ENTRY_BYTES


class ElasticsearchSinkConfig(SecretRefs):
    type: Literal["elasticsearch"]
    url: str
    #: data stream or index name
    index: str = "logs-redis.events-default"
    data_stream: bool = True
    api_key: str | None = None
    api_key_file: str | None = None
    api_key_env: str | None = None
    basic_auth: BasicAuth | None = None
    tls: TLSConfig | None = None
    batch: BatchConfig = Field(default_factory=BatchConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    max_entry_bytes: EntrySize = ELASTICSEARCH_MAX_ENTRY_BYTES
