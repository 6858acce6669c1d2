"""deploy/kubernetes as ``kubectl apply -k`` would send it, created on a real kube-apiserver, and
the agent run the way the pods mode's DaemonSet runs it: with a token of the ServiceAccount that
deploy's rbac.yaml binds, minted by the server (TokenRequest), found where the kubelet mounts it.

kube-apiserver 1.20 drops the fields it does not know instead of refusing them (strict field
validation came in 1.25), so "created" is not enough: every field of every manifest must come back
in what the server stored. The objects are rendered by tests/kustomize_lite.py (the same objects
as ``kubectl kustomize``, which tests/test_deploy.py checks where kubectl is installed).
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_server import Envtest, KubeAPI, require_envtest
from kustomize_lite import render
from test_kubernetes_agent import REDIS_LINES, cri, read_out, wait_for

from servers import free_port

pytestmark = pytest.mark.integration

K8S = Path(__file__).resolve().parent.parent / "deploy" / "kubernetes"
#: kind -> (API path prefix, plural) of what deploy/kubernetes holds
API_PATHS = {
    "Namespace": ("/api/v1", "namespaces"),
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "DaemonSet": ("/apis/apps/v1", "daemonsets"),
    "ClusterRole": ("/apis/rbac.authorization.k8s.io/v1", "clusterroles"),
    "ClusterRoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings"),
}
NODE = "worker-1"


def collection(obj: dict[str, Any]) -> str:
    prefix, plural = API_PATHS[obj["kind"]]
    ns = obj["metadata"].get("namespace")
    return f"{prefix}/namespaces/{ns}/{plural}" if ns else f"{prefix}/{plural}"


def assert_kept(sent: Any, stored: Any, where: str) -> None:
    """Every field of ``sent`` is in ``stored`` with the same value (the server adds defaults)."""
    if isinstance(sent, dict):
        assert isinstance(stored, dict), where
        for k, v in sent.items():
            assert k in stored, f"{where}.{k}: dropped by the API server (unknown field?)"
            assert_kept(v, stored[k], f"{where}.{k}")
    elif isinstance(sent, list):
        assert isinstance(stored, list) and len(stored) == len(sent), where
        for i, (a, b) in enumerate(zip(sent, stored, strict=True)):
            assert_kept(a, b, f"{where}[{i}]")
    else:
        assert sent == stored, f"{where}: sent {sent!r}, stored {stored!r}"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A real API server with deploy/kubernetes/pods created on it; yields (api, objects)."""
    et = Envtest(require_envtest(), tmp_path_factory.mktemp("envtest-deploy"))
    api = et.start()
    try:
        objects = render(K8S / "pods")
        for obj in objects:
            api.ok("POST", collection(obj), obj)
        yield api, objects
    finally:
        et.stop()


def test_every_manifest_of_the_pods_mode_is_created_and_stored_with_every_field(deployed) -> None:  # type: ignore[no-untyped-def]
    api, objects = deployed
    assert {o["kind"] for o in objects} == set(API_PATHS)
    for obj in objects:
        stored = api.ok("GET", f"{collection(obj)}/{obj['metadata']['name']}")
        assert_kept(obj, stored, f"{obj['kind']}/{obj['metadata']['name']}")


def test_a_misspelt_field_is_dropped_by_this_api_server_so_the_comparison_catches_it(deployed) -> None:  # type: ignore[no-untyped-def]
    """Why every field is compared: a typo (``readOnlyRootFilesytem``) is accepted and lost."""
    api, objects = deployed
    ds = copy.deepcopy(next(o for o in objects if o["kind"] == "DaemonSet"))
    ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesytem"] = True
    stored = api.ok("PUT", f"{collection(ds)}/{ds['metadata']['name']}?dryRun=All", ds)
    with pytest.raises(AssertionError, match="readOnlyRootFilesytem: dropped"):
        assert_kept(ds, stored, "DaemonSet")


def test_every_manifest_of_the_host_files_mode_is_accepted_with_every_field(deployed) -> None:  # type: ignore[no-untyped-def]
    """The same names as the pods mode: applying one mode over the other replaces its ConfigMap and
    DaemonSet, which is what is sent here, with ``dryRun=All`` (the server's whole write path:
    admission, validation, defaults, nothing stored). The shared base is already there."""
    api, pods_objects = deployed
    shared = {(o["kind"], o["metadata"]["name"]) for o in pods_objects if o["kind"] in ("Namespace", "ServiceAccount")}
    own = [o for o in render(K8S / "host-files") if (o["kind"], o["metadata"]["name"]) not in shared]
    assert {o["kind"] for o in own} == {"ConfigMap", "DaemonSet"}
    for obj in own:
        stored = api.ok("PUT", f"{collection(obj)}/{obj['metadata']['name']}?dryRun=All", obj)
        assert_kept(obj, stored, f"{obj['kind']}/{obj['metadata']['name']}")


