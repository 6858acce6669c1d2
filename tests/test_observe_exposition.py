"""/metrics in the formats Prometheus asks for, without prometheus_client's exposition module
(shipper/observe/exposition.py): the same bytes and Content-Type as prometheus_client's own
encoders, and a scrape by the real Debian Prometheus."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import exposition as reference
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics import Counter, Enum, Gauge, Histogram, Info, Summary
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import CollectorRegistry

from shipper.observe import metrics
from shipper.observe.exposition import choose_encoder
from shipper.observe.server import ObserveServer

from servers import free_port, require

PROMETHEUS = "/usr/bin/prometheus"
ROOT = Path(__file__).resolve().parent.parent

#: Accept headers as scrapers send them: Prometheus 2.x (2.42, Debian 12), Prometheus 3.x's
#: defaults, a UTF-8 scrape, curl (none), a browser, and the other escapings
ACCEPT = [
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8,text/plain;version=1.0.0;escaping=allow-utf-8;"
    "q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "text/plain;version=1.0.0;escaping=allow-utf-8",
    "text/plain;version=1.0.0;escaping=dots",
    "text/plain;version=1.0.0;escaping=values",
    "text/plain;version=1.0.0;escaping=nonsense",
    "application/openmetrics-text;version=1.0.0;escaping=dots",
    "application/openmetrics-text",
    "application/openmetrics-text;version=0.0.1",
    "text/plain;version=0.0.4",
    "text/plain",
    "",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
]


def _registry() -> CollectorRegistry:
    """Every kind of metric, and label values that need escaping (quote, backslash, newline, UTF-8)."""
    reg = CollectorRegistry()
    c = Counter("demo_requests", "Requests\nby path \\ kind", ["path", "kind"], registry=reg)
    c.labels('/a"b', "x\\y").inc(3)
    c.labels("/é\nz", "ok").inc(0.5)
    Gauge("demo_temperature", "A gauge", registry=reg).set(-1.5e-7)
    g = Gauge("demo_big", "Large values", ["unit"], registry=reg)
    g.labels("bytes").set(123456789012.0)
    g.labels("inf").set(float("inf"))
    h = Histogram("demo_latency_seconds", "A histogram", ["sink"], registry=reg, buckets=(0.01, 0.1, 1, 10))
    for v in (0.005, 0.05, 0.5, 5, 50):
        h.labels("loki").observe(v)
    Summary("demo_size_bytes", "A summary", registry=reg).observe(42)
    Info("demo_build", "An info", registry=reg).info({"version": "1.2.3", "commit": "abc"})
    Enum("demo_state", "An enum", states=["up", "down"], registry=reg).state("down")
    ProcessCollector(registry=reg)
    PlatformCollector(registry=reg)
    GCCollector(registry=reg)
    return reg


@pytest.mark.parametrize("accept", ACCEPT)
def test_metrics_bytes_and_content_type_equal_prometheus_clients_for_every_accept_header(accept: str) -> None:
    for reg in (_registry(), metrics.REGISTRY):
        ours, ours_type = choose_encoder(accept)
        theirs, theirs_type = reference.choose_encoder(accept)
        assert ours_type == theirs_type
        # the process and GC collectors read values that move between two calls: the rest is
        # compared byte for byte, and those series must be in both
        a, b = ours(reg).decode(), theirs(reg).decode()
        assert _steady_lines(a) == _steady_lines(b)
        assert _names(a) == _names(b)


def _steady_lines(text: str) -> list[str]:
    # with ``escaping=dots`` the names' underscores are doubled (``python__gc__...``)
    return [line for line in text.splitlines()
            if not line.replace("__", "_").startswith(("process_", "python_gc_"))]


def _names(text: str) -> list[str]:
    return [line.split("{")[0].split(" ")[0] for line in text.splitlines()]


def test_the_text_format_escapes_label_values_and_renames_counters_and_infos() -> None:
    encode, ctype = choose_encoder("")
    text = encode(_registry()).decode()
    assert ctype == "text/plain; version=0.0.4; charset=utf-8"
    assert 'demo_requests_total{kind="x\\\\y",path="/a\\"b"} 3.0' in text
    assert 'demo_requests_total{kind="ok",path="/é\\nz"} 0.5' in text
    assert "# HELP demo_requests_total Requests\\nby path \\\\ kind" in text
    assert 'demo_build_info{commit="abc",version="1.2.3"} 1.0' in text
    assert 'demo_big{unit="bytes"} 1.23456789012e+11' in text and 'demo_big{unit="inf"} +Inf' in text
    assert 'demo_latency_seconds_bucket{le="+Inf",sink="loki"} 5.0' in text


def test_the_agent_never_imports_prometheus_clients_exposition_module() -> None:
    code = ("import sys, asyncio\n"
            "import shipper.commands.run, shipper.observe.server, shipper.pipeline.runtime\n"
            "from shipper.observe.server import ObserveServer\n"
            "from shipper.observe.exposition import choose_encoder\n"
            "from shipper.observe import metrics\n"
            "choose_encoder('application/openmetrics-text')[0](metrics.REGISTRY)\n"
            "choose_encoder('')[0](metrics.REGISTRY)\n"
            "heavy = [m for m in ('prometheus_client.exposition', 'wsgiref', 'urllib.request') if m in sys.modules]\n"
            "print(heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_asking_prometheus_client_for_anything_else_still_gives_the_whole_package() -> None:
    code = ("import shipper.observe.metrics, sys\n"
            "from prometheus_client import generate_latest, start_http_server, REGISTRY\n"
            "import prometheus_client\n"
            "print('prometheus_client.exposition' in sys.modules, callable(start_http_server),\n"
            "      prometheus_client.Counter is shipper.observe.metrics.Counter)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True"]


@pytest.mark.integration
def test_the_real_prometheus_scrapes_the_agents_metrics(tmp_path: Path) -> None:
    require("prometheus", shutil.which(PROMETHEUS) is not None, "apt-get install prometheus")
    metrics.SINK_SENT.labels("scraped-by-prometheus").inc(7)

    async def scrape() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        srv = ObserveServer("127.0.0.1:0", lambda: {"started": True})
        await srv.start()
        prom_port = free_port()
        (tmp_path / "prometheus.yml").write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            f"scrape_configs:\n  - job_name: agent\n    static_configs: [{{targets: ['127.0.0.1:{srv.port}']}}]\n")
        log = (tmp_path / "prometheus.log").open("wb")
        prom = subprocess.Popen([PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}",
                                 f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{prom_port}"],
                                stdout=subprocess.DEVNULL, stderr=log)
        try:
            query = f"http://127.0.0.1:{prom_port}/api/v1/query?"
            up = await asyncio.to_thread(_wait_series, query, 'up{job="agent"} == 1', prom)
            sent = await asyncio.to_thread(
                _wait_series, query, 'redis_shipper_sink_sent_events_total{sink="scraped-by-prometheus"}', prom)
            return up, sent
        finally:
            prom.terminate()
            prom.wait(20)
            log.close()
            await srv.close()

    up, sent = asyncio.run(scrape())
    assert len(up) == 1
    assert [float(s["value"][1]) for s in sent] == [7.0]  # type: ignore[index]


def _wait_series(query: str, promql: str, prom: subprocess.Popen[bytes], timeout: float = 30.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert prom.poll() is None, "prometheus exited"
        try:
            with urllib.request.urlopen(query + urllib.parse.urlencode({"query": promql}), timeout=2) as r:
                result = json.load(r)["data"]["result"]
            if result:
                return list(result)
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"Prometheus never returned {promql}")
