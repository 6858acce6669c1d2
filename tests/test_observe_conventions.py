"""/metrics and /-/reload as Prometheus users expect them: build_info, no _created, a reload endpoint."""

from __future__ import annotations

import asyncio
import platform

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from shipper.observe import metrics
from shipper.observe.server import ObserveServer


async def _call(method: str, url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as s, s.request(method, url) as r:
        return r.status, await r.text()


def test_metrics_have_build_info_and_no_created_series() -> None:
    async def go() -> tuple[int, str]:
        metrics.SINK_SENT.labels("test-created").inc()
        srv = ObserveServer("127.0.0.1:0", lambda: {"started": True})
        await srv.start()
        try:
            return await _call("GET", f"{srv.url}/metrics")
        finally:
            await srv.close()

    status, body = asyncio.run(go())
    assert status == 200
    assert "_created" not in body
    families = {f.name: f for f in text_string_to_metric_families(body)}
    (sample,) = families["redis_shipper_build_info"].samples
    assert sample.value == 1 and sample.labels["python"] == platform.python_version()
    assert sample.labels["version"] == metrics.package_version() != "unknown"


def test_post_reload_calls_the_reload_hook_and_reports_a_refusal() -> None:
    calls: list[int] = []
    answers = iter([None, "labels.x: bad"])

    def reload() -> str | None:
        calls.append(1)
        return next(answers)

    async def go() -> list[tuple[int, str]]:
        srv = ObserveServer("127.0.0.1:0", lambda: {"started": True})
        srv.reload = reload
        await srv.start()
        try:
            return [await _call("POST", f"{srv.url}/-/reload"), await _call("POST", f"{srv.url}/-/reload"),
                    await _call("GET", f"{srv.url}/-/reload")]
        finally:
            await srv.close()

    ok, refused, get = asyncio.run(go())
    assert ok == (200, "reloading\n")
    assert refused[0] == 400 and "labels.x: bad" in refused[1]
    assert get[0] == 404  # a GET (a crawler, a probe) never reloads
    assert len(calls) == 2


def test_post_reload_is_404_when_no_hook_is_set() -> None:
    async def go() -> tuple[int, str]:
        srv = ObserveServer("127.0.0.1:0", lambda: {"started": True})
        await srv.start()
        try:
            return await _call("POST", f"{srv.url}/-/reload")
        finally:
            await srv.close()

    assert asyncio.run(go())[0] == 404
