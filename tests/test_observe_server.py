"""The agent's /metrics, /healthz and /ready (shipper/observe/server.py), over real HTTP."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shipper.config import ConfigError, parse_config
from shipper.observe import metrics
from shipper.observe.server import DEFAULT_LISTEN, ObserveServer, agent_status, parse_listen, readiness


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers or {}) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


def _serve(status: Any, **kw: Any) -> ObserveServer:
    return ObserveServer("127.0.0.1:0", status, **kw)


def test_metrics_serves_the_agent_registry_and_process_metrics() -> None:
    async def go() -> tuple[int, str, str]:
        metrics.SINK_SENT.labels("test-observe").inc(3)
        srv = _serve(lambda: {"started": True})
        await srv.start()
        try:
            return await _get(f"{srv.url}/metrics")
        finally:
            await srv.close()

    status, ctype, body = asyncio.run(go())
    assert status == 200
    assert ctype.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body)}
    sent = families["redis_shipper_sink_sent_events"]
    assert any(s.labels.get("sink") == "test-observe" and s.value >= 3 for s in sent.samples)
    assert "process_resident_memory_bytes" in families
    assert "python_info" in families


def test_metrics_answers_openmetrics_when_asked() -> None:
    async def go() -> tuple[int, str, str]:
        srv = _serve(lambda: {"started": True})
        await srv.start()
        try:
            return await _get(f"{srv.url}/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
        finally:
            await srv.close()

    status, ctype, body = asyncio.run(go())
    assert status == 200
    assert ctype.startswith("application/openmetrics-text")
    assert body.rstrip().endswith("# EOF")


def test_healthz_answers_ok_even_when_not_ready() -> None:
    async def go() -> tuple[tuple[int, str, str], tuple[int, str, str]]:
        srv = _serve(lambda: {"started": False})
        await srv.start()
        try:
            return await _get(f"{srv.url}/healthz"), await _get(f"{srv.url}/ready")
        finally:
            await srv.close()

    (hs, _, hbody), (rs, _, rbody) = asyncio.run(go())
    assert (hs, hbody.strip()) == (200, "ok")
    assert rs == 503 and "not started" in rbody


def test_ready_flips_to_503_when_a_sink_fails_longer_than_the_grace() -> None:
    state: dict[str, Any] = {
        "started": True,
        "sinks": {"loki": {"healthy": True, "failing_since": None, "pending": 0}},
        "sources": {"file:/var/log/redis/redis-server.log": "running"},
    }

    async def go() -> list[tuple[int, str]]:
        srv = _serve(lambda: state, sink_failure_grace=30.0)
        await srv.start()
        out = []
        try:
            out.append((await _get(f"{srv.url}/ready"))[::2])
            # failing for 5 s: within the grace, still ready (a Loki restart must not flap readiness)
            state["sinks"]["loki"] = {"healthy": False, "failing_since": time.time() - 5, "pending": 40}
            out.append((await _get(f"{srv.url}/ready"))[::2])
            state["sinks"]["loki"] = {"healthy": False, "failing_since": time.time() - 120, "pending": 40}
            out.append((await _get(f"{srv.url}/ready"))[::2])
            state["sinks"]["loki"] = {"healthy": True, "failing_since": None, "pending": 0}
            out.append((await _get(f"{srv.url}/ready"))[::2])
        finally:
            await srv.close()
        return out

    (s1, _), (s2, _), (s3, b3), (s4, _) = asyncio.run(go())
    assert (s1, s2, s3, s4) == (200, 200, 503, 200)
    assert "sink:loki" in b3 and "40 events waiting" in b3


def test_ready_names_a_crashed_or_never_started_source() -> None:
    ready, body = readiness({"started": True, "sinks": {}, "sources": {"redis:a": "crashed", "file:b": "running",
                                                                          "redis:c": "not started"}})
    assert not ready
    assert {p["part"] for p in body["not_ready"]} == {"source:redis:a", "source:redis:c"}


def test_ready_is_503_when_the_status_callback_raises() -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("spool closed")

    async def go() -> tuple[int, str, str]:
        srv = _serve(broken)
        await srv.start()
        try:
            return await _get(f"{srv.url}/ready")
        finally:
            await srv.close()

    status, _, body = asyncio.run(go())
    assert status == 503 and "spool closed" in body


def test_ready_accepts_an_async_status_callback() -> None:
    async def status() -> dict[str, Any]:
        return {"started": True, "sinks": {}, "sources": {}}

    async def go() -> int:
        srv = _serve(status)
        await srv.start()
        try:
            return (await _get(f"{srv.url}/ready"))[0]
        finally:
            await srv.close()

    assert asyncio.run(go()) == 200


def test_binds_loopback_by_default() -> None:
    cfg = parse_config({})
    assert cfg.metrics.listen == DEFAULT_LISTEN
    host, port = parse_listen(cfg.metrics.listen)  # type: ignore[misc]
    assert host == "127.0.0.1" and port == 9377


def test_default_server_listens_on_loopback_only() -> None:
    # a non-loopback address of this host, if any, must not answer
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("192.0.2.1", 9))  # TEST-NET: no packet is sent for a UDP connect
            other = s.getsockname()[0]
    except OSError:
        other = ""

    async def go() -> tuple[tuple[str, int] | None, int, bool | None]:
        # the default host with a free port (the default port may be taken on a dev machine)
        host, _ = parse_listen(DEFAULT_LISTEN)  # type: ignore[misc]
        srv = ObserveServer(f"{host}:0", lambda: {"started": True})
        await srv.start()
        try:
            ok = (await _get(f"http://127.0.0.1:{srv.port}/healthz"))[0]
            reachable = None
            if other and not other.startswith("127."):
                try:
                    await _get(f"http://{other}:{srv.port}/healthz")
                    reachable = True
                except aiohttp.ClientConnectionError:
                    reachable = False
            return srv.bound, ok, reachable
        finally:
            await srv.close()

    bound, ok, reachable = asyncio.run(go())
    assert bound is not None and bound[0] == "127.0.0.1"
    assert ok == 200
    assert reachable in (None, False)


@pytest.mark.parametrize("listen", ["9377", "localhost", "127.0.0.1:http", "127.0.0.1:70000", "::1:9377",
                                    "[::1]9377"])
def test_a_bad_listen_value_is_a_config_error_naming_the_key(listen: str) -> None:
    with pytest.raises(ConfigError) as e:
        ObserveServer(listen, lambda: {})
    assert e.value.problems[0][0] == "metrics.listen"
    assert listen in e.value.problems[0][1]


def test_listen_forms() -> None:
    assert parse_listen("") is None
    assert parse_listen(":9377") == ("0.0.0.0", 9377)
    assert parse_listen("[::1]:9377") == ("::1", 9377)
    assert parse_listen("0.0.0.0:1") == ("0.0.0.0", 1)


def test_disabled_server_does_not_listen() -> None:
    async def go() -> bool:
        srv = ObserveServer("", lambda: {})
        await srv.start()
        await srv.close()
        return srv.enabled

    assert asyncio.run(go()) is False


def test_port_in_use_is_a_clear_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]

        async def go() -> None:
            await ObserveServer(f"127.0.0.1:{port}", lambda: {}).start()

        with pytest.raises(ConfigError) as e:
            asyncio.run(go())
    key, reason = e.value.problems[0]
    assert key == "metrics.listen"
    assert "address already in use" in reason.lower()


def test_agent_status_reads_a_running_agent_without_touching_it() -> None:
    """The duck-typed reader over the runtime's Agent shape (started, workers, spool, tasks)."""

    class _Sink:
        def __init__(self, name: str) -> None:
            self.name = name

    class _Worker:
        def __init__(self, name: str, healthy: bool, since: float | None) -> None:
            self.sink, self.healthy, self.failing_since = _Sink(name), healthy, since

    class _Spool:
        def pending(self, name: str) -> int:
            return {"loki": 7, "local": 0}[name]

    class _Src:
        def __init__(self, name: str) -> None:
            self.name = name

    async def go() -> dict[str, Any]:
        async def boom() -> None:
            raise RuntimeError("bug")

        async def forever() -> None:
            await asyncio.sleep(3600)

        crashed = asyncio.create_task(boom())
        running = asyncio.create_task(forever())
        await asyncio.sleep(0)
        await asyncio.gather(crashed, return_exceptions=True)

        class _Agent:
            started = asyncio.Event()
            workers = [_Worker("loki", False, 1000.0), _Worker("local", True, None)]
            spool = _Spool()
            sources = [_Src("redis:a"), _Src("file:b"), _Src("file:c")]
            source_tasks = [crashed, running]

        _Agent.started.set()
        st = agent_status(_Agent())
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        return st

    st = asyncio.run(go())
    assert st["started"] is True
    assert st["sinks"]["loki"] == {"healthy": False, "failing_since": 1000.0, "pending": 7, "stalled_for": 0.0,
                                   "last_error": None}
    assert st["sinks"]["local"]["pending"] == 0
    assert st["sources"] == {"redis:a": "crashed", "file:b": "running", "file:c": "not started"}


