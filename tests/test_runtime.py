"""The runtime: sources -> spool -> sink workers, retries, dead letters, shutdown flush."""

from __future__ import annotations

import asyncio

import orjson

from parsers.events import make_event
from shipper.api import Batch, Delivery, RetryableError, Sink, Source, SourceContext, SpooledEvent
from shipper.config import parse_config
from shipper.pipeline.runtime import Agent


def ev(i: int) -> dict:
    return make_event(timestamp="2026-11-25T17:00:00.000000Z", source="redis", category="other",
                      event="unrecognized", message=f"line {i}")


class CountingSource(Source):
    """Emits events 0..n-1 in batches, position = next index; resumes from the committed position."""

    key_prefix = "count:"

    def __init__(self, n: int, batch: int = 10) -> None:
        self.n, self.batch, self.name = n, batch, "count"

    async def run(self, ctx: SourceContext) -> None:
        i = ctx.positions.get("count:next", 0)
        while i < self.n and not ctx.stop.is_set():
            j = min(self.n, i + self.batch)
            await ctx.emit(Batch([ev(k) for k in range(i, j)], {"count:next": j}))
            i = j
        await ctx.stop.wait()


class RecordingSink(Sink):
    def __init__(self, fail_first: int = 0, reject: set[str] | None = None, status: int = 503) -> None:
        self.name = "rec"
        self.got: list[SpooledEvent] = []
        self.calls = 0
        self.fail_first = fail_first
        self.reject = reject or set()
        self.max_wait = 0.05
        self.retry_initial = 0.01
        self.retry_max = 0.05
        self.status = status

    async def send(self, batch: list[SpooledEvent]) -> Delivery:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise RetryableError("down", status=self.status)
        rejected = [(i, "bad line") for i, e in enumerate(batch) if e.event["message"] in self.reject]
        self.got.extend(e for i, e in enumerate(batch) if i not in {r[0] for r in rejected})
        return Delivery(rejected=rejected)


async def _run_agent(tmp_path, source: Source, sink: Sink, until) -> Agent:  # type: ignore[no-untyped-def]
    cfg = parse_config({"state_dir": str(tmp_path), "timezone": "UTC", "labels": {"job": "redis"},
                        "shutdown_timeout": 5})
    agent = Agent(cfg, sources=[source], sinks=[sink])
    await agent.start()
    for _ in range(500):
        if until():
            break
        await asyncio.sleep(0.02)
    await agent.shutdown()
    return agent


def test_every_event_reaches_the_sink_once_after_retries(tmp_path):
    sink = RecordingSink(fail_first=3)
    asyncio.run(_run_agent(tmp_path, CountingSource(100), sink, lambda: len(sink.got) >= 100))
    data = [e for e in sink.got if e.event["source"] == "redis"]
    assert [e.event["message"] for e in data] == [f"line {i}" for i in range(100)]
    assert all(e.event["labels"] == {"job": "redis"} for e in sink.got)
    assert sink.calls > 3


def test_a_rejected_event_goes_to_the_dead_letter_file_and_the_trail_says_so(tmp_path):
    sink = RecordingSink(reject={"line 7"})
    asyncio.run(_run_agent(tmp_path, CountingSource(20), sink,
                           lambda: any(e.event["event"] == "dead_lettered" for e in sink.got)))
    dead = [orjson.loads(x) for x in (tmp_path / "deadletter" / "rec.jsonl").read_bytes().splitlines()]
    assert [d["event"]["message"] for d in dead] == ["line 7"]
    assert dead[0]["reason"] == "bad line"
    notes = [e.event for e in sink.got if e.event["event"] == "dead_lettered"]
    assert notes and notes[0]["source"] == "agent" and notes[0]["fields"]["events"] == 1
    assert [e.event["message"] for e in sink.got if e.event["source"] == "redis"] == \
        [f"line {i}" for i in range(20) if i != 7]


def test_after_a_restart_the_source_resumes_and_the_spool_replays_unacknowledged_events(tmp_path):
    down = RecordingSink(fail_first=10**9)  # the sink never answers during the first run
    asyncio.run(_run_agent(tmp_path, CountingSource(50), down, lambda: down.calls >= 2))
    up = RecordingSink()
    asyncio.run(_run_agent(tmp_path, CountingSource(50), up, lambda: len(up.got) >= 50))
    data = [e for e in up.got if e.event["source"] == "redis"]
    assert [e.event["message"] for e in data] == [f"line {i}" for i in range(50)], "nothing lost, nothing twice"
    assert [e.event["seq"] for e in data] == list(range(1, 51))


class ProbingSource(Source):
    """Emits three batches and records, after each emit, what the spool had committed; it reuses
    its positions dict between batches (a source may: emit captures the batch)."""

    key_prefix = "probe:"

    def __init__(self, spool_positions) -> None:  # type: ignore[no-untyped-def]
        self.name = "probe"
        self.spool_positions = spool_positions
        self.seen: list[int | None] = []

    async def run(self, ctx: SourceContext) -> None:
        positions: dict = {}
        for k in range(3):
            positions["probe:next"] = k + 1
            await ctx.emit(Batch([ev(k)], positions))
            positions["probe:next"] = 99  # mutated after emit: must not reach the spool
            committed = await self.spool_positions()
            self.seen.append(committed.get("probe:next"))
        await ctx.stop.wait()


