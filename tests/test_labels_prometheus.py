"""The labels we ship EQUAL redis_exporter's metric labels, proven against the real thing.

A real Redis 7 (Debian), the real Debian ``prometheus-redis-exporter`` and the real Debian
``prometheus`` scraping it every second in the two common ways:

* ``redis_sidecar``: the classic job, target = the exporter's ``host:port`` (instance is that);
* ``redis_targets``: the README's multi-target job, ``/scrape`` with ``__param_target``
  relabelling, so instance = ``redis://127.0.0.1:<redis port>``.

Both jobs scrape the same Redis, so ``redis_instance_info{run_id=...}`` has two series -- the
Labeler must pick the one its configured labels point at. Each scrape config also attaches a
static ``env`` label, which must come through discovery too.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shipper.config import parse_config
from shipper.pipeline.labels import Labeler

from servers import RedisProcess, free_port, require, start_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PROMETHEUS = "/usr/bin/prometheus"
EXPORTER = "/usr/bin/prometheus-redis-exporter"


def _executable(path: str) -> bool:
    return shutil.which(path) is not None


@dataclass
class Stack:
    redis: RedisProcess
    exporter_port: int
    prom_url: str
    workdir: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.prom_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = json.load(resp)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def wait_series(self, promql: str, timeout: float = 20.0, count: int = 1) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                result = self.query(promql)
                if len(result) >= count:
                    return result
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"Prometheus never returned {count} series for {promql}")
            time.sleep(0.2)

    def run_id(self) -> str:
        return self.redis.client().info("server")["run_id"]


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} not ready")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    require("prometheus", _executable(PROMETHEUS), "apt-get install prometheus")
    require("prometheus-redis-exporter", _executable(EXPORTER), "apt-get install prometheus-redis-exporter")
    tmp = tmp_path_factory.mktemp("labels-prom")
    redis = start_server("redis7", tmp)
    exporter_port = free_port()
    exporter_log = (tmp / "exporter.log").open("wb")
    prom_log = (tmp / "prometheus.log").open("wb")
    exporter = subprocess.Popen(
        [
            EXPORTER,
            f"--redis.addr=redis://127.0.0.1:{redis.port}",
            f"--web.listen-address=127.0.0.1:{exporter_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=exporter_log,
    )
    prom_port = free_port()
    (tmp / "prometheus.yml").write_text(
        f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  # classic / sidecar: instance = the exporter's address
  - job_name: redis_sidecar
    static_configs:
      - targets: ['127.0.0.1:{exporter_port}']
        labels: {{env: sidecar-env}}
  # multi-target, as in redis_exporter's README: instance = the target, redis://host:port
  - job_name: redis_targets
    metrics_path: /scrape
    static_configs:
      - targets: ['redis://127.0.0.1:{redis.port}']
        labels: {{env: multi-env, cluster_name: cache-eu}}
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:{exporter_port}
"""
    )
    prom = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={tmp / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=prom_log,
    )
    s = Stack(redis, exporter_port, f"http://127.0.0.1:{prom_port}", tmp)
    try:
        _wait_http(f"http://127.0.0.1:{exporter_port}/metrics", exporter)
        _wait_http(f"{s.prom_url}/-/ready", prom)
        s.wait_series(f'redis_instance_info{{run_id="{s.run_id()}"}}', count=2)
        yield s
    finally:
        _stop(prom)
        _stop(exporter)
        s.redis.stop()
        exporter_log.close()
        prom_log.close()


def _labeler(stack: Stack, extra: dict[str, Any], copy: list[str], prom_url: str | None = None) -> Labeler:
    cfg = parse_config(
        {
            "sources": [{"type": "redis", "url": stack.redis.url}],
            "discover_labels": {"prometheus_url": prom_url or stack.prom_url, "copy": copy, "timeout": "3s"},
            **extra,
        }
    )
    return Labeler(cfg)


def _series(stack: Stack, job: str, run_id: str) -> dict[str, str]:
    """The one series of ``job`` for ``run_id``, waiting for its first scrape after a restart."""
    result = stack.wait_series(f'redis_instance_info{{run_id="{run_id}", job="{job}"}}')
    assert len(result) == 1, result
    return result[0]["metric"]


def test_sidecar_scrape_labels_equal_the_metric_labels(stack: Stack) -> None:
    copy = ["instance", "job", "env"]
    metric = _series(stack, "redis_sidecar", stack.run_id())
    assert metric["instance"] == f"127.0.0.1:{stack.exporter_port}"

    async def run() -> dict[str, str]:
        lab = _labeler(stack, {"labels": {"job": "redis_sidecar"}}, copy)
        await lab.start()
        try:
            ev: dict[str, Any] = {"message": "x"}
            lab.apply(ev)
            return ev["labels"]
        finally:
            await lab.close()

    labels = asyncio.run(run())
    assert labels == {k: metric[k] for k in copy}


