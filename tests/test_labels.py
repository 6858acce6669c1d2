"""Labels: static, templates, presets, validation, and discovery against a scripted Prometheus.

The end-to-end proof with the real Prometheus and redis_exporter is tests/test_labels_prometheus.py;
here a small Prometheus stand-in (aiohttp, the /api/v1/query JSON contract) lets each test
script exactly the answer it needs (errors, no series, two series), against a real Redis.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from shipper.config import AgentConfig, ConfigError, parse_config
from shipper.pipeline.labels import (
    MAX_LABELS,
    Labeler,
    choose_series,
    parse_redis_url,
    promql_string,
    redact_url,
)

from servers import free_port, start_server

HOST = "agent-host-1"


def labeler(data: dict[str, Any], env: dict[str, str] | None = None, hostname: str = HOST) -> Labeler:
    return Labeler(parse_config(data), env=env or {}, hostname=hostname)


def problems(excinfo: pytest.ExceptionInfo[ConfigError]) -> dict[str, str]:
    return dict(excinfo.value.problems)


# --- static labels and templates


def test_static_labels_are_set_on_every_event_as_a_new_dict() -> None:
    lab = labeler({"labels": {"job": "redis", "env": "prod", "cluster": "cache-eu"}})
    a: dict[str, Any] = {"message": "a"}
    b: dict[str, Any] = {"message": "b", "labels": {"stale": "x"}}
    lab.apply(a)
    lab.apply(b)
    assert a["labels"] == {"job": "redis", "env": "prod", "cluster": "cache-eu"}
    assert b["labels"] == a["labels"]
    a["labels"]["env"] = "changed"
    assert b["labels"]["env"] == "prod"
    assert lab.labels_for_source()["env"] == "prod"


def test_env_templates_in_labels_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_IP", "10.4.0.17")
    monkeypatch.setenv("NODE_NAME", "node-a")
    cfg = parse_config({"labels": {"instance": "redis://${POD_IP}:6379", "node": "${NODE_NAME}", "job": "redis"}})
    assert Labeler(cfg).labels_for_source() == {
        "instance": "redis://10.4.0.17:6379", "node": "node-a", "job": "redis",
    }


def test_templates_left_in_a_config_built_in_code_are_expanded_with_a_hostname_fallback() -> None:
    cfg = AgentConfig(labels={"host": "${HOSTNAME}", "zone": "${ZONE:-eu-1}", "ip": "${POD_IP}"})
    lab = Labeler(cfg, env={"POD_IP": "10.0.0.9"}, hostname="db-7")
    assert lab.labels_for_source() == {"host": "db-7", "zone": "eu-1", "ip": "10.0.0.9"}
    # an exported HOSTNAME wins over the kernel's name
    lab = Labeler(cfg, env={"POD_IP": "1", "HOSTNAME": "from-env"}, hostname="db-7")
    assert lab.labels_for_source()["host"] == "from-env"


def test_an_unset_template_without_default_is_a_config_error_naming_the_label() -> None:
    with pytest.raises(ConfigError) as ei:
        Labeler(AgentConfig(labels={"instance": "redis://${POD_IP}:6379"}), env={}, hostname=HOST)
    assert "POD_IP" in problems(ei)["labels.instance"]


def test_an_empty_label_value_is_not_shipped(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "shipper.pipeline.labels"):
        lab = labeler({"labels": {"job": "redis", "cluster": "${CLUSTER:-}"}})
    assert lab.labels_for_source() == {"job": "redis"}
    assert "cluster" in caplog.text


# --- presets


@pytest.mark.parametrize(
    ("url", "instance"),
    [
        ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        ("redis://default:s3cret@db1.example.com:6380/2", "redis://db1.example.com:6380"),
        ("redis://DB1.Example.com", "redis://db1.example.com:6379"),
        ("rediss://db1:6390", "rediss://db1:6390"),
        ("redis://[fd00::5]:7000", "redis://[fd00::5]:7000"),
        ("db2:6381", "redis://db2:6381"),
    ],
)
def test_multi_target_preset_spells_instance_like_the_scrape_target(url: str, instance: str) -> None:
    lab = labeler({"sources": [{"type": "redis", "url": url}], "instance_preset": "multi-target"})
    assert lab.labels_for_source() == {"instance": instance}


@pytest.mark.parametrize(
    ("url", "env", "instance"),
    [
        ("redis://db1.example.com:6379", {}, "db1.example.com:9121"),
        ("redis://127.0.0.1:6379", {"POD_IP": "10.4.0.17"}, "10.4.0.17:9121"),
        ("redis://localhost:6379", {}, f"{HOST}:9121"),
    ],
)
def test_sidecar_preset_is_the_exporter_address_on_the_redis_host(
    url: str, env: dict[str, str], instance: str
) -> None:
    lab = labeler({"sources": [{"type": "redis", "url": url}], "instance_preset": "sidecar"}, env=env)
    assert lab.labels_for_source()["instance"] == instance


def test_pod_preset_uses_pod_name_and_falls_back_to_the_host_name() -> None:
    assert labeler({"instance_preset": "pod"}, env={"POD_NAME": "redis-0"}).labels_for_source() == {
        "instance": "redis-0"
    }
    assert labeler({"instance_preset": "pod"}, hostname="redis-1").labels_for_source() == {"instance": "redis-1"}


def test_hostname_preset_is_the_host_name() -> None:
    assert labeler({"instance_preset": "hostname", "labels": {"job": "integrations/redis_exporter"}},
                   hostname="cache-3").labels_for_source() == {
        "instance": "cache-3", "job": "integrations/redis_exporter",
    }


def test_a_static_instance_wins_over_the_preset() -> None:
    lab = labeler({
        "sources": [{"type": "redis", "url": "redis://db1:6379"}],
        "instance_preset": "multi-target",
        "labels": {"instance": "redis://db1.prod:6379"},
    })
    assert lab.labels_for_source() == {"instance": "redis://db1.prod:6379"}


def test_multi_target_preset_without_a_redis_source_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as ei:
        labeler({"instance_preset": "multi-target"})
    assert "type: redis" in problems(ei)["instance_preset"]


def test_each_redis_source_gets_its_own_instance() -> None:
    lab = labeler({
        "sources": [
            {"type": "file", "path": "/var/log/redis/*.log"},
            {"type": "redis", "url": "redis://db1:6379"},
            {"type": "redis", "url": "redis://:pw@db1:6380"},
        ],
        "instance_preset": "multi-target",
        "labels": {"job": "redis"},
    })
    assert lab.labels_for_source(1) == {"instance": "redis://db1:6379", "job": "redis"}
    assert lab.labels_for_source(2)["instance"] == "redis://db1:6380"
    assert lab.labels_for_source("redis://:pw@db1:6380")["instance"] == "redis://db1:6380"
    assert lab.labels_for_source("redis://db1:6380")["instance"] == "redis://db1:6380"
    ev: dict[str, Any] = {}
    lab.apply(ev, 2)
    assert ev["labels"]["instance"] == "redis://db1:6380"
    # a file source (index 0), or anything unknown, gets the first Redis's labels
    assert lab.labels_for_source(0) == lab.labels_for_source() == lab.labels_for_source(1)


# --- validation


@pytest.mark.parametrize("name", ["1abc", "cluster-name", "__name__", "level", "source", "é"])
def test_a_label_name_loki_or_prometheus_would_refuse_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError) as ei:
        labeler({"labels": {name: "x"}})
    assert f"labels.{name}" in problems(ei)


def test_an_invalid_copied_label_name_is_a_config_error_with_its_path() -> None:
    with pytest.raises(ConfigError) as ei:
        labeler({
            "sources": [{"type": "redis"}],
            "discover_labels": {"prometheus_url": "http://p:9090", "copy": ["instance", "cluster-name"]},
        })
    assert list(problems(ei)) == ["discover_labels.copy[1]"]


def test_more_labels_than_fit_in_a_loki_stream_is_a_config_error() -> None:
    fits = {f"l{i}": "v" for i in range(MAX_LABELS)}
    assert len(labeler({"labels": fits}).labels_for_source()) == MAX_LABELS
    with pytest.raises(ConfigError) as ei:
        labeler({"labels": fits, "instance_preset": "hostname"})
    assert "at most 13" in problems(ei)["labels"]


def test_discovery_without_a_redis_source_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as ei:
        labeler({"discover_labels": {"prometheus_url": "http://p:9090"}})
    assert "run_id" in problems(ei)["discover_labels"]


def test_a_prometheus_url_without_scheme_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as ei:
        labeler({"sources": [{"type": "redis"}], "discover_labels": {"prometheus_url": "prometheus:9090"}})
    assert "discover_labels.prometheus_url" in problems(ei)


# --- helpers


def test_choose_series_prefers_configured_labels_then_the_current_choice() -> None:
    a = {"metric": {"instance": "10.0.0.1:9121", "job": "redis_sidecar"}, "value": [2.0, "1"]}
    b = {"metric": {"instance": "redis://db1:6379", "job": "redis_targets"}, "value": [1.0, "1"]}
    assert choose_series([a, b], {"job": "redis_targets"}) is b
    assert choose_series([b, a], {"job": "redis_sidecar"}) is a
    # no preference: stick with what was adopted before, whichever order Prometheus answers in
    assert choose_series([a, b], {}, {"instance": "redis://db1:6379"}) is b
    assert choose_series([b, a], {}, {"instance": "10.0.0.1:9121"}) is a
    # no information at all: the same answer for both orders
    assert choose_series([a, b], {}) is choose_series([b, a], {})


def test_promql_string_escapes_quotes_and_backslashes() -> None:
    assert promql_string('a"b\\c\n') == '"a\\"b\\\\c\\n"'


def test_redact_url_hides_credentials() -> None:
    assert redact_url("redis://user:s3cret@db1:6379/0") == "redis://db1:6379/0"
    assert redact_url("redis://:s3cret@[::1]:6379") == "redis://[::1]:6379"
    assert redact_url("redis://db1:6379") == "redis://db1:6379"


def test_parse_redis_url_handles_unix_sockets() -> None:
    addr = parse_redis_url("unix:///run/redis/redis.sock")
    assert (addr.scheme, addr.path, addr.target) == ("unix", "/run/redis/redis.sock", "unix:///run/redis/redis.sock")


# --- discovery against a scripted Prometheus and a real Redis


def series(run_id: str, **labels: str) -> dict[str, Any]:
    return {
        "metric": {"__name__": "redis_instance_info", "run_id": run_id, "role": "master", **labels},
        "value": [time.time(), "1"],
    }


class FakePrometheus:
    """``GET /api/v1/query`` answered by ``self.answer(query) -> (status, json body)``."""

    def __init__(self, answer: Callable[[str], tuple[int, Any]]) -> None:
        self.answer = answer
        self.queries: list[str] = []
        self.authorization: list[str | None] = []
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def _query(self, request: web.Request) -> web.Response:
        q = request.query.get("query", "")
        self.queries.append(q)
        self.authorization.append(request.headers.get("Authorization"))
        status, body = self.answer(q)
        return web.json_response(body, status=status)

    async def __aenter__(self) -> FakePrometheus:
        app = web.Application()
        app.router.add_get("/api/v1/query", self._query)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


def ok(*result: dict[str, Any]) -> tuple[int, Any]:
    return 200, {"status": "success", "data": {"resultType": "vector", "result": list(result)}}


def test_discovery_asks_for_the_series_with_the_polled_redis_run_id(tmp_path: Path) -> None:
    rp = start_server("redis7", tmp_path)
    run_id = rp.client().info("server")["run_id"]
    try:
        async def run() -> None:
            def answer(q: str) -> tuple[int, Any]:
                return ok(series(run_id, instance="redis://db1:6379", job="redis", env="prod", cluster_name="c1"))

            async with FakePrometheus(answer) as prom:
                lab = labeler({
                    "sources": [{"type": "redis", "url": rp.url}],
                    "labels": {"team": "cache"},
                    "discover_labels": {"prometheus_url": prom.url + "/", "copy": ["instance", "job", "env"]},
                })
                await lab.start()
                try:
                    assert prom.queries == [f'redis_instance_info{{run_id="{run_id}"}}']
                    ev: dict[str, Any] = {}
                    lab.apply(ev)
                    # copied labels adopted, cluster_name not copied, static ones kept
                    assert ev["labels"] == {"team": "cache", "instance": "redis://db1:6379", "job": "redis",
                                            "env": "prod"}
                    assert lab.status()[0]["run_id"] == run_id
                finally:
                    await lab.close()

        asyncio.run(run())
    finally:
        rp.stop()


def test_discovery_reads_run_id_with_the_sources_password_file(tmp_path: Path) -> None:
    rp = start_server("redis7", tmp_path, config={"requirepass": "pa55-word"})
    (tmp_path / "pw").write_text("pa55-word\n")
    run_id = rp.client(password="pa55-word").info("server")["run_id"]
    try:
        async def run() -> None:
            async with FakePrometheus(lambda q: ok(series(run_id, instance="i", job="j"))) as prom:
                lab = labeler({
                    "sources": [{"type": "redis", "url": rp.url, "password_file": str(tmp_path / "pw")}],
                    "discover_labels": {"prometheus_url": prom.url},
                })
                await lab.start()
                await lab.close()
                assert prom.queries == [f'redis_instance_info{{run_id="{run_id}"}}']
                assert lab.labels_for_source() == {"instance": "i", "job": "j"}

        asyncio.run(run())
    finally:
        rp.stop()


def test_a_copied_label_the_series_lacks_keeps_the_static_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rp = start_server("redis7", tmp_path)
    run_id = rp.client().info("server")["run_id"]
    try:
        async def run() -> None:
            async with FakePrometheus(lambda q: ok(series(run_id, instance="redis://x:1", job="redis"))) as prom:
                lab = labeler({
                    "sources": [{"type": "redis", "url": rp.url}],
                    "labels": {"cluster_name": "static-cluster"},
                    "discover_labels": {"prometheus_url": prom.url, "copy": ["instance", "cluster_name"]},
                })
                with caplog.at_level(logging.WARNING, "shipper.pipeline.labels"):
                    await lab.start()
                    await lab.close()
                assert lab.labels_for_source() == {"cluster_name": "static-cluster", "instance": "redis://x:1"}
                assert "cluster_name" in caplog.text

        asyncio.run(run())
    finally:
        rp.stop()


def test_prometheus_errors_keep_the_last_good_labels_until_it_answers_again(tmp_path: Path) -> None:
    rp = start_server("redis7", tmp_path)
    run_id = rp.client().info("server")["run_id"]
    script: list[tuple[int, Any]] = [
        ok(series(run_id, instance="redis://db1:6379", job="redis", env="prod")),
        (503, {"status": "error", "errorType": "unavailable", "error": "overloaded"}),
        (200, "<html>proxy error</html>"),
        (400, {"status": "error", "errorType": "bad_data", "error": "parse error"}),
        ok(series(run_id, instance="redis://db1:6379", job="redis", env="prod-2")),
    ]
    try:
        async def run() -> None:
            async with FakePrometheus(lambda q: script.pop(0)) as prom:
                lab = labeler({
                    "sources": [{"type": "redis", "url": rp.url}],
                    "labels": {"env": "fallback"},
                    "discover_labels": {"prometheus_url": prom.url, "copy": ["instance", "job", "env"]},
                })
                await lab.start()
                try:
                    good = lab.labels_for_source()
                    assert good == {"instance": "redis://db1:6379", "job": "redis", "env": "prod"}
                    for errors in (1, 2, 3):
                        assert await lab.refresh() is False
                        assert lab.labels_for_source() == good
                        assert lab.status()[0]["errors"] == errors
                    assert await lab.refresh() is True
                    assert lab.labels_for_source()["env"] == "prod-2"
                    assert lab.status()[0]["last_error"] is None
                finally:
                    await lab.close()

        asyncio.run(run())
    finally:
        rp.stop()


def test_an_unreachable_redis_keeps_the_fallback_labels_and_never_logs_its_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def run() -> None:
        async with FakePrometheus(lambda q: ok()) as prom:
            lab = labeler({
                "sources": [{"type": "redis", "url": f"redis://admin:Sup3rS3cret@127.0.0.1:{free_port()}",
                             "timeout": "500ms"}],
                "instance_preset": "multi-target",
                "discover_labels": {"prometheus_url": prom.url},
            })
            with caplog.at_level(logging.DEBUG):
                await lab.start()  # must not raise
                await lab.close()
            assert prom.queries == []  # no run_id, no query
            assert lab.labels_for_source()["instance"].startswith("redis://127.0.0.1:")
            st = lab.status()[0]
            assert st["errors"] == 1 and "run_id" in st["last_error"]
            assert "Sup3rS3cret" not in caplog.text and "Sup3rS3cret" not in str(st)

    asyncio.run(run())


def test_a_run_id_not_scraped_yet_is_retried_sooner_than_refresh(tmp_path: Path) -> None:
    """Right after a Redis (re)start Prometheus has no series for the new run_id; discovery
    must not wait a whole ``refresh`` (60 s here) to try again."""
    rp = start_server("redis7", tmp_path)
    run_id = rp.client().info("server")["run_id"]
    answers = [ok(), ok(series(run_id, instance="redis://db1:6379", job="redis"))]
    try:
        async def run() -> None:
            async with FakePrometheus(lambda q: answers.pop(0) if len(answers) > 1 else answers[0]) as prom:
                lab = labeler({
                    "sources": [{"type": "redis", "url": rp.url}],
                    "labels": {"job": "fallback"},
                    "discover_labels": {"prometheus_url": prom.url, "refresh": "60s"},
                })
                await lab.start()
                try:
                    assert lab.labels_for_source() == {"job": "fallback"}
                    assert "no redis_instance_info" in lab.status()[0]["last_error"]
                    deadline = time.monotonic() + 10
                    while lab.labels_for_source().get("job") != "redis":
                        assert time.monotonic() < deadline, lab.status()
                        await asyncio.sleep(0.05)
                    assert lab.labels_for_source() == {"instance": "redis://db1:6379", "job": "redis"}
                finally:
                    await lab.close()

        asyncio.run(run())
    finally:
        rp.stop()


def test_after_a_restart_the_other_jobs_series_is_not_adopted_before_the_configured_jobs(
    tmp_path: Path,
) -> None:
    """Two jobs scrape one Redis and ``labels.job`` names one. Right after a restart Prometheus
    may have scraped only the other job for the new run_id: its labels must not be adopted
    (the stream would flip to the wrong job), the last good labels stay until the configured
    job's series appears."""
    rp = start_server("redis7", tmp_path)
    run_id = rp.client().info("server")["run_id"]
    sidecar = series(run_id, instance="127.0.0.1:9121", job="redis_sidecar")
    targets = series(run_id, instance="redis://db1:6379", job="redis_targets")
    answers = [ok(sidecar, targets), ok(sidecar), ok(sidecar, targets)]
    try:
        async def run() -> None:
            async with FakePrometheus(lambda q: answers.pop(0) if len(answers) > 1 else answers[0]) as prom:
                lab = labeler({
                    "sources": [{"type": "redis", "url": rp.url}],
                    "labels": {"job": "redis_targets"},
                    "discover_labels": {"prometheus_url": prom.url, "refresh": "60s"},
                })
                await lab.start()
                try:
                    good = {"instance": "redis://db1:6379", "job": "redis_targets"}
                    assert lab.labels_for_source() == good
                    assert await lab.refresh() is False  # only the sidecar's series
                    assert lab.labels_for_source() == good
                    assert "none has job='redis_targets'" in lab.status()[0]["last_error"]
                    assert await lab.refresh() is True
                    assert lab.labels_for_source() == good
                finally:
                    await lab.close()

        asyncio.run(run())
    finally:
        rp.stop()


def test_prometheus_url_credentials_are_sent_as_basic_auth_and_never_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rp = start_server("redis7", tmp_path)
    run_id = rp.client().info("server")["run_id"]
    try:
        async def run() -> None:
            async with FakePrometheus(lambda q: ok(series(run_id, instance="i", job="j"))) as prom:
                url = prom.url.replace("http://", "http://reader:Pr0mPass@")
                lab = labeler({"sources": [{"type": "redis", "url": rp.url}],
                               "discover_labels": {"prometheus_url": url}})
                with caplog.at_level(logging.DEBUG):
                    await lab.start()
                    await lab.close()
                assert lab.labels_for_source() == {"instance": "i", "job": "j"}
                assert prom.authorization == ["Basic cmVhZGVyOlByMG1QYXNz"]  # base64("reader:Pr0mPass")

        asyncio.run(run())
    finally:
        rp.stop()
    assert "Pr0mPass" not in caplog.text