def test_emit_returns_with_the_batch_before_durable_and_shutdown_commits_the_last(tmp_path):
    sink = RecordingSink()

    async def go() -> ProbingSource:
        cfg = parse_config({"state_dir": str(tmp_path), "timezone": "UTC", "shutdown_timeout": 5})
        agent = Agent(cfg, sources=[], sinks=[sink])
        src = ProbingSource(lambda: agent.spool.positions("probe:"))
        agent.sources = [src]
        await agent.start()
        for _ in range(500):
            if len(src.seen) == 3 and len(sink.got) >= 3:
                break
            await asyncio.sleep(0.02)
        await agent.shutdown()
        return src

    src = asyncio.run(go())
    # after emit k returned, batch k-1 was durable (batch k may or may not be yet), never the 99
    assert all(seen in (k or None, k + 1) for k, seen in enumerate(src.seen)), src.seen
    assert [e.event["message"] for e in sink.got if e.event["source"] == "redis"] == ["line 0", "line 1", "line 2"]

    async def reopen() -> dict:
        from shipper.pipeline.spool import Spool

        spool = Spool(tmp_path)
        await spool.open()
        try:
            return await spool.positions("probe:")
        finally:
            await spool.close()

    assert asyncio.run(reopen()) == {"probe:next": 3}


class PoisonSource(Source):
    """First run: a good batch, then one the spool cannot store (a set is not JSON), then more;
    after the restart: resumes from what was committed."""

    key_prefix = "poison:"

    def __init__(self) -> None:
        self.name = "poison"
        self.runs: list[dict] = []

    async def run(self, ctx: SourceContext) -> None:
        self.runs.append(dict(ctx.positions))
        start = ctx.positions.get("poison:next", 0)
        for k in range(start, 4):
            bad = ev(k)
            if k == 1 and len(self.runs) == 1:
                bad["fields"] = {"oops": {1, 2}}
            await ctx.emit(Batch([bad], {"poison:next": k + 1}))
        await ctx.stop.wait()


def test_a_batch_the_spool_refuses_surfaces_at_the_next_emit_and_the_source_resumes_from_the_commit(tmp_path):
    sink = RecordingSink()
    src = PoisonSource()
    asyncio.run(_run_agent(tmp_path, src, sink,
                           lambda: len([e for e in sink.got if e.event["source"] == "redis"]) >= 4))
    assert src.runs[0] == {} and src.runs[1] == {"poison:next": 1}  # restarted after batch 0's commit
    assert [e.event["message"] for e in sink.got if e.event["source"] == "redis"] == \
        ["line 0", "line 1", "line 2", "line 3"]
    assert any(e.event["event"] == "source_crashed" for e in sink.got)


def test_freed_memory_goes_back_to_the_kernel_once_per_idle_spell(tmp_path, monkeypatch):
    import shipper.util.memory

    calls: list[int] = []
    monkeypatch.setattr(shipper.util.memory, "release_free_memory", lambda: calls.append(1))

    async def go() -> list[int]:
        cfg = parse_config({"state_dir": str(tmp_path), "timezone": "UTC", "shutdown_timeout": 5})
        agent = Agent(cfg, sources=[], sinks=[RecordingSink()])
        await agent.start()
        agent.trim_task.cancel()  # run the loop with a short period instead
        task = asyncio.create_task(agent._release_memory_when_idle(every=0.05))
        seen = []
        await asyncio.sleep(0.3)
        seen.append(len(calls))  # idle since start: nothing to give back yet (nothing moved)
        await agent.record_agent(ev(1))  # a burst...
        await asyncio.sleep(0.3)
        seen.append(len(calls))  # ...then idle: released once
        await asyncio.sleep(0.3)
        seen.append(len(calls))  # still idle: not again
        task.cancel()
        await agent.shutdown()
        return seen

    assert asyncio.run(go()) == [0, 1, 1]


class FlakySource(Source):
    """Crashes at once on its first ``quick`` runs, then runs ``steady_for`` seconds before crashing,
    then stays up."""

    key_prefix = "flaky:"

    def __init__(self, quick: int, steady_for: float) -> None:
        self.name, self.quick, self.steady_for, self.runs = "flaky", quick, steady_for, 0

    async def run(self, ctx: SourceContext) -> None:
        self.runs += 1
        if self.runs <= self.quick:
            raise RuntimeError(f"quick crash {self.runs}")
        if self.runs == self.quick + 1:
            await asyncio.sleep(self.steady_for)
            raise RuntimeError("crash after a steady run")
        await ctx.stop.wait()


def test_a_source_that_ran_steadily_for_the_longest_backoff_restarts_after_the_shortest_wait_again(tmp_path):
    cfg = parse_config({"state_dir": str(tmp_path), "timezone": "UTC", "shutdown_timeout": 5})
    src = FlakySource(quick=4, steady_for=1.5)
    agent = Agent(cfg, sources=[src], sinks=[RecordingSink()])
    agent.source_restart_initial, agent.source_restart_max = 0.05, 0.5
    waits: list[float] = []
    crashed = agent.health.source_crashed
    agent.health.source_crashed = lambda name, error, delay: (waits.append(delay), crashed(name, error, delay))

    async def go() -> None:
        await agent.start()
        for _ in range(1500):
            if src.runs >= 6:
                break
            await asyncio.sleep(0.02)
        await agent.shutdown()

    asyncio.run(go())
    assert src.runs == 6
    # four crashes in a row double the wait up to the cap; a crash after 1.5 s of steady running
    # (longer than the cap) starts again from the shortest wait
    assert waits == [0.05, 0.1, 0.2, 0.4, 0.05]
