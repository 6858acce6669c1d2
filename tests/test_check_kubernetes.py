"""``redis-shipper check`` on a ``type: kubernetes`` source: the summary says what the source
follows and polls; ``--connect`` lists and watches the node's pods on a real kube-apiserver with
the configured credentials, and a role that lacks a verb is named with that verb.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kube_server import Envtest, KubeAPI, require_envtest

from shipper.cli import main as cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPI]:
    et = Envtest(require_envtest(), tmp_path_factory.mktemp("envtest"))
    api = et.start()
    yield api
    et.stop()


@pytest.fixture
def ns(api: KubeAPI) -> str:
    """A namespace (and so a service account and role) of its own per test."""
    api.create_namespace(name := f"check-{uuid.uuid4().hex[:10]}")
    return name


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str, *extra: str) -> tuple[int, str]:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"state_dir: {tmp_path}/state\nmetrics: {{listen: ''}}\nsources:\n{source}")
    capsys.readouterr()
    rc = cli(["check", "--config", str(cfg), *extra])
    out = capsys.readouterr()
    return rc, out.out + out.err


def kube_source(node: str, kubeconfig: Path | str, extra: str = "") -> str:
    return (f"  - type: kubernetes\n    node: {node}\n    kubeconfig: {kubeconfig}\n"
            f"    selector: 'app in (redis,valkey)'\n{extra}")


def test_the_summary_says_what_a_kubernetes_source_follows_and_polls(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    kc = tmp_path / "kubeconfig"
    kc.write_text("apiVersion: v1\nkind: Config\n")
    rc, out = check(tmp_path, capsys, kube_source("node-7", kc, "    poll:\n      port: 6380\n"))
    assert rc == 0, out
    assert (f"  sources[0] kubernetes node node-7: pods matching 'app in (redis,valkey)' of every namespace, "
            "containers with image *redis*, *valkey* (not *redis_exporter*, *redis-exporter*), logs under "
            "/var/log/pods (auto); polls redis://<podIP>:6380 (slowlog, commandlog, latency, acl_log, config, "
            f"cluster, info); credentials: kubeconfig {kc}") in out

    monkeypatch.delenv("KUBECONFIG", raising=False)
    rc, out = check(tmp_path, capsys, "  - type: kubernetes\n    node: node-7\n"
                    "    service_account_dir: /nonexistent/sa\n    images: ['*valkey*']\n")
    assert rc == 0, out
    assert "every pod of every namespace, containers with image *valkey*" in out
    assert "logs only (no poll:)" in out
    assert "credentials: the pod's service account (/nonexistent/sa, not present here)" in out
    assert ("warning: sources[0].service_account_dir: no token in '/nonexistent/sa' and no $KUBECONFIG: "
            "outside a pod, set kubeconfig") in out


def test_an_unreadable_kubeconfig_is_an_error_before_anything_is_contacted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = check(tmp_path, capsys, kube_source("node-7", tmp_path / "missing"), "--connect")
    assert rc == 2, out
    assert f"sources[0].kubeconfig: cannot read '{tmp_path}/missing': No such file or directory" in out


def test_connect_lists_and_watches_the_nodes_pods_with_the_service_accounts_token(
        api: KubeAPI, ns: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = f"node-{ns}"
    api.create_pod(ns, "cache-0", node=node, containers=[("redis", "redis:7.2"),
                                                         ("exporter", "oliver006/redis_exporter:v1.62")],
                   labels={"app": "redis"})
    api.set_running(ns, "cache-0", "10.1.0.5", ["redis", "exporter"])
    api.create_pod(ns, "web-0", node=node, containers=[("nginx", "nginx:1.25")], labels={"app": "web"})
    api.create_pod(ns, "cache-1", node="another-node", containers=[("redis", "redis:7.2")], labels={"app": "redis"})
    token = api.service_account_token(ns, "redis-shipper", verbs=["get", "list", "watch"])
    kc = api.kubeconfig(tmp_path / "kubeconfig", token)

    rc, out = check(tmp_path, capsys, kube_source(node, kc), "--connect")
    assert rc == 0, out
    assert (f"OK   sources[0] kubernetes node {node}: list pods: allowed; 1 pod(s) matching the selector on node "
            f"{node} now, 1 Redis container(s) to follow: {ns}/cache-0/redis") in out
    assert f"OK   sources[0] kubernetes node {node}: watch pods: allowed" in out
    assert token not in out


def test_connect_names_the_missing_rbac_verb_when_the_role_may_not_watch(
        api: KubeAPI, ns: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = api.service_account_token(ns, "redis-shipper", verbs=["get", "list"])
    kc = api.kubeconfig(tmp_path / "kubeconfig", token)
    rc, out = check(tmp_path, capsys, kube_source(f"node-{ns}", kc), "--connect")
    assert rc == 1, out
    assert "list pods: allowed; 0 pod(s)" in out
    line = next(x for x in out.splitlines() if x.startswith("FAIL"))
    assert "watch pods: HTTP 403: " in line and "cannot watch resource \"pods\"" in line
    assert f"system:serviceaccount:{ns}:redis-shipper" in line
    assert "needs verb 'watch' on resource 'pods'" in line


def test_connect_names_the_missing_rbac_verb_when_the_role_may_not_list(
        api: KubeAPI, ns: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = api.service_account_token(ns, "redis-shipper", verbs=["get"])
    kc = api.kubeconfig(tmp_path / "kubeconfig", token)
    rc, out = check(tmp_path, capsys, kube_source(f"node-{ns}", kc), "--connect")
    assert rc == 1, out
    (line,) = [x for x in out.splitlines() if x.startswith("FAIL")]
    assert "list pods: HTTP 403: " in line and "cannot list resource \"pods\"" in line
    assert "needs verb 'list' on resource 'pods'" in line
    assert "watch pods" not in out


def test_connect_says_a_token_the_server_does_not_accept(
        api: KubeAPI, ns: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kc = api.kubeconfig(tmp_path / "kubeconfig", "not-a-token")
    rc, out = check(tmp_path, capsys, kube_source(f"node-{ns}", kc), "--connect")
    assert rc == 1, out
    assert "FAIL sources[0] kubernetes node" in out
    assert "list pods: HTTP 401: the token is not accepted" in out
