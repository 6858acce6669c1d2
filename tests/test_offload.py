"""The offload process (shipper/pipeline/offload.py): sink bodies built in a second process from the spool.

What must hold: the body is the one the agent itself would build, every event still arrives
exactly once (the agent keeps sending, retrying and acknowledging), a dead or failing child
costs nothing but speed, and an idle agent is one process again.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import signal
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson
import pytest

from parsers.logfile import LogParser
from shipper.api import Batch, Encoded, Source, SourceContext, SpooledEvent
from shipper.config import ElasticsearchSinkConfig, LokiSinkConfig, parse_config
from shipper.observe import metrics
from shipper.pipeline.offload import Offloader, Prepared
from shipper.pipeline.runtime import Agent, DeadLetters, SinkWorker
from shipper.pipeline.spool import Spool
from shipper.sinks.elasticsearch import ElasticsearchEncoder, ElasticsearchSink
from shipper.sinks.loki import LokiSink

from conftest import SAMPLE_LOGS
from receivers.elasticsearch import ElasticsearchReceiver
from receivers.loki import LokiReceiver

pytestmark = pytest.mark.integration

REAL_LOGS = [SAMPLE_LOGS / "redis-7.0" / n for n in ("replication-master.log", "bgsave-aof.log")] + \
    [SAMPLE_LOGS / "valkey-9" / "startup-shutdown.log"]


def real_events(copies: int) -> list[dict[str, Any]]:
    """Events parsed from real Redis 7.0 and Valkey 9 logs, the files repeated ``copies`` times."""
    out = []
    for k in range(copies):
        for path in REAL_LOGS:
            parser = LogParser(tz=UTC)
            off = 0
            evs = []
            for line in path.read_bytes().splitlines(keepends=True):
                evs.extend(parser.feed(line.rstrip(b"\n"), off))
                off += len(line)
            evs.extend(parser.flush())
            for ev in evs:
                ev["fields"]["copy"] = k
            out.extend(evs)
    return out


def metric(m: Any) -> float:
    return float(m._value.get())


class ListSource(Source):
    """Emits prepared events in batches of 200; the position is the next index."""

    key_prefix = "list:"

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events, self.name = events, "list"

    async def run(self, ctx: SourceContext) -> None:
        i = ctx.positions.get("list:next", 0)
        while i < len(self.events) and not ctx.stop.is_set():
            j = min(len(self.events), i + 200)
            await ctx.emit(Batch([dict(e) for e in self.events[i:j]], {"list:next": j}))
            i = j
        await ctx.stop.wait()


def loki_sink(url: str, max_bytes: int = 16 << 10) -> LokiSink:
    return LokiSink(LokiSinkConfig(type="loki", url=url, batch={"max_bytes": max_bytes, "max_wait": "50ms"},
                                   retry={"initial": "50ms", "max": "200ms"}))


def es_sink(url: str, max_bytes: int = 32 << 10) -> ElasticsearchSink:
    return ElasticsearchSink(ElasticsearchSinkConfig(
        type="elasticsearch", url=url, batch={"max_bytes": max_bytes, "max_wait": "50ms"},
        retry={"initial": "10ms", "max": "2s"}))


def agent(tmp: Path, events: list[dict[str, Any]], sink: Any, **cfg: Any) -> Agent:
    """An agent of ``events``; its offload process starts whenever a full batch waits
    (``min_input_rate: 0``), whatever the input rate: these tests are about that process."""
    cfg["offload"] = {"min_input_rate": 0, **cfg.get("offload", {})}
    conf = parse_config({"state_dir": str(tmp / "state"), "timezone": "UTC", "labels": {"job": "redis"},
                         "shutdown_timeout": 10, "audit": {"anchor_interval": 0}, **cfg})
    return Agent(conf, sources=[ListSource(events)], sinks=[sink])


def shipped(rx: LokiReceiver) -> list[dict[str, Any]]:
    return [e for e in (orjson.loads(x.line) for x in rx.entries()) if e.get("source") != "agent"]


async def until(pred: Any, timeout: float = 60.0) -> None:
    end = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < end, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("annexed", [False, True], ids=["from-the-events", "from-the-annexes"])
def test_the_offload_process_builds_the_body_the_sink_would_build(tmp_path: Path, annexed: bool) -> None:
    events = real_events(2)
    sink = loki_sink("http://127.0.0.1:9", max_bytes=64 << 10)

    async def go() -> tuple[Prepared | None, Encoded, list[SpooledEvent]]:
        spool = Spool(tmp_path, host="h")
        if annexed:
            spool.use_annexer("loki", sink.annexer())  # type: ignore[arg-type]
        await spool.open()
        await spool.register_sink("loki")
        await spool.append("h/file:x", [dict(e, labels={"job": "redis"}) for e in events], {})
        off = Offloader(str(spool.path), idle_stop=5)
        try:
            prepared = await off.prepare(sink.encoder_spec(), 0, sink.max_batch_bytes, annexed=annexed)
        finally:
            await off.close()
        batch, _ = await spool.read("loki", sink.max_batch_bytes)
        assert all(se.annex for se in batch) is annexed
        await spool.close()
        # the agent's own body from the parsed events: the ordinary path
        return prepared, sink.encode([SpooledEvent(se.seq, se.event, se.raw) for se in batch]), batch

    prepared, local, batch = asyncio.run(go())
    assert prepared is not None
    assert (prepared.first_seq, prepared.last_seq, prepared.count) == (batch[0].seq, batch[-1].seq, len(batch))
    assert prepared.size == sum(len(e.raw) for e in batch)
    assert prepared.encoded.headers == local.headers
    assert prepared.encoded.entries == local.entries == len(batch)
    assert gzip.decompress(prepared.encoded.body) == gzip.decompress(local.body)


def test_the_offload_process_builds_loki_bodies_without_importing_asyncio_or_the_http_client() -> None:
    # the child's RSS counts in the agent's process tree during a catch-up: the Loki encoder
    # is named by its own module, not by the sink's (asyncio, the h11 client, ssl)
    import subprocess
    import sys

    factory, kwargs = loki_sink("http://127.0.0.1:9").encoder_spec()
    code = ("import sys, orjson; from shipper.pipeline.offload_child import _Worker; "
            f"_Worker().encoder({factory!r}, orjson.loads({orjson.dumps(kwargs)!r})); "
            "print(orjson.dumps([m for m in ('asyncio', 'ssl', 'h11', 'shipper.sinks.loki', 'shipper.util.httpclient') "
            "if m in sys.modules]).decode())")
    root = Path(__file__).parent.parent
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, cwd=root)
    assert orjson.loads(out.stdout) == []


def test_a_backlog_is_encoded_by_the_offload_process_and_every_event_arrives_once(tmp_path: Path) -> None:
    events = real_events(6)
    before = metric(metrics.OFFLOAD_BATCHES)
    with LokiReceiver() as rx:
        a = agent(tmp_path, events, loki_sink(rx.url))

        async def go() -> None:
            await a.start()
            await until(lambda: len(shipped(rx)) >= len(events))
            await a.shutdown()

        asyncio.run(go())
        got = shipped(rx)
    assert metric(metrics.OFFLOAD_BATCHES) > before, "the backlog never went through the offload process"
    assert sorted(e["seq"] for e in got) == list(range(1, len(events) + 1))  # each once, none missing
    assert [(e["fields"]["copy"], e["offset"]) for e in sorted(got, key=lambda e: e["seq"])] == \
        [(e["fields"]["copy"], e["offset"]) for e in events]
    assert rx.duplicates_dropped == 0


def test_a_killed_offload_process_costs_speed_never_events(tmp_path: Path) -> None:
    events = real_events(8)
    failures = metric(metrics.OFFLOAD_FAILURES)
    with LokiReceiver() as rx:
        rx.delay_next(10_000, 0.02)  # slow pushes: the backlog stays while the child is killed
        a = agent(tmp_path, events, loki_sink(rx.url))

        async def go() -> None:
            await a.start()
            assert a.offloader is not None
            await until(lambda: a.offloader is not None and a.offloader.running)
            proc = a.offloader._proc
            assert proc is not None
            os.kill(proc.pid, signal.SIGKILL)
            await until(lambda: len(shipped(rx)) >= len(events))
            await a.shutdown()

        asyncio.run(go())
        got = shipped(rx)
    assert metric(metrics.OFFLOAD_FAILURES) > failures
    assert sorted(e["seq"] for e in got) == list(range(1, len(events) + 1))


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_the_offload_process_exits_when_idle_and_mode_off_never_starts_it(tmp_path: Path) -> None:
    events = real_events(3)
    with LokiReceiver() as rx:
        a = agent(tmp_path / "auto", events, loki_sink(rx.url), offload={"idle_stop": "1s"})
        b = agent(tmp_path / "off", events, loki_sink(rx.url), offload={"mode": "off"})

        async def go() -> None:
            await a.start()
            assert a.offloader is not None
            await until(lambda: a.offloader is not None and a.offloader.running)
            pid = a.offloader._proc.pid  # type: ignore[union-attr]
            await until(lambda: len(shipped(rx)) >= len(events))
            await until(lambda: not alive(pid), timeout=15)  # idle_stop: the child is gone
            assert not a.offloader.running  # type: ignore[union-attr]
            await a.shutdown()
            rx.reset()
            await b.start()
            await until(lambda: len(shipped(rx)) >= len(events))
            assert b.offloader is None
            await b.shutdown()

        asyncio.run(go())


def test_an_offloaded_batch_that_loki_refuses_is_dead_lettered_with_its_events(tmp_path: Path) -> None:
    events = real_events(4)
    offloaded = metric(metrics.OFFLOAD_BATCHES)
    with LokiReceiver() as rx:
        sink = loki_sink(rx.url)
        a = agent(tmp_path, events, sink)
        # the first push waits 0.5 s (every event is spooled meanwhile: a backlog), the second -- a
        # body from the offload process -- is refused
        rx.delay_next(1, 0.5)
        rx.fail_next(1, 400, body="entry for stream has timestamp too new")

        async def go() -> None:
            await a.start()
            await until(lambda: (tmp_path / "state" / "deadletter" / "loki.jsonl").exists())
            await until(lambda: len(shipped(rx)) + len(dead()) >= len(events))
            await a.shutdown()

        def dead() -> list[dict[str, Any]]:
            p = tmp_path / "state" / "deadletter" / "loki.jsonl"
            return [orjson.loads(x) for x in p.read_bytes().splitlines()] if p.exists() else []

        asyncio.run(go())
        got = shipped(rx)
    letters = dead()
    assert metric(metrics.OFFLOAD_BATCHES) > offloaded
    assert letters and all("400" in d["reason"] for d in letters)
    assert all(d["event"]["message"] for d in letters)  # the events themselves, read back from the spool
    seqs = sorted([e["seq"] for e in got] + [d["event"]["seq"] for d in letters])
    assert seqs == list(range(1, len(events) + 1))


class FakeOffloader:
    """Records what the worker asks for; answers with a Prepared for ``after``."""

    def __init__(self) -> None:
        self.asked: list[int] = []

    def wanted(self, top: int) -> bool:
        return True

    async def prepare(self, spec: Any, after: int, max_bytes: int, annexed: bool = False) -> Prepared:
        self.asked.append(after)
        return Prepared(after + 1, after + 3, 3, 300, 0.0, Encoded(b"", {}, [], 3))


def test_a_prefetched_body_is_not_used_when_the_cursor_moved_meanwhile(tmp_path: Path) -> None:
    async def go() -> tuple[Prepared | None, list[int]]:
        spool = Spool(tmp_path, host="h")
        await spool.open()
        await spool.register_sink("loki")
        sink = loki_sink("http://127.0.0.1:9")
        fake = FakeOffloader()
        w = SinkWorker(sink, spool, DeadLetters(str(tmp_path)), lambda e: None, offloader=fake)  # type: ignore[arg-type]
        stale = asyncio.create_task(fake.prepare(None, 7, 0))  # built after row 7...
        w._prefetch = (stale, 7)  # ...but the cursor is at 0 (e.g. drop_oldest moved it)
        got = await w._take_prepared()
        await spool.close()
        return got, fake.asked

    got, asked = asyncio.run(go())
    assert asked == [7, 0]  # the stale one was built, then a fresh one from the cursor
    assert got is not None and got.first_seq == 1


def test_elasticsearch_items_built_by_the_offload_process_are_the_sinks_and_partial_retries_work(
        tmp_path: Path) -> None:
    events = real_events(6)
    offloaded = metric(metrics.OFFLOAD_BATCHES)
    with ElasticsearchReceiver() as es:
        sink = es_sink(es.url)
        # the first push waits (a backlog builds); items of a later, offloaded bulk answer 429 and
        # are re-sent alone from the offloaded body's parts
        es.delay_next(1, 0.5)
        es.fail_items([None] * 200 + [429] * 5)
        a = agent(tmp_path, events, sink)

        async def go() -> None:
            await a.start()
            await until(lambda: len([d for d in es.documents() if d["redis_shipper"]["source"] != "agent"])
                        >= len(events))
            await a.shutdown()

        asyncio.run(go())
        docs = [d for d in es.documents() if d["redis_shipper"]["source"] != "agent"]
    assert metric(metrics.OFFLOAD_BATCHES) > offloaded
    assert len(docs) == len(events)  # each event once: _id is deterministic, 429 items re-sent
    assert sorted(d["event"]["sequence"] for d in docs) == list(range(1, len(events) + 1))
    # and the offloaded encoder is the sink's own: the same item pair for the same spooled event
    se = SpooledEvent(1, dict(events[0], id="x", labels={}), b'{"id":"x"}')
    assert sink.item_lines([se]) == ElasticsearchEncoder(**sink.encoder_spec()[1]).item_lines([se])


def test_the_offload_process_is_wanted_only_while_the_sources_append_fast_or_it_already_runs(
        tmp_path: Path) -> None:
    off = Offloader(str(tmp_path / "spool.sqlite"), min_input_rate=5000)
    assert not off.wanted(0, now=100.0)  # the first look only starts the window
    assert not off.wanted(2_000, now=101.0)  # 2,000 events/s: a sink catching up alone
    assert off.input_rate == 2_000
    assert not off.wanted(2_100, now=101.2)  # under RATE_WINDOW: the last rate stands
    assert off.wanted(12_000, now=102.0)  # 9,900 events in 1 s: the sources read a backlog
    assert not off.wanted(12_000, now=110.0)  # they stopped
    off._proc = type("Running", (), {"returncode": None})()  # type: ignore[assignment]
    assert off.wanted(12_000, now=111.0)  # once started it serves the backlog to its end
    off._proc = None
    assert Offloader(str(tmp_path / "s"), min_input_rate=0).wanted(0, now=1.0)  # 0: whenever a batch waits


def test_a_sink_catching_up_alone_is_served_from_the_stored_rows_in_the_agent(tmp_path: Path) -> None:
    """Below offload.min_input_rate no second process starts: the worker builds the backlog's
    bodies itself, straight from the stored rows (Spool.encode_rows), and every event arrives once."""
    events = real_events(6)
    offloaded = metric(metrics.OFFLOAD_BATCHES)
    with LokiReceiver() as rx:
        a = agent(tmp_path, events, loki_sink(rx.url), offload={"min_input_rate": 1e12})
        built: list[int] = []
        read_as_events: list[int] = []
        encode_rows, read = a.spool.encode_rows, a.spool.read

        async def counting_encode_rows(*args: Any, **kw: Any) -> Any:
            out = await encode_rows(*args, **kw)
            if out is not None:
                built.append(out[1].count)
            return out

        async def counting_read(*args: Any, **kw: Any) -> Any:
            out = await read(*args, **kw)
            read_as_events.append(len(out[0]))
            return out

        a.spool.encode_rows, a.spool.read = counting_encode_rows, counting_read  # type: ignore[method-assign]

        async def go() -> None:
            await a.start()
            await until(lambda: len(shipped(rx)) >= len(events))
            assert a.offloader is not None and not a.offloader.running
            await a.shutdown()

        asyncio.run(go())
        got = shipped(rx)
    assert metric(metrics.OFFLOAD_BATCHES) == offloaded
    assert len(built) > 1 and sum(built) > len(events) // 2, (built, read_as_events)
    assert sorted(e["seq"] for e in got) == list(range(1, len(events) + 1))  # each once, none missing
    assert rx.duplicates_dropped == 0
