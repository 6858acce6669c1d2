"""A discovered pod's events carry the labels of redis_exporter's series of that pod's Redis.

Everything real: the kube-apiserver (envtest) the agent watches, two Redis 7 standing for two pods'
Redis (on the loopback addresses 127.0.0.2 and 127.0.0.3, the same port: the pods' IPs), a Debian
``prometheus-redis-exporter`` beside each (a sidecar on ``<pod IP>:<port>``) and the Debian
``prometheus`` scraping both in a ``kubernetes-pods`` job, with its query log on, so the test sees
every query the agent makes.

The exporters listen on a free port, not 9121: the ``sidecar`` preset's guess (``<pod IP>:9121``)
is then wrong, and only discovery (run_id -> ``redis_instance_info``) gives the right instance.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kube_server import Envtest, KubeAPI, require_envtest
from test_kubernetes_agent import REDIS_LINES, cri
from test_labels_prometheus import EXPORTER, PROMETHEUS, _executable, _stop, _wait_http
from test_runtime import RecordingSink

from shipper.config import parse_config
from shipper.pipeline.labels import LABELS_CLIENT_NAME
from shipper.pipeline.runtime import Agent

from servers import RedisProcess, require, start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IPS = ("127.0.0.2", "127.0.0.3")  # the pods' IPs
JOB = "kubernetes-pods"


def free_port_on(*hosts: str) -> int:
    """A port free on every one of ``hosts`` (the pods all listen on the same port)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
        try:
            for h in hosts:
                with socket.socket() as s:
                    s.bind((h, port))
            return port
        except OSError:
            continue
    raise RuntimeError(f"no port free on all of {hosts}")


@dataclass
class PodRedis:
    ip: str
    port: int
    workdir: Path
    redis: RedisProcess | None = None

    def start(self) -> None:
        self.redis = start_server("redis7", self.workdir, port=self.port, name=f"redis-{self.ip}", wait=False,
                                  config={"bind": self.ip, "slowlog-log-slower-than": "0"})
        deadline = time.monotonic() + 15
        while True:
            try:
                self.client().ping()
                return
            except Exception:
                assert time.monotonic() < deadline, f"Redis on {self.ip}:{self.port} not ready"
                time.sleep(0.05)

    def client(self):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host=self.ip, port=self.port, socket_timeout=5, decode_responses=True)

    def run_id(self) -> str:
        return self.client().info("server")["run_id"]

    def restart(self) -> None:
        assert self.redis is not None
        self.redis.stop()
        self.start()


