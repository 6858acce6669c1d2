"""What ``kubectl kustomize`` makes of deploy/kubernetes, for the machines without kubectl (it is
not a Debian package, and CI does not install it).

Only the features deploy/kubernetes uses: ``resources`` (files and directories, recursively),
``namespace`` (set on every namespaced object, and on the ServiceAccount subjects of bindings),
``labels`` without selectors, and ``images``. Anything else in a kustomization is refused, so a
new feature there cannot be silently ignored here; where kubectl is installed, tests/test_deploy.py
checks that both give the same objects.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

#: the kinds that have no namespace (of those deploy/ uses)
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
KNOWN_KEYS = {"apiVersion", "kind", "namespace", "labels", "resources", "images"}


def render(directory: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize directory`` prints, in the order of ``resources``."""
    k = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(k) - KNOWN_KEYS
    if unknown:
        raise ValueError(f"{directory}/kustomization.yaml: {sorted(unknown)} not handled by kustomize_lite")
    objects: list[dict[str, Any]] = []
    for res in k.get("resources", []):
        path = (directory / res).resolve()
        if path.is_dir():
            objects.extend(render(path))
        else:
            objects.extend(copy.deepcopy(d) for d in yaml.safe_load_all(path.read_text()) if d)
    for obj in objects:
        _transform(obj, k)
    return objects


def _transform(obj: dict[str, Any], k: dict[str, Any]) -> None:
    ns = k.get("namespace")
    if ns and obj["kind"] not in CLUSTER_SCOPED:
        obj["metadata"]["namespace"] = ns
    if ns and obj["kind"] in ("ClusterRoleBinding", "RoleBinding"):
        for s in obj.get("subjects", []):
            if s.get("kind") == "ServiceAccount":
                s["namespace"] = ns
    for group in k.get("labels", []):
        if group.get("includeSelectors") or group.get("includeTemplates"):
            raise ValueError("kustomize_lite: labels with includeSelectors/includeTemplates")
        obj["metadata"].setdefault("labels", {}).update(group["pairs"])
    for img in k.get("images", []):
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            if c.get("image") == img["name"]:
                c["image"] = f"{img.get('newName', img['name'])}:{img['newTag']}" if "newTag" in img \
                    else img.get("newName", img["name"])