def service_account_token(api: KubeAPI, objects: list[dict[str, Any]]) -> tuple[str, str]:
    """(namespace, token) of the DaemonSet's ServiceAccount, as the kubelet's projected volume gets it."""
    ds = next(o for o in objects if o["kind"] == "DaemonSet")
    ns, sa = ds["metadata"]["namespace"], ds["spec"]["template"]["spec"]["serviceAccountName"]
    minted = api.ok("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
                    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                     "spec": {"expirationSeconds": 3600}})
    return ns, minted["status"]["token"]


def test_the_deployed_service_account_may_list_and_watch_pods_and_nothing_else(deployed) -> None:  # type: ignore[no-untyped-def]
    api, objects = deployed
    ns, token = service_account_token(api, objects)
    api.create_namespace("elsewhere")
    sel = urllib.parse.quote(f"spec.nodeName={NODE}")
    for path in [f"/api/v1/pods?fieldSelector={sel}", "/api/v1/namespaces/elsewhere/pods",
                 f"/api/v1/pods?watch=true&timeoutSeconds=1&fieldSelector={sel}"]:
        status, _ = api.request("GET", path, token=token)
        assert status == 200, path
    for method, path in [("GET", "/api/v1/namespaces/elsewhere/secrets"), ("GET", f"/api/v1/namespaces/{ns}/secrets"),
                         ("GET", "/api/v1/nodes"), ("DELETE", "/api/v1/namespaces/elsewhere/pods/x"),
                         ("GET", "/api/v1/namespaces/elsewhere/configmaps")]:
        status, _ = api.request(method, path, token=token)
        assert status == 403, f"{method} {path} answered {status}"


def test_the_agent_with_the_deployed_configmap_and_service_account_follows_a_redis_pod(
        deployed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The ConfigMap's own config, with only what a test machine must change (paths, the sink, the
    probes' port); the token and CA where the kubelet mounts them, the API server where a pod's
    environment says (KUBERNETES_SERVICE_HOST/PORT)."""
    api, objects = deployed
    ns, token = service_account_token(api, objects)
    cm = next(o for o in objects if o["kind"] == "ConfigMap")
    cfg = yaml.safe_load(cm["data"]["config.yaml"])
    (source,) = cfg["sources"]
    assert source["type"] == "kubernetes" and source["node"] == "${NODE_NAME}"
    pods_dir = tmp_path / "pods"
    pods_dir.mkdir()
    source["log_root"] = str(pods_dir)
    source["service_account_dir"] = str(api.service_account_dir(tmp_path / "serviceaccount", token, ns))
    out = tmp_path / "out.jsonl"
    port = free_port()
    cfg.update(state_dir=str(tmp_path / "state"), timezone="UTC", sinks=[{"type": "file", "path": str(out)}],
               metrics={"listen": f"127.0.0.1:{port}"})
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(cfg))
    server = urllib.parse.urlsplit(api.url)
    env = {**os.environ, "NODE_NAME": NODE, "POD_NAME": "redis-shipper-x7k2p", "POD_IP": "127.0.0.1",
           "KUBERNETES_SERVICE_HOST": str(server.hostname), "KUBERNETES_SERVICE_PORT": str(server.port)}
    env.pop("KUBECONFIG", None)
    api.create_namespace("cache")
    agent = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(config)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        def ready() -> bool:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5).status == 200
            except OSError:
                return False

        assert wait_for(ready, timeout=60)
        pod = api.create_pod("cache", "redis-0", node=NODE, containers=[("redis", "redis:7.0")],
                             labels={"app.kubernetes.io/instance": "sessions"})
        logdir = pods_dir / f"cache_redis-0_{pod['metadata']['uid']}" / "redis"
        logdir.mkdir(parents=True)
        (logdir / "0.log").write_text("".join(cri(line) for line in REDIS_LINES[:10]))
        api.set_running("cache", "redis-0", "10.244.1.7", ["redis"])

        def shipped() -> list[dict[str, Any]]:
            return [e for e in read_out(out) if e.get("source") == "redis"]

        assert wait_for(lambda: len(shipped()) >= 10, timeout=60)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    stderr = agent.stderr.read().decode() if agent.stderr else ""
    assert "403" not in stderr and "Forbidden" not in stderr, stderr
    events = shipped()
    assert len(events) == 10
    assert all(e["labels"] == {"job": "redis", "namespace": "cache", "pod": "redis-0", "container": "redis",
                               "node": NODE, "instance": "10.244.1.7:9121", "app_kubernetes_io_instance": "sessions"}
               for e in events), events[0]["labels"]
