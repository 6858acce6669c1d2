"""``redis_shipper_sink_pending_events`` follows the spool while a sink is down: set from the
spool's cursors on every append, not by the sink worker between two sends (a worker retrying
through an outage does not get back to set it)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from parsers.events import make_event
from shipper.api import Batch, Delivery, RetryableError, Sink, Source, SourceContext, SpooledEvent
from shipper.config import parse_config
from shipper.observe import metrics
from shipper.pipeline.runtime import Agent


class TrickleSource(Source):
    """``batches`` batches of 100 events, one every 50 ms."""

    key_prefix = "trickle:"

    def __init__(self, batches: int) -> None:
        self.name, self.batches = "trickle", batches

    async def run(self, ctx: SourceContext) -> None:
        for b in range(ctx.positions.get("trickle:next", 0), self.batches):
            events = [make_event(timestamp="2026-11-25T17:00:00.000000Z", source="redis", category="other",
                                 event="unrecognized", message=f"batch {b} line {i}") for i in range(100)]
            await ctx.emit(Batch(events, {"trickle:next": b + 1}))
            await asyncio.sleep(0.05)
        await ctx.stop.wait()


class OutageSink(Sink):
    """Refuses every request (Loki down) until ``up`` is set."""

    def __init__(self) -> None:
        self.name = "loki"
        self.up = False
        self.got: list[SpooledEvent] = []
        self.max_wait = 0.05
        self.retry_initial = 0.05
        self.retry_max = 0.1

    async def send(self, batch: list[SpooledEvent]) -> Delivery:
        if not self.up:
            raise RetryableError("connection refused")
        self.got.extend(batch)
        return Delivery()


def _pending_metric(sink: str) -> float:
    value = metrics.REGISTRY.get_sample_value("redis_shipper_sink_pending_events", {"sink": sink})
    assert value is not None
    return value


def test_the_pending_events_gauge_grows_with_the_spool_during_an_outage_and_falls_after(tmp_path: Path) -> None:
    async def go() -> tuple[list[tuple[float, int]], float, int]:
        cfg = parse_config({"state_dir": str(tmp_path), "timezone": "UTC", "shutdown_timeout": 2,
                            "offload": {"mode": "off"}})
        sink = OutageSink()
        agent = Agent(cfg, sources=[TrickleSource(40)], sinks=[sink])
        await agent.start()
        seen: list[tuple[float, int]] = []
        try:
            for _ in range(400):  # the whole 4,000 events spooled while the sink is down
                await asyncio.sleep(0.05)
                seen.append((_pending_metric("loki"), agent.spool.pending("loki")))
                if agent.spool.pending("loki") >= 4000:
                    break
            await asyncio.sleep(0.2)
            during = (_pending_metric("loki"), agent.spool.pending("loki"))
            seen.append(during)
            sink.up = True
            for _ in range(400):
                await asyncio.sleep(0.05)
                if agent.spool.pending("loki") == 0:
                    break
            await asyncio.sleep(0.1)
            return seen, _pending_metric("loki"), len([e for e in sink.got if e.event["source"] == "redis"])
        finally:
            await agent.shutdown()

    seen, after, delivered = asyncio.run(go())
    gauge, spooled = seen[-1]
    assert spooled >= 4000, "the outage spooled every event"
    assert gauge == spooled, f"the gauge says {gauge} while the spool holds {spooled} for the sink"
    assert len({g for g, _ in seen}) > 5, "the gauge moved during the outage"
    assert delivered == 4000 and after == 0
