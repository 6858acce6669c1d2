"""Every self-metric of the agent, in one place (names ``redis_shipper_*``).

Components import the metric they update from here; nothing else defines metrics, so the
list below is the reference that deploy/ alert rules and dashboards are checked against.
Label values are low-cardinality by construction: a configured source/sink name, a file
path (bounded by the globs), a Redis URL without credentials.
"""

from __future__ import annotations

import platform
from importlib.metadata import PackageNotFoundError, version

from prometheus_client.metrics import Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.registry import CollectorRegistry

# no ``*_created`` series: one per labelled counter doubles what is scraped and stored for a
# value nobody queries (Prometheus 2.x keeps them as ordinary series)
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)


def package_version() -> str:
    try:
        return version("redis-shipper")
    except PackageNotFoundError:
        return "unknown"


BUILD_INFO = Gauge("redis_shipper_build_info", "Always 1: the agent's version and Python's, as labels",
                   ["version", "python"], registry=REGISTRY)
BUILD_INFO.labels(version=package_version(), python=platform.python_version()).set(1)

# --- sources: files
LINES_READ = Counter("redis_shipper_lines_read", "Log lines read from files", ["path"], registry=REGISTRY)
BYTES_READ = Counter("redis_shipper_bytes_read", "Bytes read from log files", ["path"], registry=REGISTRY)
FILE_LAG_BYTES = Gauge(
    "redis_shipper_file_lag_bytes", "Bytes in the file not yet committed to the spool", ["path"], registry=REGISTRY
)
DATA_GAPS = Counter(
    "redis_shipper_data_gaps", "Unrecoverable ranges of log data (data_gap events)", ["path"], registry=REGISTRY
)
DATA_GAP_BYTES = Counter(
    "redis_shipper_data_gap_bytes", "Bytes known lost in data gaps", ["path"], registry=REGISTRY
)
ROTATIONS = Counter("redis_shipper_file_rotations", "Rotations seen", ["path", "kind"], registry=REGISTRY)

# --- events
EVENTS = Counter(
    "redis_shipper_events", "Events produced, by source and category", ["source", "category"], registry=REGISTRY
)

EVENTS_DROPPED = Counter(
    "redis_shipper_events_dropped", "Events dropped by a source's drop: rules (counted in the audit chain too)",
    ["source", "rule"], registry=REGISTRY,
)

EVENTS_TRUNCATED = Counter(
    "redis_shipper_events_truncated", "Events cut to fit the smallest max_entry_bytes of the sinks",
    ["source"], registry=REGISTRY,
)
EVENTS_TRUNCATED_BYTES = Counter(
    "redis_shipper_events_truncated_bytes", "Bytes of canonical JSON cut from events to fit max_entry_bytes",
    ["source"], registry=REGISTRY,
)

# --- sources: redis poller
REDIS_UP = Gauge("redis_shipper_redis_up", "1 when the last poll of this Redis succeeded", ["redis"], registry=REGISTRY)
REDIS_POLL_ERRORS = Counter(
    "redis_shipper_redis_poll_errors", "Failed polls of a Redis, by kind", ["redis", "kind"], registry=REGISTRY
)
REDIS_LAST_POLL = Gauge(
    "redis_shipper_redis_last_success_timestamp_seconds",
    "Unix time of the last successful poll of a Redis, by poll kind",
    ["redis", "kind"],
    registry=REGISTRY,
)
SLOWLOG_LOST = Counter(
    "redis_shipper_slowlog_entries_lost", "Slowlog entries rotated out of the ring before they were read",
    ["redis"], registry=REGISTRY,
)
SLOWLOG_ENTRIES = Counter(
    "redis_shipper_slowlog_entries", "Slowlog entries shipped", ["redis"], registry=REGISTRY
)

# --- spool
SPOOL_BYTES = Gauge("redis_shipper_spool_bytes", "Bytes of events waiting in the spool", registry=REGISTRY)
SPOOL_EVENTS = Gauge("redis_shipper_spool_events", "Events waiting in the spool", registry=REGISTRY)
SPOOL_MAX_BYTES = Gauge("redis_shipper_spool_max_bytes", "Configured spool bound", registry=REGISTRY)
SPOOL_DROPPED = Counter(
    "redis_shipper_spool_dropped_events", "Events dropped because the spool was full (drop_oldest)",
    registry=REGISTRY,
)
SPOOL_BLOCKED_SECONDS = Counter(
    "redis_shipper_spool_blocked_seconds", "Time sources waited for room in the spool", registry=REGISTRY
)

