"""Pod discovery against a real kube-apiserver (1.20.2, with etcd): the pods of this node that run
Redis become sources, and stop being sources when they go.

The agent side is recorded by a :class:`RecordingControl` here; tests/test_kubernetes_agent.py runs
the same discovery inside the real agent with kubelet-layout log files.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_server import Envtest, KubeAPI, require_envtest

from shipper.config.kubernetes import KubernetesSourceConfig
from shipper.sources.kubernetes.source import KubernetesSource

pytestmark = pytest.mark.integration



class RecordingControl:
    """A stand-in for the runtime's source control: what runs, and every call in order."""

    def __init__(self) -> None:
        self.running: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
        self.calls: list[tuple[str, str]] = []
        #: the labeler target each source was added with (its events' discovered labels)
        self.targets: dict[str, str | None] = {}
        self.changed = asyncio.Event()

    async def add(self, name: str, config: dict[str, Any], labels: dict[str, str], *,
                  target: str | None = None) -> None:
        assert name not in self.running, f"{name} added twice"
        self.targets[name] = target
        self.running[name] = (config, labels)
        self.calls.append(("add", name))
        self.changed.set()

    async def stop(self, name: str) -> None:
        assert name in self.running, f"{name} stopped but not running"
        del self.running[name]
        self.calls.append(("stop", name))
        self.changed.set()


class Ctx:
    def __init__(self, control: RecordingControl) -> None:
        self.sources = control
        self.stop = asyncio.Event()


async def until(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def envtest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Envtest]:
    script = require_envtest()
    et = Envtest(script, tmp_path_factory.mktemp("envtest"))
    et.api = et.start()
    yield et
    et.stop()


@pytest.fixture(scope="module")
def api(envtest: Envtest) -> KubeAPI:
    """The admin's client; the same after a restart (same ports, same certificates and token)."""
    return envtest.api


_ns_counter = iter(range(1, 10_000))


@pytest.fixture
def ns(api: KubeAPI) -> str:
    """A namespace of its own per test: the tests share one API server."""
    name = f"t{next(_ns_counter)}-{int(time.time() * 1000) % 100000}"
    api.create_namespace(name)
    return name


@pytest.fixture
def node(ns: str) -> str:
    """This test's node: the agent under test watches the pods of its node only, so the pods other
    tests left on their nodes are none of its business."""
    return f"node-{ns}"


def reader_kubeconfig(api: KubeAPI, ns: str, tmp_path: Path, verbs: list[str] | None = None) -> Path:
    """A kubeconfig holding a service-account token minted by the server, RBAC-limited to pods."""
    token = api.service_account_token(ns, "redis-shipper", verbs=verbs or ["get", "list", "watch"])
    return api.kubeconfig(tmp_path / "kubeconfig", token)


def source_for(kubeconfig: Path, node: str, **kw: Any) -> KubernetesSource:
    cfg = KubernetesSourceConfig(type="kubernetes", node=node, kubeconfig=str(kubeconfig), labels={"env": "test"}, **kw)
    return KubernetesSource(cfg)


async def running_source(src: KubernetesSource) -> tuple[RecordingControl, Ctx, asyncio.Task[None]]:
    control = RecordingControl()
    ctx = Ctx(control)
    task = asyncio.create_task(src.run(ctx))  # type: ignore[arg-type]
    return control, ctx, task


async def stopped(ctx: Ctx, task: asyncio.Task[None]) -> None:
    ctx.stop.set()
    await asyncio.wait_for(task, 30)


