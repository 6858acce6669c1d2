"""A sink's batch leaves before ``max_wait`` once the input has gone quiet, and a steady input
still shares requests (shipper/pipeline/sink_worker.py, ``SinkWorker.QUIET``)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from parsers.events import make_event
from shipper.api import Batch, Delivery, Sink, Source, SourceContext, SpooledEvent
from shipper.config import parse_config
from shipper.pipeline.runtime import Agent
from shipper.pipeline.sink_worker import SinkWorker


class PacedSource(Source):
    """``count`` events, one per emit, ``gap`` seconds apart; then nothing more."""

    key_prefix = "paced:"

    def __init__(self, count: int, gap: float) -> None:
        self.name, self.count, self.gap = "paced", count, gap
        self.first_emitted: float | None = None

    async def run(self, ctx: SourceContext) -> None:
        for i in range(ctx.positions.get("paced:next", 0), self.count):
            ev = make_event(timestamp="2026-12-07T16:00:00.000000Z", source="redis", category="other",
                            event="unrecognized", message=f"line {i}")
            if self.first_emitted is None:
                self.first_emitted = time.monotonic()
            await ctx.emit(Batch([ev], {"paced:next": i + 1}))
            await asyncio.sleep(self.gap)
        await ctx.stop.wait()


class RecordingSink(Sink):
    """Accepts every request; keeps each request's events and when it came."""

    def __init__(self, max_wait: float) -> None:
        self.name = "loki"
        self.max_wait = max_wait
        self.requests: list[tuple[float, list[SpooledEvent]]] = []

    async def send(self, batch: list[SpooledEvent]) -> Delivery:
        self.requests.append((time.monotonic(), list(batch)))
        return Delivery()

    def delivered(self) -> int:
        return sum(1 for _, b in self.requests for e in b if e.event["source"] == "redis")


async def _run(tmp_path: Path, source: PacedSource, sink: RecordingSink, until: float) -> None:
    cfg = parse_config({"state_dir": str(tmp_path), "timezone": "UTC", "shutdown_timeout": 2,
                        "offload": {"mode": "off"}})
    agent = Agent(cfg, sources=[source], sinks=[sink])
    await agent.start()
    try:
        end = time.monotonic() + until
        while time.monotonic() < end and sink.delivered() < source.count:
            await asyncio.sleep(0.02)
    finally:
        await agent.shutdown()


def test_a_lone_line_reaches_the_sink_long_before_max_wait(tmp_path: Path) -> None:
    source, sink = PacedSource(1, 0.0), RecordingSink(max_wait=60.0)
    asyncio.run(_run(tmp_path, source, sink, until=20.0))
    assert sink.delivered() == 1, "the lone line waited for max_wait (60 s)"
    first = next(t for t, b in sink.requests if any(e.event["source"] == "redis" for e in b))
    assert source.first_emitted is not None
    waited = first - source.first_emitted
    assert waited < 10.0, f"the lone line reached the sink after {waited:.1f} s"
    assert waited >= SinkWorker.QUIET * 0.9, "it left at once, without waiting to see whether more came"


def test_lines_appended_every_few_milliseconds_still_share_requests(tmp_path: Path) -> None:
    source, sink = PacedSource(60, 0.005), RecordingSink(max_wait=30.0)
    asyncio.run(_run(tmp_path, source, sink, until=20.0))
    assert sink.delivered() == 60
    with_lines = [b for _, b in sink.requests if any(e.event["source"] == "redis" for e in b)]
    # a quiet spell of QUIET (0.1 s) between appends 5 ms apart cuts a batch only on a stalled machine
    assert len(with_lines) <= 10, f"60 lines 5 ms apart went out in {len(with_lines)} requests"
