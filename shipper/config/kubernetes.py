"""Config of ``type: kubernetes`` sources (owned by shipper/sources/kubernetes/).

A kubernetes source produces no events of its own beyond discovery notices: it watches the pods
scheduled on its node and, for each Redis/Valkey/Sentinel container, runs a file source on the
container's kubelet log files and (with ``poll``) a Redis poller on the pod's IP.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import Duration, Strict
from .drop import DropRule
from .redis import RedisPollSettings


class KubernetesPollConfig(RedisPollSettings):
    """The Redis poller run against each discovered pod: ``<scheme>://<podIP>:<port>``.

    The same settings as a ``type: redis`` source, without its URL (the pod's IP is the host).
    """

    port: int = Field(default=6379, ge=1, le=65535)
    scheme: Literal["redis", "rediss"] = "redis"


class KubernetesSourceConfig(Strict):
    type: Literal["kubernetes"]
    #: the node whose pods are followed (in a DaemonSet: ``${NODE_NAME}`` from the downward API)
    node: str
    #: a label selector (``app.kubernetes.io/name in (redis,valkey)``); empty: every pod of the node,
    #: its containers chosen by ``images``
    selector: str = ""
    #: shell-style patterns of the container images that are Redis, Valkey or Sentinel
    images: list[str] = Field(default_factory=lambda: ["*redis*", "*valkey*"])
    #: images that match ``images`` but are not a Redis: the exporter sidecar is ``oliver006/redis_exporter``
    exclude_images: list[str] = Field(default_factory=lambda: ["*redis_exporter*", "*redis-exporter*"])
    #: where the kubelet writes container logs
    log_root: str = "/var/log/pods"
    #: out of the cluster only; in a pod the service account's token and CA are used
    kubeconfig: str | None = None
    #: in a pod: the service account's token, CA and namespace (a projected token may live elsewhere)
    service_account_dir: str = "/var/run/secrets/kubernetes.io/serviceaccount"
    #: how ``instance`` is derived for a pod's events when ``labels`` do not set it:
    #: ``sidecar`` = ``<podIP>:9121`` (redis_exporter beside Redis in the pod, scraped by pod
    #: discovery), ``multi-target`` = ``redis://<podIP>:<port>``, ``pod`` = the pod's name
    instance_preset: Literal["sidecar", "multi-target", "pod"] = "sidecar"
    #: pod labels copied to stream labels, their names sanitised (``app.kubernetes.io/instance`` ->
    #: ``app_kubernetes_io_instance``)
    pod_labels: list[str] = Field(default_factory=list)
    #: static labels for every discovered pod's events (merged over the global ``labels``)
    labels: dict[str, str] = Field(default_factory=dict)
    #: a Redis poller for each discovered pod; absent: logs only
    poll: KubernetesPollConfig | None = None
    #: ``drop:`` rules of every discovered pod's sources (its log files and its poller), as on a
    #: ``type: file`` or ``type: redis`` source
    drop: list[DropRule] = Field(default_factory=list)
    #: container log format handed to each file source
    container_format: Literal["auto", "plain", "cri", "docker"] = "auto"
    #: server-side timeout of one watch request; the watch is then resumed from its resourceVersion
    watch_timeout: Duration = 300.0
    #: API request timeout (connect, list)
    timeout: Duration = 10.0

    @field_validator("images")
    @classmethod
    def _images_not_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("at least one image pattern (for example \"*redis*\")")
        return v
