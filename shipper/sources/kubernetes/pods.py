"""Which sources a pod calls for: a pure function of the pod object (as the API server returns it).

No I/O here: the watcher hands in pod dicts (``metadata``, ``spec``, ``status`` as in the JSON of
``GET /api/v1/pods``) and gets back :class:`Target` s, one per Redis container that runs. The
discovery source turns the difference between two sets of targets into added and stopped sources.

A target's ``key`` is ``namespace/pod/container``, not the pod's UID: a StatefulSet's ``redis-0``
recreated after a node drain gets a new UID and a new log directory, but it is the same Redis to
the person reading its events, so its checkpoints and audit stream continue.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any

#: the kubelet's log directory of a pod: ``<log_root>/<namespace>_<pod>_<uid>/<container>/<restart>.log``
_LABEL_NAME_BAD = re.compile(r"[^a-zA-Z0-9_]")
#: redis_exporter's default port (``--web.listen-address``)
EXPORTER_PORT = 9121
#: the labels every followed container's events carry (target_labels), whatever the config
POD_LABELS = ("namespace", "pod", "container", "node", "instance")


@dataclass(frozen=True)
class Target:
    """One Redis container of a running pod, and what the agent runs for it."""

    namespace: str
    pod: str
    uid: str
    container: str
    node: str
    pod_ip: str
    image: str
    #: the pod's labels (all of them; the config picks which become stream labels)
    pod_labels: tuple[tuple[str, str], ...] = field(default=())

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.pod}/{self.container}"

    def log_glob(self, log_root: str) -> str:
        """The glob of this container's kubelet log files (every restart: ``0.log``, ``1.log``...)."""
        root = log_root.rstrip("/") or "/"
        return f"{root}/{self.namespace}_{self.pod}_{self.uid}/{self.container}/*.log"


def sanitize_label_name(name: str) -> str:
    """A Kubernetes label key as a Prometheus/Loki label name: ``app.kubernetes.io/name`` ->
    ``app_kubernetes_io_name`` (the spelling Prometheus's kubernetes_sd gives it)."""
    out = _LABEL_NAME_BAD.sub("_", name)
    return f"_{out}" if out[:1].isdigit() else out


def _image_matches(image: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(image, p) for p in patterns)


def _running_containers(status: dict[str, Any]) -> set[str]:
    running: set[str] = set()
    statuses = status.get("containerStatuses")
    for cs in statuses if isinstance(statuses, list) else []:
        if isinstance(cs, dict) and isinstance(cs.get("name"), str):
            state = cs.get("state") or {}
            if isinstance(state, dict) and "running" in state:
                running.add(cs["name"])
    return running


def _pick(d: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: d[k] for k in keys if k in d} if isinstance(d, dict) else {}


def essentials(pod: Any) -> dict[str, Any]:
    """The fields of a pod that :func:`targets_of` reads (and the watch's ``resourceVersion``),
    without the rest of the object: a pod as the API server sends it is 5-20 KB of JSON (managed
    fields, volumes, probes, env), kept per pod for as long as it runs."""
    if not isinstance(pod, dict):
        return {}
    meta = _pick(pod.get("metadata"), ("namespace", "name", "uid", "labels", "deletionTimestamp", "resourceVersion"))
    spec = pod.get("spec")
    containers = spec.get("containers") if isinstance(spec, dict) else None
    status = pod.get("status")
    out_status = _pick(status, ("phase", "podIP"))
    statuses = status.get("containerStatuses") if isinstance(status, dict) else None
    if isinstance(statuses, list):
        out_status["containerStatuses"] = [_pick(cs, ("name", "state")) for cs in statuses]
    out_spec = _pick(spec, ("nodeName",))
    if isinstance(containers, list):
        out_spec["containers"] = [_pick(c, ("name", "image")) for c in containers]
    return {"metadata": meta, "spec": out_spec, "status": out_status}


def targets_of(pod: Any, images: list[str], exclude: list[str] | None = None) -> list[Target]:
    """The Redis containers of ``pod`` that are worth following now.

    A container is followed once the pod has an IP and the container's status says it runs (the
    kubelet creates its log file then). A pod that ``Succeeded``/``Failed``, or carries a
    ``deletionTimestamp``, has no targets: its sources are drained and stopped. Anything malformed
    gives no targets rather than an exception: the API server is trusted, but not to the point of
    crashing the agent on a field it did not send.
    """
    if not isinstance(pod, dict):
        return []
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    if not (isinstance(meta, dict) and isinstance(spec, dict) and isinstance(status, dict)):
        return []
    if meta.get("deletionTimestamp") or status.get("phase") in ("Succeeded", "Failed"):
        return []
    ns, name, uid = meta.get("namespace"), meta.get("name"), meta.get("uid")
    pod_ip, node = status.get("podIP"), spec.get("nodeName")
    if not all(isinstance(v, str) and v for v in (ns, name, uid, pod_ip, node)):
        return []
    labels = meta.get("labels") or {}
    label_items = tuple(sorted((str(k), str(v)) for k, v in labels.items())) if isinstance(labels, dict) else ()
    running = _running_containers(status)
    out: list[Target] = []
    containers = spec.get("containers")
    for c in containers if isinstance(containers, list) else []:
        if not isinstance(c, dict):
            continue
        cname, image = c.get("name"), c.get("image")
        if not (isinstance(cname, str) and isinstance(image, str)):
            continue
        if cname in running and _image_matches(image, images) and not _image_matches(image, exclude or []):
            out.append(Target(ns, name, uid, cname, node, pod_ip, image, label_items))
    return out


def target_labels(t: Target, *, preset: str, port: int, copy_pod_labels: list[str],
                  static: dict[str, str]) -> dict[str, str]:
    """The stream labels of a target's events: the pod's identity, the ``instance`` that
    redis_exporter's series of this pod carry, chosen pod labels, then the static ones (which win).

    ``preset``: ``sidecar`` = ``<podIP>:9121`` (the exporter in the pod, found by Prometheus pod
    discovery), ``multi-target`` = ``redis://<podIP>:<port>`` (the exporter's ``/scrape?target=``),
    ``pod`` = the pod's name.
    """
    host = f"[{t.pod_ip}]" if ":" in t.pod_ip else t.pod_ip
    if preset == "multi-target":
        instance = f"redis://{host}:{port}"
    elif preset == "pod":
        instance = t.pod
    else:
        instance = f"{host}:{EXPORTER_PORT}"
    labels = dict(zip(POD_LABELS, (t.namespace, t.pod, t.container, t.node, instance), strict=True))
    have = dict(t.pod_labels)
    for key in copy_pod_labels:
        if key in have:
            labels[sanitize_label_name(key)] = have[key]
    labels.update(static)
    return labels