@dataclass
class Stack:
    pods: list[PodRedis]
    exporter_port: int
    prom_url: str
    query_log: Path

    def series(self, run_id: str, timeout: float = 30.0) -> list[dict[str, str]]:
        """redis_instance_info of ``run_id``, waiting for its first scrape (spelled unlike the
        agent's query, so the query log tells the two apart)."""
        import urllib.parse
        import urllib.request

        q = f'{{__name__="redis_instance_info", run_id="{run_id}"}}'
        deadline = time.monotonic() + timeout
        while True:
            url = f"{self.prom_url}/api/v1/query?" + urllib.parse.urlencode({"query": q})
            with urllib.request.urlopen(url, timeout=5) as resp:
                result = json.load(resp)["data"]["result"]
            if result:
                return [r["metric"] for r in result]
            assert time.monotonic() < deadline, f"Prometheus never scraped run_id {run_id}"
            time.sleep(0.2)

    def agent_queries(self, run_id: str) -> int:
        """How many times the agent asked Prometheus for ``run_id`` (its query, as labels.py spells it)."""
        wanted = f'redis_instance_info{{run_id="{run_id}"}}'
        if not self.query_log.exists():
            return 0
        n = 0
        for line in self.query_log.read_text().splitlines():
            try:
                if json.loads(line).get("params", {}).get("query") == wanted:
                    n += 1
            except ValueError:
                continue
        return n


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require("prometheus", _executable(PROMETHEUS), "apt-get install prometheus")
    require("prometheus-redis-exporter", _executable(EXPORTER), "apt-get install prometheus-redis-exporter")
    tmp = tmp_path_factory.mktemp("k8s-labels")
    port, exporter_port = free_port_on(*IPS), free_port_on(*IPS)
    pods = [PodRedis(ip, port, tmp) for ip in IPS]
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for p in pods:
            p.start()
            log = (tmp / f"exporter-{p.ip}.log").open("wb")
            logs.append(log)
            procs.append(subprocess.Popen([EXPORTER, f"--redis.addr=redis://{p.ip}:{port}",
                                           f"--web.listen-address={p.ip}:{exporter_port}"],
                                          stdout=subprocess.DEVNULL, stderr=log))
            _wait_http(f"http://{p.ip}:{exporter_port}/metrics", procs[-1])
        prom_port = free_port_on("127.0.0.1")
        query_log = tmp / "queries.jsonl"
        targets = ", ".join(f"'{p.ip}:{exporter_port}'" for p in pods)
        (tmp / "prometheus.yml").write_text(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  query_log_file: {query_log}
scrape_configs:
  # the exporter as a sidecar in each Redis pod: instance = <pod IP>:<exporter port>
  - job_name: {JOB}
    static_configs:
      - targets: [{targets}]
""")
        log = (tmp / "prometheus.log").open("wb")
        logs.append(log)
        procs.append(subprocess.Popen([PROMETHEUS, f"--config.file={tmp / 'prometheus.yml'}",
                                       f"--storage.tsdb.path={tmp / 'tsdb'}",
                                       f"--web.listen-address=127.0.0.1:{prom_port}"],
                                      stdout=subprocess.DEVNULL, stderr=log))
        s = Stack(pods, exporter_port, f"http://127.0.0.1:{prom_port}", query_log)
        _wait_http(f"{s.prom_url}/-/ready", procs[-1])
        for p in pods:
            s.series(p.run_id())
        yield s
    finally:
        for proc in reversed(procs):
            _stop(proc)
        for p in pods:
            if p.redis is not None:
                p.redis.stop()
        for log in logs:
            log.close()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeAPI]:
    et = Envtest(require_envtest(), tmp_path_factory.mktemp("envtest-labels"))
    yield et.start()
    et.stop()


class Cluster:
    """One test's namespace and node, its pods (played kubelet: log dir, status), and the agent."""

    def __init__(self, api: KubeAPI, stack: Stack, tmp_path: Path, ns: str) -> None:
        self.api, self.stack, self.ns, self.node = api, stack, ns, f"node-{ns}"
        self.pods_dir = tmp_path / "pods"
        self.pods_dir.mkdir()
        api.create_namespace(ns)
        token = api.service_account_token(ns, "redis-shipper", verbs=["get", "list", "watch"])
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig", token)
        self.cfg = parse_config({
            "state_dir": str(tmp_path / "state"), "timezone": "UTC", "shutdown_timeout": 5,
            "labels": {"job": "redis"},
            "sources": [{
                "type": "kubernetes", "node": self.node, "kubeconfig": str(kubeconfig),
                "log_root": str(self.pods_dir), "instance_preset": "sidecar",
                "poll": {"port": stack.pods[0].port, "slowlog": {"interval": "100ms", "redact": "none"}},
            }],
            "discover_labels": {"prometheus_url": stack.prom_url, "copy": ["instance", "job"],
                                "refresh": "500ms", "timeout": "2s"},
        })
        self.sink = RecordingSink()
        self.agent = Agent(self.cfg, sinks=[self.sink])
        self.logs: dict[str, Path] = {}

    def key(self, pod: str) -> str:
        return f"k8s:{self.ns}/{pod}/redis"

    async def run_pod(self, name: str, ip: str) -> None:
        pod = await asyncio.to_thread(self.api.create_pod, self.ns, name, node=self.node,
                                      containers=[("redis", "redis:7.0")])
        logdir = self.pods_dir / f"{self.ns}_{name}_{pod['metadata']['uid']}" / "redis"
        logdir.mkdir(parents=True)
        self.logs[name] = logdir / "0.log"
        self.logs[name].touch()
        await asyncio.to_thread(self.api.set_running, self.ns, name, ip, ["redis"])

    def discovered(self, pod: str) -> dict[str, Any] | None:
        """The labeler's status of the pod's target once Prometheus confirmed its labels."""
        st = [s for s in self.agent.labeler.status() if s["redis"] == self.key(pod)]
        return st[0] if st and st[0]["last_success"] is not None else None

    def events(self, pod: str) -> list[dict[str, Any]]:
        return [e.event for e in self.sink.got if e.event.get("labels", {}).get("pod") == pod]

    def expected(self, pod: str, series: dict[str, str]) -> dict[str, str]:
        return {"namespace": self.ns, "pod": pod, "container": "redis", "node": self.node,
                "instance": series["instance"], "job": series["job"]}


async def until(cond: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def labels_tasks(key: str) -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == f"labels:{key}"]


def test_each_pods_log_and_poller_events_carry_the_instance_and_job_prometheus_has_for_its_run_id(
        api: KubeAPI, stack: Stack, tmp_path: Path) -> None:
    c = Cluster(api, stack, tmp_path, "labels-each")
    names = ("redis-0", "redis-1")

    async def scenario() -> None:
        await c.agent.start()
        try:
            for name, p in zip(names, stack.pods, strict=True):
                await c.run_pod(name, p.ip)
            for name in names:
                await until(lambda n=name: c.discovered(n) is not None)
            for i, (name, p) in enumerate(zip(names, stack.pods, strict=True)):
                (series,) = await asyncio.to_thread(stack.series, p.run_id())
                assert series["instance"] == f"{p.ip}:{stack.exporter_port}" != f"{p.ip}:9121", \
                    "the preset's guess is wrong here: only discovery gives this instance"
                assert c.discovered(name)["run_id"] == series["run_id"]
                # confirmed: what the pod emits from now on is labelled like its series
                p.client().set(f"marker:{name}", "1")
                with c.logs[name].open("a") as f:
                    f.writelines(cri(line) for line in REDIS_LINES[10 * i:10 * i + 10])
            for i, name in enumerate(names):
                def arrived(n: str = name, i: int = i) -> bool:
                    evs = c.events(n)
                    return (sum(e.get("source") == "redis" for e in evs) >= 10
                            and any(f"marker:{n}" in str(e) for e in evs))
                await until(arrived)
        finally:
            await c.agent.shutdown()

    asyncio.run(scenario())
    for i, (name, p) in enumerate(zip(names, stack.pods, strict=True)):
        (series,) = stack.series(p.run_id())
        want = c.expected(name, series)
        logged = [e for e in c.events(name) if e.get("source") == "redis"]
        assert [e["message"] for e in logged] == [line.split(" ", 6)[6] for line in REDIS_LINES[10 * i:10 * i + 10]]
        assert [e["labels"] for e in logged] == [want] * 10
        marked = [e for e in c.events(name) if f"marker:{name}" in str(e)]
        assert marked and all(e["labels"] == want for e in marked), marked
    assert c.expected("redis-0", stack.series(stack.pods[0].run_id())[0])["instance"] != \
        c.expected("redis-1", stack.series(stack.pods[1].run_id())[0])["instance"], "each pod its own series"


def test_a_deleted_pods_target_is_removed_and_its_redis_no_longer_asked_for(
        api: KubeAPI, stack: Stack, tmp_path: Path) -> None:
    c = Cluster(api, stack, tmp_path, "labels-gone")
    kept, gone = stack.pods

    async def scenario() -> None:
        await c.agent.start()
        try:
            await c.run_pod("redis-0", kept.ip)
            await c.run_pod("redis-1", gone.ip)
            await until(lambda: c.discovered("redis-0") is not None and c.discovered("redis-1") is not None)
            assert len(labels_tasks(c.key("redis-1"))) == 1
            await asyncio.to_thread(api.delete_pod, c.ns, "redis-1")
            await until(lambda: not c.agent.labeler.has_target(c.key("redis-1")))
            assert labels_tasks(c.key("redis-1")) == [], "its refresh loop ended"
            clients = await asyncio.to_thread(gone.client().client_list)
            assert LABELS_CLIENT_NAME not in [x.get("name") for x in clients], "its INFO connection closed"
            gone_id, kept_id = gone.run_id(), kept.run_id()
            before = (stack.agent_queries(gone_id), stack.agent_queries(kept_id))
            await asyncio.sleep(4)  # eight refresh periods
            after = (stack.agent_queries(gone_id), stack.agent_queries(kept_id))
            assert after[0] == before[0], "no query for the deleted pod's Redis"
            assert after[1] >= before[1] + 3, "the pod that stays is still refreshed"
            assert [s["redis"] for s in c.agent.labeler.status() if s["redis"].startswith("k8s:")] == \
                [c.key("redis-0")]
        finally:
            await c.agent.shutdown()
        assert [t for t in asyncio.all_tasks() if t.get_name().startswith("labels:")] == []

    asyncio.run(scenario())


def test_a_pods_redis_restart_is_followed_to_its_new_run_id(api: KubeAPI, stack: Stack, tmp_path: Path) -> None:
    c = Cluster(api, stack, tmp_path, "labels-restart")
    p = stack.pods[0]

    async def scenario() -> None:
        await c.agent.start()
        try:
            await c.run_pod("redis-0", p.ip)
            await until(lambda: c.discovered("redis-0") is not None)
            old = p.run_id()
            assert c.discovered("redis-0")["run_id"] == old
            await asyncio.to_thread(p.restart)
            new = p.run_id()
            assert new != old
            await until(lambda: (c.discovered("redis-0") or {}).get("run_id") == new
                        and c.discovered("redis-0")["last_error"] is None)
            (series,) = await asyncio.to_thread(stack.series, new)
            assert c.discovered("redis-0")["labels"] == c.expected("redis-0", series)
            assert stack.agent_queries(new) >= 1
            asked = stack.agent_queries(old)
            await asyncio.sleep(2)
            assert stack.agent_queries(old) == asked, "the old run_id is not asked for any more"
            p.client().set("marker:restarted", "1")
            await until(lambda: any("marker:restarted" in str(e) for e in c.events("redis-0")))
            marked = [e for e in c.events("redis-0") if "marker:restarted" in str(e)]
            assert all(e["labels"] == c.expected("redis-0", series) for e in marked)
        finally:
            await c.agent.shutdown()

    asyncio.run(scenario())