# --- state_dir writes (shipper/pipeline/state_guard.py)
STATE_WRITE_ERRORS = Counter(
    "redis_shipper_state_write_errors", "State writes that failed on a full, failing or read-only disk, by component "
    "(spool, positions, a file sink)", ["component"], registry=REGISTRY,
)
STATE_DIR_FREE_BYTES = Gauge(
    "redis_shipper_state_dir_free_bytes", "Free bytes on the state_dir file system", registry=REGISTRY,
)

# --- sinks
SINK_SENT = Counter("redis_shipper_sink_sent_events", "Events acknowledged by a sink", ["sink"], registry=REGISTRY)
SINK_SENT_BYTES = Counter("redis_shipper_sink_sent_bytes", "Bytes acknowledged by a sink", ["sink"], registry=REGISTRY)
SINK_FAILED = Counter(
    "redis_shipper_sink_failed_requests", "Requests to a sink that failed (will be retried)", ["sink"],
    registry=REGISTRY,
)
SINK_RETRIED = Counter("redis_shipper_sink_retries", "Retries of a batch", ["sink"], registry=REGISTRY)
SINK_SPLIT_BATCHES = Counter(
    "redis_shipper_sink_split_batches", "Batches a sink refused with 413 (request too large), sent again in parts",
    ["sink"], registry=REGISTRY,
)
SINK_MAX_BATCH_BYTES = Gauge(
    "redis_shipper_sink_max_batch_bytes", "A sink's batch bound in bytes (lowered after a 413)",
    ["sink"], registry=REGISTRY,
)
SINK_DEAD_LETTERED = Counter(
    "redis_shipper_sink_dead_lettered_events", "Events a sink refused for good, written to the dead-letter file",
    ["sink"], registry=REGISTRY,
)
SINK_DUPLICATES = Counter(
    "redis_shipper_sink_duplicate_events", "Events the sink already had (Elasticsearch 409)", ["sink"],
    registry=REGISTRY,
)
SINK_LAG_EVENTS = Gauge(
    "redis_shipper_sink_pending_events", "Events in the spool not yet acknowledged by this sink", ["sink"],
    registry=REGISTRY,
)
SINK_LAST_SUCCESS = Gauge(
    "redis_shipper_sink_last_success_timestamp_seconds", "Unix time of the last acknowledged batch", ["sink"],
    registry=REGISTRY,
)
SINK_LATENCY = Histogram(
    "redis_shipper_sink_request_seconds", "Duration of sink requests", ["sink"], registry=REGISTRY,
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# --- offload process (shipper/pipeline/offload.py)
OFFLOAD_RUNNING = Gauge(
    "redis_shipper_offload_running", "1 while the second process that builds sink bodies runs", registry=REGISTRY
)
OFFLOAD_BATCHES = Counter(
    "redis_shipper_offload_batches", "Sink batches read and encoded by the offload process", registry=REGISTRY
)
OFFLOAD_FAILURES = Counter(
    "redis_shipper_offload_failures",
    "Times the offload process failed or could not build a batch (the agent built it itself)", registry=REGISTRY,
)

# --- labels
LABEL_DISCOVERY_ERRORS = Counter(
    "redis_shipper_label_discovery_errors",
    "Failed label discoveries, by kind (redis, prometheus, no_series, timeout)", ["redis", "kind"], registry=REGISTRY,
)
LABEL_DISCOVERY_UP = Gauge(
    "redis_shipper_label_discovery_up", "1 when the last label discovery for this Redis succeeded", ["redis"],
    registry=REGISTRY,
)
LABEL_DISCOVERY_LAST_SUCCESS = Gauge(
    "redis_shipper_label_discovery_last_success_timestamp_seconds",
    "Unix time the labels were last confirmed by Prometheus", ["redis"], registry=REGISTRY,
)

# --- kubernetes discovery (shipper/sources/kubernetes/)
KUBERNETES_API_ERRORS = Counter(
    "redis_shipper_kubernetes_api_errors", "Failed list/watch requests to the Kubernetes API", ["source"],
    registry=REGISTRY,
)
KUBERNETES_WATCH_EXPIRED = Counter(
    "redis_shipper_kubernetes_watch_expired", "Watches answered 410 Gone (the pods were listed again)", ["source"],
    registry=REGISTRY,
)
KUBERNETES_TARGETS = Gauge(
    "redis_shipper_kubernetes_targets", "Redis containers followed on this node", ["source"], registry=REGISTRY,
)
