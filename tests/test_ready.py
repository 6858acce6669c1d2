"""/ready of a running agent is 503 naming a source in crash backoff, a sink worker that died and
a sink that is stuck; /healthz stays 200 (it is about the process). Real agents, real failures,
asked over HTTP."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from parsers.events import make_event
from shipper.api import Batch, Delivery, RetryableError, Sink, Source, SourceContext, SpooledEvent
from shipper.config import parse_config
from shipper.observe import health
from shipper.observe.server import ObserveServer, agent_status
from shipper.pipeline.runtime import Agent


def ev(i: int) -> dict:
    return make_event(timestamp="2026-11-25T17:00:00.000000Z", source="redis", category="other",
                      event="unrecognized", message=f"line {i}")


class SteadySource(Source):
    """Emits ``n`` events, then waits to be stopped."""

    key_prefix = "steady:"

    def __init__(self, n: int = 20, name: str = "steady") -> None:
        self.n, self.name = n, name

    async def run(self, ctx: SourceContext) -> None:
        if not ctx.positions.get("steady:done"):
            await ctx.emit(Batch([ev(i) for i in range(self.n)], {"steady:done": True}))
        await ctx.stop.wait()


class CrashingSource(Source):
    """Raises as soon as it runs, ``crashes`` times (forever with None), then runs quietly."""

    key_prefix = "crash:"

    def __init__(self, crashes: int | None) -> None:
        self.name, self.crashes, self.runs = "crashing", crashes, 0

    async def run(self, ctx: SourceContext) -> None:
        self.runs += 1
        if self.crashes is None or self.runs <= self.crashes:
            raise ConnectionResetError("the source's connection was reset by peer")
        await ctx.stop.wait()


class Sink_(Sink):
    """Accepts everything, or behaves as ``mode`` says: ``down`` (every send is a retryable
    failure), ``hang`` (a send that never returns), ``reject`` (refuses every event for good)."""

    def __init__(self, mode: str = "ok") -> None:
        self.name, self.mode = "rec", mode
        self.got: list[SpooledEvent] = []
        self.calls = 0
        self.max_wait = 0.05
        self.retry_initial = 0.05
        self.retry_max = 0.2

    async def send(self, batch: list[SpooledEvent]) -> Delivery:
        self.calls += 1
        if self.mode == "down":
            raise RetryableError("connection refused", status=None)
        if self.mode == "hang":
            await asyncio.Event().wait()
        if self.mode == "reject":
            return Delivery(rejected=[(i, "refused") for i in range(len(batch))])
        self.got.extend(batch)
        return Delivery()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


async def _probe(state_dir: Path, sources: list[Source], sink: Sink,
                 until: Callable[[dict[str, Any]], bool], *, stall_after: float = 60.0,
                 before: Callable[[], None] | None = None,
                 sink_failure_grace: float = 60.0) -> tuple[list[tuple[int, dict]], int]:
    """Run an agent behind a real ObserveServer; poll /ready until ``until(body)`` (20 s at most);
    return every /ready answer and the last /healthz status."""
    cfg = parse_config({"state_dir": str(state_dir), "timezone": "UTC", "shutdown_timeout": 1,
                        "ready": {"stall_after": stall_after, "sink_failure_grace": sink_failure_grace}})
    agent = Agent(cfg, sources=sources, sinks=[sink])
    server = ObserveServer("127.0.0.1:0", lambda: agent_status(agent))
    await server.start()
    answers: list[tuple[int, dict]] = []
    try:
        if before is not None:
            before()
        await agent.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            code, text = await asyncio.to_thread(_get, f"{server.url}/ready")
            answers.append((code, orjson.loads(text)))
            if until(answers[-1][1]):
                break
            await asyncio.sleep(0.1)
        healthz, _ = await asyncio.to_thread(_get, f"{server.url}/healthz")
    finally:
        await agent.shutdown()
        await server.close()
    return answers, healthz


def _part(body: dict, part: str) -> str | None:
    return next((p["reason"] for p in body.get("not_ready", []) if p["part"] == part), None)


def test_ready_is_503_naming_a_source_in_crash_backoff_while_healthz_stays_200(tmp_path: Path) -> None:
    answers, healthz = asyncio.run(_probe(
        tmp_path, [SteadySource(), CrashingSource(crashes=None)], Sink_(),
        lambda body: _part(body, "source:crashing") is not None))
    code, body = answers[-1]
    assert code == 503
    reason = _part(body, "source:crashing")
    assert reason is not None and "crash backoff" in reason and "reset by peer" in reason
    assert _part(body, "source:steady") is None, "only the crashing source is named"
    assert healthz == 200


def test_a_source_that_recovered_from_a_crash_is_ready_again(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "RECOVERED_AFTER", 0.5)
    src = CrashingSource(crashes=1)
    answers, _ = asyncio.run(_probe(tmp_path, [src], Sink_(),
                                    lambda body: src.runs >= 2 and body["ready"]))
    assert any(code == 503 and _part(body, "source:crashing") for code, body in answers), \
        "503 during the backoff"
    assert answers[-1] == (200, {"ready": True})


def test_ready_is_503_naming_a_sink_whose_send_never_returns(tmp_path: Path) -> None:
    answers, healthz = asyncio.run(_probe(tmp_path, [SteadySource()], Sink_("hang"),
                                          lambda body: _part(body, "sink:rec") is not None, stall_after=1.0))
    code, body = answers[-1]
    reason = _part(body, "sink:rec")
    assert code == 503 and reason is not None
    assert reason.startswith("stuck: nothing acknowledged for") and "ready.stall_after 1s" in reason
    assert "events waiting in the spool" in reason
    assert answers[0][0] == 200, "ready before stall_after has passed"
    assert healthz == 200


def test_ready_is_503_naming_a_sink_that_never_succeeds(tmp_path: Path) -> None:
    sink = Sink_("down")
    answers, _ = asyncio.run(_probe(tmp_path, [SteadySource()], sink,
                                    lambda body: _part(body, "sink:rec") is not None, stall_after=1.0))
    code, body = answers[-1]
    assert code == 503 and "stuck" in (_part(body, "sink:rec") or "")
    assert sink.calls >= 2, "the worker kept retrying"


def test_ready_names_a_failing_sinks_last_error_once_its_failure_grace_has_passed(tmp_path: Path) -> None:
    sink = Sink_("down")
    answers, _ = asyncio.run(_probe(tmp_path, [SteadySource()], sink,
                                    lambda body: _part(body, "sink:rec") is not None, sink_failure_grace=0.5))
    code, body = answers[-1]
    reason = _part(body, "sink:rec") or ""
    assert code == 503
    assert reason.startswith("failing for ") and "(more than 0.5s)" in reason, reason
    assert reason.endswith("; last error: connection refused"), reason


def test_ready_is_503_naming_a_sink_worker_that_died(tmp_path: Path) -> None:
    """The sink refuses an event for good and the dead-letter directory cannot be created (a file
    is in its way): the worker task ends with that error."""

    def block_deadletter() -> None:
        (tmp_path / "deadletter").write_bytes(b"not a directory")

    answers, healthz = asyncio.run(_probe(tmp_path, [SteadySource()], Sink_("reject"),
                                          lambda body: _part(body, "sink:rec") is not None,
                                          before=block_deadletter))
    code, body = answers[-1]
    reason = _part(body, "sink:rec") or ""
    assert code == 503
    assert reason.startswith("worker stopped: FileExistsError") and "deadletter" in reason, reason
    assert healthz == 200


def test_a_healthy_agent_is_ready(tmp_path: Path) -> None:
    sink = Sink_()
    answers, healthz = asyncio.run(_probe(tmp_path, [SteadySource()], sink,
                                          lambda body: len(sink.got) >= 20, stall_after=1.0))
    assert answers[-1] == (200, {"ready": True}) and healthz == 200
