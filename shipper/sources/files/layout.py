"""Labels a container log file's path gives: the kubelet's and Docker's layouts.

* kubelet: ``/var/log/pods/<namespace>_<pod>_<uid>/<container>/<restart>.log`` (rotated:
  ``<restart>.log.<YYYYMMDD-HHMMSS>``, later gzipped) -> ``namespace``, ``pod``, ``container``.
  Namespaces and pod names cannot hold ``_`` (DNS labels / subdomains), so the split is exact.
* Docker json-file: ``/var/lib/docker/containers/<id>/<id>-json.log`` (rotated ``.1``, ``.2``...)
  -> ``container_id`` (12 hex, as ``docker ps`` shows it) and, when the container's
  ``config.v2.json`` beside it is readable, ``container`` (its name without the leading ``/``).

Other paths give no labels.
"""

from __future__ import annotations

import os
import re

import orjson

_KUBELET = re.compile(
    r"/(?P<ns>[a-z0-9]([-a-z0-9]*[a-z0-9])?)_(?P<pod>[a-z0-9]([-.a-z0-9]*[a-z0-9])?)_(?P<uid>[0-9a-fA-F-]{8,})"
    r"/(?P<container>[a-z0-9]([-a-z0-9]*[a-z0-9])?)/\d+\.log(\.\d{8}-\d{6}(\.gz)?)?$"
)
_DOCKER = re.compile(r"/(?P<id>[0-9a-f]{64})/(?P=id)-json\.log(\.\d+)?$")


def labels_from_path(path: str) -> dict[str, str]:
    """The labels of ``path`` under the kubelet's or Docker's layout; ``{}`` for any other path."""
    m = _KUBELET.search(path)
    if m:
        return {"namespace": m["ns"], "pod": m["pod"], "container": m["container"]}
    m = _DOCKER.search(path)
    if m:
        labels = {"container_id": m["id"][:12]}
        name = _docker_name(os.path.join(os.path.dirname(path), "config.v2.json"))
        if name:
            labels["container"] = name
        return labels
    return {}


_names: dict[str, str] = {}


def _docker_name(config_path: str) -> str | None:
    """The container's name from Docker's ``config.v2.json``; a name found is remembered (a
    container's name is fixed for its life), a file not readable yet is tried again next time."""
    if config_path in _names:
        return _names[config_path]
    try:
        with open(config_path, "rb") as f:
            cfg = orjson.loads(f.read(1 << 20))
    except (OSError, orjson.JSONDecodeError):
        return None
    name = cfg.get("Name") if isinstance(cfg, dict) else None
    if not isinstance(name, str) or not name.lstrip("/"):
        return None
    if len(_names) > 4096:
        _names.clear()
    _names[config_path] = name.lstrip("/")
    return _names[config_path]