def test_multi_target_scrape_labels_equal_the_metric_labels(stack: Stack) -> None:
    metric = _series(stack, "redis_targets", stack.run_id())
    assert metric["instance"] == f"redis://127.0.0.1:{stack.redis.port}"

    async def run() -> dict[str, str]:
        cfg = parse_config(
            {
                "sources": [{"type": "redis", "url": stack.redis.url}],
                "instance_preset": "multi-target",
                "discover_labels": {
                    "prometheus_url": stack.prom_url,
                    "copy": ["instance", "job", "env", "cluster_name"],
                    "timeout": "3s",
                },
            }
        )
        lab = Labeler(cfg)
        await lab.start()
        try:
            ev: dict[str, Any] = {}
            lab.apply(ev)
            return ev["labels"]
        finally:
            await lab.close()

    labels = asyncio.run(run())
    assert labels == {k: metric[k] for k in ("instance", "job", "env", "cluster_name")}


def test_multi_target_preset_without_prometheus_gives_the_scraped_instance(stack: Stack) -> None:
    """Users without discovery still match: the preset spells instance as the scrape did."""
    metric = _series(stack, "redis_targets", stack.run_id())
    # the source URL carries credentials and a db number, which the target never shows
    cfg = parse_config(
        {
            "sources": [{"type": "redis", "url": f"redis://default:pw@127.0.0.1:{stack.redis.port}/3"}],
            "instance_preset": "multi-target",
            "labels": {"job": "redis_targets"},
        }
    )
    labels = Labeler(cfg).labels_for_source()
    assert labels == {"instance": metric["instance"], "job": metric["job"]}


def test_discovered_labels_follow_a_redis_restart_to_its_new_run_id(stack: Stack) -> None:
    """Restart Redis -> new run_id -> the Labeler finds the new run_id's series by itself.

    ``run_id`` is copied here only to make the adoption of the NEW series visible: instance,
    job and env are the same before and after a restart.
    """
    old_run_id = stack.run_id()

    async def run() -> None:
        cfg = parse_config(
            {
                "sources": [{"type": "redis", "url": stack.redis.url}],
                "labels": {"job": "redis_targets"},
                "discover_labels": {
                    "prometheus_url": stack.prom_url,
                    "copy": ["instance", "job", "env", "run_id"],
                    "refresh": "500ms",
                    "timeout": "2s",
                },
            }
        )
        lab = Labeler(cfg)
        await lab.start()
        try:
            assert lab.labels_for_source()["run_id"] == old_run_id
            port = stack.redis.port
            await asyncio.to_thread(stack.redis.stop)
            stack.redis = await asyncio.to_thread(start_server, "redis7", stack.workdir, port=port)
            new_run_id = await asyncio.to_thread(stack.run_id)
            assert new_run_id != old_run_id
            # whichever job Prometheus scrapes first, only redis_targets' series may be adopted
            deadline = time.monotonic() + 20
            while lab.labels_for_source()["run_id"] != new_run_id:
                assert time.monotonic() < deadline, lab.status()
                await asyncio.sleep(0.1)
            metric = await asyncio.to_thread(_series, stack, "redis_targets", new_run_id)
            assert lab.labels_for_source() == {k: metric[k] for k in ("instance", "job", "env", "run_id")}
            assert lab.status()[0]["run_id"] == new_run_id
        finally:
            await lab.close()

    asyncio.run(run())


class TcpRelay:
    """A loopback TCP relay in front of Prometheus that can be cut: Prometheus "goes down"
    for the Labeler without stopping the module's real Prometheus."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.server: asyncio.base_events.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        ur, uw = await asyncio.open_connection("127.0.0.1", self.target_port)
        self.writers += [w, uw]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(r, uw), pipe(ur, w))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        await self.server.wait_closed()


def test_prometheus_down_keeps_the_last_good_labels(stack: Stack) -> None:
    """Prometheus stops answering after one good answer: the labels stay, the error is counted,
    and the failure is reported without losing the discovered values."""
    metric = _series(stack, "redis_targets", stack.run_id())
    prom_port = int(stack.prom_url.rsplit(":", 1)[1])

    async def run() -> None:
        relay = TcpRelay(prom_port)
        port = await relay.start()
        lab = _labeler(stack, {"labels": {"job": "redis_targets"}}, ["instance", "job", "env"],
                       prom_url=f"http://127.0.0.1:{port}")
        await lab.start()
        try:
            good = lab.labels_for_source()
            assert good == {k: metric[k] for k in ("instance", "job", "env")}
            await relay.cut()
            assert await lab.refresh() is False
            assert lab.labels_for_source() == good
            st = lab.status()[0]
            assert st["errors"] == 1 and "failed" in st["last_error"], st
        finally:
            await lab.close()

    asyncio.run(run())