def test_a_running_redis_pod_on_this_node_gets_a_log_source_and_a_poller_labelled_like_its_exporter(
        api: KubeAPI, ns: str, node: str, tmp_path: Path) -> None:
    kc = reader_kubeconfig(api, ns, tmp_path)
    api.create_pod(ns, "cache-0", node=node,
                   containers=[("redis", "redis:7.0"), ("exporter", "oliver006/redis_exporter")],
                   labels={"app.kubernetes.io/instance": "cache"})
    api.create_pod(ns, "web-0", node=node, containers=[("nginx", "nginx:1.25")])
    api.create_pod(ns, "cache-1", node="node-b", containers=[("redis", "redis:7.0")])

    async def scenario() -> None:
        src = source_for(kc, node, poll={"port": 6379, "username": "shipper"},
                         pod_labels=["app.kubernetes.io/instance"])
        control, ctx, task = await running_source(src)
        await asyncio.sleep(1.0)
        assert control.running == {}, "a pod without an IP and running containers is not followed yet"
        pod = api.set_running(ns, "cache-0", "10.1.2.3", ["redis", "exporter"])
        api.set_running(ns, "web-0", "10.1.2.4", ["nginx"])
        api.set_running(ns, "cache-1", "10.1.9.9", ["redis"])
        await until(lambda: len(control.running) == 2)
        await asyncio.sleep(1.0)  # nothing else arrives: not the nginx pod, not node-b's pod
        uid = pod["metadata"]["uid"]
        file_cfg, labels = control.running[f"k8s:{ns}/cache-0/redis:file"]
        assert file_cfg == {"type": "file", "path": f"/var/log/pods/{ns}_cache-0_{uid}/redis/*.log",
                            "container_format": "auto"}
        assert labels == {"namespace": ns, "pod": "cache-0", "container": "redis", "node": node,
                          "instance": "10.1.2.3:9121", "app_kubernetes_io_instance": "cache", "env": "test"}
        redis_cfg, redis_labels = control.running[f"k8s:{ns}/cache-0/redis:redis"]
        assert redis_cfg["url"] == "redis://10.1.2.3:6379" and redis_cfg["username"] == "shipper"
        assert redis_labels == labels
        # the container's log and its poller are one Redis: they share its discovered labels
        assert control.targets == {f"k8s:{ns}/cache-0/redis:file": f"k8s:{ns}/cache-0/redis",
                                   f"k8s:{ns}/cache-0/redis:redis": f"k8s:{ns}/cache-0/redis"}
        await stopped(ctx, task)
        assert control.running == {}, "a discovery that stops takes its sources with it"

    asyncio.run(scenario())


def test_a_deleted_pod_has_its_sources_stopped_and_the_same_pod_recreated_resumes_under_the_same_names(
        api: KubeAPI, ns: str, node: str, tmp_path: Path) -> None:
    kc = reader_kubeconfig(api, ns, tmp_path)

    async def scenario() -> None:
        control, ctx, task = await running_source(source_for(kc, node))
        api.create_pod(ns, "redis-0", node=node, containers=[("redis", "docker.io/library/redis:7")])
        first = api.set_running(ns, "redis-0", "10.0.0.5", ["redis"])
        await until(lambda: len(control.running) == 1)
        api.delete_pod(ns, "redis-0")
        await until(lambda: control.running == {})
        api.create_pod(ns, "redis-0", node=node, containers=[("redis", "docker.io/library/redis:7")])
        second = api.set_running(ns, "redis-0", "10.0.0.6", ["redis"])
        await until(lambda: len(control.running) == 1)
        name = f"k8s:{ns}/redis-0/redis:file"
        assert control.calls == [("add", name), ("stop", name), ("add", name)]
        assert second["metadata"]["uid"] in control.running[name][0]["path"]
        assert first["metadata"]["uid"] != second["metadata"]["uid"]
        await stopped(ctx, task)

    asyncio.run(scenario())


