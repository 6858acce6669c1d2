"""`redis-shipper run` as a DaemonSet pod runs it, against a real kube-apiserver: pods of its node
appear, run, restart their container and go; the test writes their kubelet log files (CRI format,
as containerd writes Redis's stdout) and counts what the agent ships.

No kubelet here (envtest): the test plays its part, creating the pod's log directory and patching
the pod's status the way the kubelet would.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from kube_server import Envtest, KubeAPI, require_envtest

from conftest import SAMPLE_LOGS

pytestmark = pytest.mark.integration

REDIS_LINES = [
    line for line in (SAMPLE_LOGS / "redis-7.0" / "replication-master.log").read_text().splitlines()
    if line[:1].isdigit()
][:30]


def cri(line: str, *, stream: str = "stdout", when: str = "2026-12-07T03:00:00.123456789Z") -> str:
    """A line as containerd's CRI logger writes it: ``<RFC3339Nano> <stream> F <text>``."""
    return f"{when} {stream} F {line}\n"


def read_out(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


def wait_for(pred, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    et = Envtest(require_envtest(), tmp_path_factory.mktemp("envtest-agent"))
    yield et.start()
    et.stop()


def agent_config(api: KubeAPI, tmp_path: Path, ns: str, node: str, source_extra: str) -> tuple[Path, Path]:
    """A namespace, a reader token for it, and an agent config with one kubernetes source of
    ``node`` (plus ``source_extra`` YAML lines) shipping to a file; returns (config, output)."""
    api.create_namespace(ns)
    token = api.service_account_token(ns, "redis-shipper", verbs=["get", "list", "watch"])
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig", token)
    out = tmp_path / "out.jsonl"
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"""\
state_dir: {tmp_path / 'state'}
timezone: UTC
labels: {{job: redis}}
metrics: {{listen: ''}}
sources:
  - type: kubernetes
    node: {node}
    kubeconfig: {kubeconfig}
{source_extra}sinks:
  - type: file
    path: {out}
""")
    return cfg, out


def test_a_redis_pods_log_is_shipped_with_its_pod_labels_across_a_container_restart_and_its_deletion(
        api: KubeAPI, tmp_path: Path) -> None:
    ns, node = "cache", "worker-1"
    pods = tmp_path / "pods"
    pods.mkdir()
    cfg, out = agent_config(api, tmp_path, ns, node,
                            f"    log_root: {pods}\n    pod_labels: [app.kubernetes.io/instance]\n")
    agent = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(cfg)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        pod = api.create_pod(ns, "redis-0", node=node, containers=[("redis", "redis:7.0")],
                             labels={"app.kubernetes.io/instance": "sessions"})
        uid = pod["metadata"]["uid"]
        logdir = pods / f"{ns}_redis-0_{uid}" / "redis"
        logdir.mkdir(parents=True)
        with (logdir / "0.log").open("w") as f:
            f.writelines(cri(line) for line in REDIS_LINES[:20])
        api.set_running(ns, "redis-0", "10.244.0.7", ["redis"])

        def data() -> list[dict]:
            return [e for e in read_out(out) if e.get("source") == "redis"]

        assert wait_for(lambda: len(data()) >= 20), agent.stderr.read1().decode() if agent.stderr else ""
        # the container restarts: the kubelet opens 1.log beside 0.log
        with (logdir / "1.log").open("w") as f:
            f.writelines(cri(line) for line in REDIS_LINES[20:25])
        assert wait_for(lambda: len(data()) >= 25)
        # the pod goes: lines written just before are drained, then its source stops
        with (logdir / "1.log").open("a") as f:
            f.writelines(cri(line) for line in REDIS_LINES[25:30])
        api.delete_pod(ns, "redis-0")
        assert wait_for(lambda: len(data()) >= 30)
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0, agent.stderr.read().decode() if agent.stderr else ""
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    events = data()
    assert [e["message"] for e in events] == [line.split(" ", 6)[6] for line in REDIS_LINES], \
        "every line once, in order: the runtime's CRI prefix removed, Redis's own message kept"
    assert all(e["timestamp"].startswith("2026-11-25T") for e in events), \
        "Redis's own timestamps, not the runtime's (2026-12-07)"
    for e in events:
        assert e["labels"] == {"job": "redis", "namespace": ns, "pod": "redis-0", "container": "redis",
                               "node": node, "instance": "10.244.0.7:9121", "app_kubernetes_io_instance": "sessions"}


def test_a_discovered_pod_with_poll_gets_a_poller_whose_events_carry_the_pods_labels(
        api: KubeAPI, tmp_path: Path) -> None:
    """The pod's IP is loopback here (no pod network): a real Redis 7.0 on a free port stands for
    the pod's Redis, and its slowlog entries arrive labelled as the pod's."""
    import redis

    from servers import start_server

    rp = start_server("redis7", tmp_path, config={"slowlog-log-slower-than": "0"})
    ns, node = "polled", "worker-2"
    cfg, out = agent_config(api, tmp_path, ns, node,
                            f"    log_root: {tmp_path / 'pods'}\n    instance_preset: multi-target\n"
                            f"    poll: {{port: {rp.port}, slowlog: {{interval: 100ms, redact: none}}}}\n")
    agent = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(cfg)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        api.create_pod(ns, "redis-0", node=node, containers=[("redis", "redis:7.0")])
        api.set_running(ns, "redis-0", "127.0.0.1", ["redis"])
        r = redis.Redis(host="127.0.0.1", port=rp.port)

        def marked() -> list[dict]:
            r.set("k8s:marker", "1")
            return [e for e in read_out(out) if e.get("category") == "slowlog" and "k8s:marker" in str(e)]

        assert wait_for(lambda: bool(marked()), timeout=60), agent.stderr.read1().decode() if agent.stderr else ""
        ev = marked()[0]
        assert ev["labels"] == {"job": "redis", "namespace": ns, "pod": "redis-0", "container": "redis",
                                "node": node, "instance": f"redis://127.0.0.1:{rp.port}"}
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        rp.stop()


def test_the_kubernetes_sources_drop_rules_apply_to_every_discovered_pods_events(api: KubeAPI, tmp_path: Path) -> None:
    """``drop:`` on the kubernetes source works as on a ``type: file`` source: the matching lines of
    a discovered pod are not shipped, the others are, and the audit anchors count what was dropped."""
    ns, node = "dropping", "worker-3"
    pods = tmp_path / "pods"
    pods.mkdir()
    cfg, out = agent_config(api, tmp_path, ns, node,
                            f"    log_root: {pods}\n    drop:\n      - {{name: cow, message: '^Fork CoW'}}\n"
                            "      - {name: sync-asks, message: 'asks for synchronization$'}\n")
    agent = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(cfg)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    messages = [line.split(" ", 6)[6] for line in REDIS_LINES]
    kept = [m for m in messages if not m.startswith("Fork CoW") and not m.endswith("asks for synchronization")]
    assert len(kept) == len(messages) - 5  # 2 Fork CoW, 3 asks: the rules have something to drop
    try:
        pod = api.create_pod(ns, "redis-0", node=node, containers=[("redis", "redis:7.0")])
        logdir = pods / f"{ns}_redis-0_{pod['metadata']['uid']}" / "redis"
        logdir.mkdir(parents=True)
        (logdir / "0.log").write_text("".join(cri(line) for line in REDIS_LINES))
        api.set_running(ns, "redis-0", "10.244.0.9", ["redis"])

        def data() -> list[dict]:
            return [e for e in read_out(out) if e.get("source") == "redis"]

        assert wait_for(lambda: len(data()) >= len(kept), timeout=60), \
            agent.stderr.read1().decode() if agent.stderr else ""
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(30) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert [e["message"] for e in data()] == kept
    anchors = [e for e in read_out(out) if e.get("event") == "chain_anchor"]
    dropped = [d for a in anchors for s, d in a.get("fields", {}).get("dropped", {}).items()
               if s.endswith(f"/k8s:{ns}/redis-0/redis:file")]
    assert {rule: sum(d.get(rule, 0) for d in dropped) for rule in ("cow", "sync-asks")} == {"cow": 2, "sync-asks": 3}
