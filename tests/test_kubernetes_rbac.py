"""deploy/kubernetes's ServiceAccount and RBAC, applied to a real kube-apiserver: the agent's token
may get, list and watch pods in every namespace, and nothing else."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kube_server import Envtest, require_envtest

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
PLURAL = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings"}


def test_the_shipped_rbac_lets_the_agent_watch_pods_and_nothing_else(tmp_path: Path) -> None:
    et = Envtest(require_envtest(), tmp_path / "envtest")
    api = et.start()
    try:
        ns = yaml.safe_load((DEPLOY / "namespace.yaml").read_text())["metadata"]["name"]
        api.create_namespace(ns)
        api.create_namespace("elsewhere")
        sa = yaml.safe_load((DEPLOY / "serviceaccount.yaml").read_text())
        api.ok("POST", f"/api/v1/namespaces/{ns}/serviceaccounts", sa)
        for doc in yaml.safe_load_all((DEPLOY / "rbac.yaml").read_text()):
            api.ok("POST", f"/apis/rbac.authorization.k8s.io/v1/{PLURAL[doc['kind']]}", doc)
        minted = api.ok("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa['metadata']['name']}/token",
                        {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
        token = minted["status"]["token"]
        allowed = [
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dworker-1",
            "/api/v1/namespaces/elsewhere/pods",
            "/api/v1/pods?watch=true&timeoutSeconds=1&fieldSelector=spec.nodeName%3Dworker-1",
        ]
        for path in allowed:
            status, _ = api.request("GET", path, token=token)
            assert status == 200, path
        for method, path in [("GET", "/api/v1/namespaces/elsewhere/secrets"), ("GET", "/api/v1/nodes"),
                             ("DELETE", "/api/v1/namespaces/elsewhere/pods/x"),
                             ("GET", "/api/v1/namespaces/elsewhere/configmaps")]:
            status, _ = api.request(method, path, token=token)
            assert status == 403, f"{method} {path} answered {status}"
    finally:
        et.stop()