def test_a_pod_that_completes_or_changes_its_ip_is_followed_accordingly(
        api: KubeAPI, ns: str, node: str, tmp_path: Path) -> None:
    kc = reader_kubeconfig(api, ns, tmp_path)

    async def scenario() -> None:
        control, ctx, task = await running_source(source_for(kc, node, poll={}))
        api.create_pod(ns, "v-0", node=node, containers=[("valkey", "valkey/valkey:9")])
        api.set_running(ns, "v-0", "10.0.1.1", ["valkey"])
        await until(lambda: len(control.running) == 2)
        api.set_running(ns, "v-0", "10.0.1.2", ["valkey"])
        await until(lambda: control.running.get(f"k8s:{ns}/v-0/valkey:redis", ({}, {}))[0].get("url")
                    == "redis://10.0.1.2:6379")
        assert control.running[f"k8s:{ns}/v-0/valkey:file"][1]["instance"] == "10.0.1.2:9121"
        api.set_phase(ns, "v-0", "Succeeded")
        await until(lambda: control.running == {})
        await stopped(ctx, task)

    asyncio.run(scenario())


def test_a_label_selector_limits_discovery_to_the_selected_pods(
        api: KubeAPI, ns: str, node: str, tmp_path: Path) -> None:
    kc = reader_kubeconfig(api, ns, tmp_path)

    async def scenario() -> None:
        control, ctx, task = await running_source(
            source_for(kc, node, selector="app.kubernetes.io/name in (redis,valkey)", images=["*"]))
        api.create_pod(ns, "a", node=node, containers=[("db", "example/custom-db:1")],
                       labels={"app.kubernetes.io/name": "redis"})
        api.create_pod(ns, "b", node=node, containers=[("db", "example/custom-db:1")],
                       labels={"app.kubernetes.io/name": "postgres"})
        api.set_running(ns, "a", "10.0.2.1", ["db"])
        api.set_running(ns, "b", "10.0.2.2", ["db"])
        await until(lambda: len(control.running) == 1)
        await asyncio.sleep(1.0)
        assert list(control.running) == [f"k8s:{ns}/a/db:file"]
        await stopped(ctx, task)

    asyncio.run(scenario())


