"""Label targets added and removed while the agent runs: a discovered pod's poller.

A real Redis 7 stands for the pod's Redis (its run_id selects the series); Prometheus is scripted
here (tests/test_kubernetes_labels.py runs the real one with the real redis_exporter).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from test_labels import FakePrometheus, labeler, ok, series

from shipper.config import ConfigError, RedisSourceConfig
from shipper.observe.metrics import REGISTRY
from shipper.pipeline.labels import LABELS_CLIENT_NAME

from servers import start_server

KEY = "k8s:cache/redis-0/redis"
POD = {"namespace": "cache", "pod": "redis-0", "container": "redis", "node": "worker-1",
       "instance": "10.244.0.7:9121"}


def pod_config(prom_url: str, refresh: str = "60s") -> dict[str, Any]:
    """A DaemonSet's config: no `type: redis` source, pods polled through the kubernetes source."""
    return {
        "labels": {"env": "prod"},
        "sources": [{"type": "kubernetes", "node": "worker-1", "poll": {"port": 6379}}],
        "discover_labels": {"prometheus_url": prom_url, "copy": ["instance", "job"], "refresh": refresh,
                            "timeout": "2s"},
    }


def metric_series(redis: str) -> list[str]:
    """The label-discovery samples on /metrics whose ``redis`` label is ``redis``."""
    return [s.name for m in REGISTRY.collect() if m.name.startswith("redis_shipper_label_discovery")
            for s in m.samples if s.labels.get("redis") == redis]


