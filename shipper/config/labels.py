"""Config of labels and their discovery from Prometheus (owned by shipper/pipeline/labels.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Duration, Strict


class DiscoverLabelsConfig(Strict):
    prometheus_url: str
    copy_labels: list[str] = Field(
        default_factory=lambda: ["instance", "job"], alias="copy"
    )
    #: the metric whose labels are adopted; its run_id label must equal the polled Redis's
    metric: str = "redis_instance_info"
    refresh: Duration = 60.0
    timeout: Duration = 5.0


InstancePreset = Literal["multi-target", "sidecar", "pod", "hostname"]