def test_a_token_that_may_not_watch_is_reported_and_retried_never_a_crash(
        api: KubeAPI, ns: str, node: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    kc = reader_kubeconfig(api, ns, tmp_path, verbs=["get"])  # no list, no watch: 403

    async def scenario() -> None:
        src = source_for(kc, node)
        control, ctx, task = await running_source(src)
        await until(lambda: src.watcher.failures >= 2, timeout=30)
        assert not task.done() and control.running == {}
        await stopped(ctx, task)

    caplog.set_level("WARNING", logger="redis_shipper.kubernetes")
    asyncio.run(scenario())
    warnings = [r.getMessage() for r in caplog.records if "API server is not answering" in r.getMessage()]
    assert len(warnings) == 1, "logged once per outage, not once per retry"
    assert "403" in warnings[0] or "forbidden" in warnings[0].lower()


def test_in_a_pod_the_service_account_files_and_service_env_are_the_way_in(
        api: KubeAPI, ns: str, node: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token = api.service_account_token(ns, "in-cluster", verbs=["get", "list", "watch"])
    sa = api.service_account_dir(tmp_path / "sa", token, ns)
    host, port = api.url.removeprefix("https://").rsplit(":", 1)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", host)
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", port)
    monkeypatch.delenv("KUBECONFIG", raising=False)

    async def scenario() -> None:
        cfg = KubernetesSourceConfig(type="kubernetes", node=node, service_account_dir=str(sa))
        control, ctx, task = await running_source(KubernetesSource(cfg))
        api.create_pod(ns, "ic-0", node=node, containers=[("redis", "redis:7")])
        api.set_running(ns, "ic-0", "10.0.3.1", ["redis"])
        await until(lambda: len(control.running) == 1)
        await stopped(ctx, task)

    asyncio.run(scenario())


def test_a_watch_from_a_version_the_server_no_longer_keeps_is_answered_410_and_the_pods_listed_again(
        envtest: Envtest, api: KubeAPI, ns: str, node: str, tmp_path: Path) -> None:
    """The server ends each watch after 2 s; the watcher resumes from the last version it saw. Churn
    elsewhere and an etcd compaction make that version too old: the server answers 410 Gone, the
    watcher lists the node's pods again, and a pod created meanwhile is followed."""
    kc = reader_kubeconfig(api, ns, tmp_path)

    async def scenario() -> KubernetesSource:
        src = source_for(kc, node, watch_timeout=2)
        control, ctx, task = await running_source(src)
        await until(lambda: src.watcher.relists == 1)
        api.create_pod(ns, "churn", node="elsewhere", containers=[("x", "busybox")])
        for i in range(20):
            api.ok("PATCH", f"/api/v1/namespaces/{ns}/pods/churn",
                   {"metadata": {"labels": {"n": str(i)}}}, content_type="application/merge-patch+json")
        await asyncio.to_thread(envtest.compact)
        await until(lambda: src.watcher.expired >= 1, timeout=30)
        api.create_pod(ns, "late-0", node=node, containers=[("redis", "redis:7")])
        api.set_running(ns, "late-0", "10.0.4.1", ["redis"])
        await until(lambda: len(control.running) == 1, timeout=30)
        await stopped(ctx, task)
        return src

    src = asyncio.run(scenario())
    assert src.watcher.relists >= 2, "listed at start and again after the 410"


def test_the_api_server_away_for_20_seconds_keeps_the_pods_followed_and_changes_are_seen_after(
        envtest: Envtest, api: KubeAPI, ns: str, node: str, tmp_path: Path) -> None:
    kc = reader_kubeconfig(api, ns, tmp_path)

    async def scenario() -> KubernetesSource:
        src = source_for(kc, node)
        control, ctx, task = await running_source(src)
        api.create_pod(ns, "keep-0", node=node, containers=[("redis", "redis:7")])
        api.set_running(ns, "keep-0", "10.0.5.1", ["redis"])
        api.create_pod(ns, "gone-0", node=node, containers=[("redis", "redis:7")])
        api.set_running(ns, "gone-0", "10.0.5.2", ["redis"])
        await until(lambda: len(control.running) == 2)
        await asyncio.to_thread(envtest.stop)
        await asyncio.sleep(20)
        assert len(control.running) == 2, "an API outage stops nothing"
        assert src.watcher.failures >= 1
        api2 = await asyncio.to_thread(envtest.start)
        api2.delete_pod(ns, "gone-0")
        api2.create_pod(ns, "new-0", node=node, containers=[("redis", "redis:7")])
        api2.set_running(ns, "new-0", "10.0.5.3", ["redis"])
        await until(lambda: set(control.running) == {f"k8s:{ns}/keep-0/redis:file", f"k8s:{ns}/new-0/redis:file"},
                    timeout=90)
        await stopped(ctx, task)
        return src

    asyncio.run(scenario())


def test_a_410_given_as_the_http_status_of_the_watch_also_relists() -> None:
    """A server (or proxy) may refuse a too-old resourceVersion with HTTP 410 before the stream
    starts, rather than as an ERROR event inside it. The watcher must still relist, not retry the
    same version forever."""
    import httpx2

    from shipper.config.kubernetes import KubernetesSourceConfig
    from shipper.sources.kubernetes.watch import PodWatcher, WatchExpired

    asked: list[dict[str, str]] = []

    def gone(request: httpx2.Request) -> httpx2.Response:
        asked.append(dict(request.url.params))
        return httpx2.Response(410, json={"kind": "Status", "code": 410, "reason": "Expired",
                                          "message": "too old resource version: 5 (17)"})

    cfg = KubernetesSourceConfig.model_validate({"type": "kubernetes", "node": "n1"})
    w = PodWatcher(cfg, lambda pods: asyncio.sleep(0), name="k8s",
                   client_factory=lambda c: httpx2.AsyncClient(base_url="https://api",
                                                               transport=httpx2.MockTransport(gone)))
    w.resource_version = "5"
    with pytest.raises(WatchExpired, match="too old resource version"):
        asyncio.run(w._watch_once())
    assert asked == [{"fieldSelector": "spec.nodeName=n1", "watch": "true", "allowWatchBookmarks": "true",
                      "timeoutSeconds": "300", "resourceVersion": "5"}]