async def until(cond: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_discovery_with_only_pod_pollers_is_accepted_and_without_any_poller_refused() -> None:
    labeler(pod_config("http://127.0.0.1:9"))
    no_poll = pod_config("http://127.0.0.1:9")
    del no_poll["sources"][0]["poll"]
    with pytest.raises(ConfigError) as e:
        labeler(no_poll)
    assert [k for k, _ in e.value.problems] == ["discover_labels"]


def test_a_pod_target_carries_its_pod_labels_under_the_series_labels_of_its_redis(tmp_path: Path) -> None:
    rp = start_server("redis7", tmp_path)
    run_id = rp.client().info("server")["run_id"]
    try:
        async def run() -> None:
            answer = ok(series(run_id, instance="10.244.0.7:9200", job="kubernetes-pods"))
            async with FakePrometheus(lambda q: answer) as prom:
                lab = labeler(pod_config(prom.url))
                await lab.start()
                try:
                    assert prom.queries == [], "no pod yet: nothing to ask"
                    lab.add_target(KEY, RedisSourceConfig(type="redis", url=rp.url), POD)
                    assert lab.has_target(KEY)
                    ev: dict[str, Any] = {}
                    lab.apply(ev, KEY)
                    assert ev["labels"] == {"env": "prod", **POD}, "before Prometheus answers: the pod's base"
                    await until(lambda: lab.status()[-1]["last_success"] is not None)
                    assert prom.queries == [f'redis_instance_info{{run_id="{run_id}"}}']
                    lab.apply(ev, KEY)
                    assert ev["labels"] == {"env": "prod", **POD, "instance": "10.244.0.7:9200",
                                            "job": "kubernetes-pods"}
                    st = lab.status()[-1]
                    assert (st["redis"], st["run_id"]) == (KEY, run_id)
                    other: dict[str, Any] = {}
                    lab.apply(other)
                    assert other["labels"] == {"env": "prod"}, "the default target is not the pod's"
                finally:
                    await lab.close()

        asyncio.run(run())
    finally:
        rp.stop()


def test_a_removed_target_is_no_longer_queried_and_leaves_no_task_or_connection(tmp_path: Path) -> None:
    rp = start_server("redis7", tmp_path)
    run_id = rp.client().info("server")["run_id"]
    try:
        async def run() -> None:
            async with FakePrometheus(lambda q: ok(series(run_id, instance="i", job="j"))) as prom:
                lab = labeler(pod_config(prom.url, refresh="50ms"))
                await lab.start()
                try:
                    lab.add_target(KEY, RedisSourceConfig(type="redis", url=rp.url), POD)
                    await until(lambda: len(prom.queries) >= 3)
                    names = [c.get("name") for c in rp.client().client_list()]
                    assert LABELS_CLIENT_NAME in names
                    assert metric_series(KEY), "its discovery is on /metrics while it runs"
                    await lab.remove_target(KEY)
                    assert metric_series(KEY) == [], "a pod that is gone leaves no series behind"
                    assert not lab.has_target(KEY)
                    assert [t for t in asyncio.all_tasks() if t.get_name() == f"labels:{KEY}"] == []
                    asked = len(prom.queries)
                    await asyncio.sleep(0.5)  # ten refresh periods
                    assert len(prom.queries) == asked
                    names = [c.get("name") for c in rp.client().client_list()]
                    assert LABELS_CLIENT_NAME not in names, "its INFO connection is closed"
                    assert [s["redis"] for s in lab.status()] == ["static"]
                    await lab.remove_target(KEY)  # removing twice is harmless
                    # the same pod coming back is a new target, discovered again
                    lab.add_target(KEY, RedisSourceConfig(type="redis", url=rp.url), POD)
                    await until(lambda: len(prom.queries) > asked)
                finally:
                    await lab.close()
                assert [t for t in asyncio.all_tasks() if t.get_name().startswith("labels:")] == []

        asyncio.run(run())
    finally:
        rp.stop()


def test_a_target_added_before_start_is_discovered_once_the_labeler_starts(tmp_path: Path) -> None:
    rp = start_server("redis7", tmp_path)
    run_id = rp.client().info("server")["run_id"]
    try:
        async def run() -> None:
            async with FakePrometheus(lambda q: ok(series(run_id, instance="i", job="j"))) as prom:
                lab = labeler(pod_config(prom.url))
                lab.add_target(KEY, RedisSourceConfig(type="redis", url=rp.url), POD)
                await asyncio.sleep(0.2)
                assert prom.queries == []
                await lab.start()
                try:
                    await until(lambda: lab.labels_for_source(KEY).get("job") == "j")
                finally:
                    await lab.close()

        asyncio.run(run())
    finally:
        rp.stop()


def test_a_target_key_may_not_shadow_a_configured_redis_source() -> None:
    lab = labeler({"sources": [{"type": "redis", "url": "redis://db1:6379"}]})
    with pytest.raises(ValueError, match="shadow"):
        lab.add_target("redis://db1:6379", RedisSourceConfig(type="redis", url="redis://db2:6379"), {})


def test_pod_labels_that_would_not_fit_in_a_loki_stream_are_a_config_error_naming_the_source() -> None:
    many = [f"example.com/l{i}" for i in range(8)]  # 5 pod labels + 8 + global job = 14 > 13
    with pytest.raises(ConfigError) as e:
        labeler({"labels": {"job": "redis"},
                 "sources": [{"type": "kubernetes", "node": "n", "pod_labels": many}]})
    assert [k for k, _ in e.value.problems] == ["sources[0]"]
    labeler({"labels": {"job": "redis"}, "sources": [{"type": "kubernetes", "node": "n", "pod_labels": many[:7]}]})


class _RecordingSpool:
    """Stands in for the spool: what the emitter appends is what was labelled."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    async def append(self, stream: str, events: list[dict[str, Any]], positions: dict[str, Any]) -> None:
        self.events.extend(events)


def test_a_pods_log_without_a_poller_carries_the_global_and_pod_labels_not_a_configured_redis_discoveries(
        tmp_path: Path) -> None:
    from shipper.api import Batch
    from shipper.config import parse_config
    from shipper.pipeline.runtime import Agent

    rp = start_server("redis7", tmp_path)
    run_id = rp.client().info("server")["run_id"]
    try:
        async def run() -> None:
            answer = ok(series(run_id, instance="redis://db1:6379", job="vm-redis"))
            async with FakePrometheus(lambda q: answer) as prom:
                cfg = parse_config({
                    "state_dir": str(tmp_path / "state"),
                    "labels": {"env": "prod"},
                    "sources": [{"type": "redis", "url": rp.url},
                                {"type": "kubernetes", "node": "worker-1"}],   # pods' logs, no poll
                    "discover_labels": {"prometheus_url": prom.url, "copy": ["instance", "job"],
                                        "timeout": "2s"},
                })
                agent = Agent(cfg)
                agent.labeler = labeler_of(cfg)
                spool = _RecordingSpool()
                agent.spool = spool  # type: ignore[assignment]
                await agent.labeler.start()
                try:
                    await until(lambda: agent.labeler.status()[0]["last_success"] is not None)
                    host_file = agent._emitter("host/redis.log", None)
                    pod_file = agent._emitter("host/k8s:cache/redis-0/redis:file", None, dict(POD))
                    pod_file.labels_target = KEY  # what DynamicSources sets; no poller registers it
                    line = "1:M 07 Dec 2026 10:00:00.000 * Ready to accept connections tcp"
                    for emit in (host_file, pod_file):
                        await emit(Batch(events=[{"message": line}], positions={}))
                        await emit.settle()
                    host_ev, pod_ev = spool.events
                    assert host_ev["labels"] == {"env": "prod", "instance": "redis://db1:6379", "job": "vm-redis"}, \
                        "a host file's events carry the configured Redis's discovered labels"
                    assert pod_ev["labels"] == {"env": "prod", **POD}, \
                        "a pod's log is not the configured Redis's: no job discovered for that one"
                finally:
                    await agent.labeler.close()

        asyncio.run(run())
    finally:
        rp.stop()


def labeler_of(cfg: Any) -> Any:
    from shipper.pipeline.labels import Labeler

    return Labeler(cfg, env={}, hostname="host")