def test_healthz_and_ready_fail_when_the_event_loop_is_stuck(monkeypatch: pytest.MonkeyPatch) -> None:
    import shipper.observe.server as server_module

    monkeypatch.setattr(server_module, "LOOP_TIMEOUT", 0.3)

    async def go() -> list[tuple[int, str]]:
        srv = _serve(lambda: {"started": True})
        await srv.start()
        try:
            url = srv.url

            def fetch(path: str) -> tuple[int, str]:
                import urllib.error
                import urllib.request

                try:
                    with urllib.request.urlopen(f"{url}{path}", timeout=5) as r:
                        return r.status, r.read().decode()
                except urllib.error.HTTPError as e:
                    return e.code, e.read().decode()

            ok = await asyncio.to_thread(fetch, "/healthz")
            # the loop blocks in a call that never yields (a stuck agent) while the probes arrive
            box: list[tuple[int, str]] = []
            t = threading.Thread(target=lambda: box.extend([fetch("/healthz"), fetch("/ready")]))
            t.start()
            time.sleep(1.0)  # blocks the loop: the HTTP thread's coroutines cannot run
            t.join()
            return [ok, *box]
        finally:
            await srv.close()

    ok, stuck_health, stuck_ready = asyncio.run(go())
    assert ok == (200, "ok\n")
    assert stuck_health[0] == 503 and "did not answer" in stuck_health[1]
    assert stuck_ready[0] == 503 and "did not answer" in stuck_ready[1]


def test_ready_names_a_state_write_failing_on_a_full_disk() -> None:
    from shipper.observe.server import readiness
    from shipper.pipeline import state_guard

    state_guard.record_failure("spool", "/var/lib/redis-shipper/spool.sqlite",
                               OSError(28, "No space left on device"))
    try:
        ready, body = readiness({"started": True, "sinks": {}, "sources": {}})
        assert not ready
        assert body["not_ready"] == [{"part": "state:spool", "reason":
                                      "cannot write /var/lib/redis-shipper/spool.sqlite: "
                                      "ENOSPC: No space left on device"}]
    finally:
        state_guard.record_success("spool")
    assert readiness({"started": True, "sinks": {}, "sources": {}})[0]
