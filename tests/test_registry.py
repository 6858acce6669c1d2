"""The source and sink registries (shipper/registry/): a type declared once is what the config,
the runtime, ``verify`` and ``check`` know; a type not registered is known to none of them.

The toy sink here is what a newcomer writes: one module's worth of parts (a config model, a
sink, a trail reader, an offline check, a ``--connect`` probe) and one ``SINKS.register`` call.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import time
import typing
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
import yaml

from parsers.events import format_epoch, make_event
from shipper.api import Batch, Delivery, Sink, Source, SourceContext, SpooledEvent
from shipper.audit.trails import Line, TrailQuery
from shipper.cli import main as cli
from shipper.commands.check import Report
from shipper.config import AgentConfig, ConfigError, load_config, parse_config
from shipper.config.base import Strict
from shipper.pipeline.factories import build_sinks, build_source, source_name
from shipper.pipeline.runtime import Agent
from shipper.registry import SINKS, SOURCES, Lazy, SinkType, SourceType

HOST = socket.gethostname()


# ------------------------------------------------------------------------ a toy sink, in full
#: what the toy sinks hold, by bucket: the lines as the spool sealed them
TOY_BUCKETS: dict[str, list[bytes]] = {}


class ToySinkConfig(Strict):
    type: Literal["toy"]
    bucket: str


class ToySink(Sink):
    """Keeps every event in memory, in its bucket."""

    def __init__(self, cfg: ToySinkConfig) -> None:
        self.bucket = TOY_BUCKETS.setdefault(cfg.bucket, [])
        self.max_wait = 0.05

    async def send(self, batch: list[SpooledEvent]) -> Delivery:
        self.bucket.extend(e.raw for e in batch)
        return Delivery()


def read_toy(q: TrailQuery) -> Iterator[Line]:
    for i, raw in enumerate(TOY_BUCKETS.get(q.sink.bucket, []), 1):
        yield raw, f"toy {q.sink.bucket} #{i}"


def describe_toy(key: str, sc: ToySinkConfig, cfg: AgentConfig, report: Report) -> str:
    if not sc.bucket.isidentifier():
        report.errors.append((f"{key}.bucket", f"{sc.bucket!r} is not a bucket name"))
    return f"toy bucket {sc.bucket}"


async def probe_toy(key: str, sc: ToySinkConfig, timeout: float, report: Report) -> None:
    held = len(TOY_BUCKETS.get(sc.bucket, []))
    report.result("ok", f"{key} toy {sc.bucket}", f"reachable, holds {held} line(s)")


@pytest.fixture
def toy() -> Iterator[SinkType]:
    t = SINKS.register(SinkType("toy", ToySinkConfig, lambda sc, cfg: ToySink(sc), read_toy, describe_toy,
                                probe_toy))
    TOY_BUCKETS.clear()
    yield t
    SINKS.unregister("toy")
    TOY_BUCKETS.clear()


class CountingSource(Source):
    """Emits ``n`` events, then waits for the stop."""

    def __init__(self, name: str, n: int) -> None:
        self.name, self.n = name, n
        self.key_prefix = f"{name}:"
        self.done = asyncio.Event()

    async def run(self, ctx: SourceContext) -> None:
        t0 = time.time() - 10
        events = [make_event(timestamp=format_epoch(t0 + i * 0.001), source="redis", category="other",
                             event="unrecognized", message=f"line {i}") for i in range(self.n)]
        await ctx.emit(Batch(events, {f"{self.name}:next": self.n}))
        self.done.set()
        await ctx.stop.wait()


def toy_config(tmp_path: Path, bucket: str = "b1") -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({
        "state_dir": str(tmp_path / "state"), "timezone": "UTC", "metrics": {"listen": ""},
        "audit": {"anchor_interval": 0}, "shutdown_timeout": 5,
        "sinks": [{"type": "toy", "bucket": bucket}],
    }))
    return path


# ------------------------------------------------------------------------ the toy, everywhere
def test_a_registered_sink_type_is_accepted_by_the_config_and_its_errors_name_its_keys(toy: SinkType) -> None:
    cfg = parse_config({"sinks": [{"type": "toy", "bucket": "b1"}]})
    assert isinstance(cfg.sinks[0], ToySinkConfig) and cfg.sinks[0].bucket == "b1"

    with pytest.raises(ConfigError) as e:
        parse_config({"sinks": [{"type": "toy", "bukket": "b1"}]})
    assert ("sinks[0].bukket", "unknown key (did you mean 'bucket'?); known keys: bucket, type") in e.value.problems
    assert ("sinks[0].bucket", "required key is missing") in e.value.problems


def test_an_unregistered_sink_type_is_unknown_to_the_config_again(toy: SinkType) -> None:
    SINKS.unregister("toy")
    try:
        with pytest.raises(ConfigError) as e:
            parse_config({"sinks": [{"type": "toy", "bucket": "b1"}]})
        (key, reason), = e.value.problems
        assert (key, reason) == ("sinks[0]", "unknown type 'toy'; expected one of 'file', 'local', 'loki', "
                                 "'elasticsearch'")
    finally:
        SINKS.register(toy)


def test_a_registered_sink_type_is_built_by_the_runtime_and_verify_reads_its_trail_back(
        toy: SinkType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = toy_config(tmp_path)
    cfg = load_config(config)
    (sink,) = build_sinks(cfg)
    assert isinstance(sink, ToySink) and sink.name == "toy"

    async def ship() -> None:
        src = CountingSource("file:a", 30)
        agent = Agent(cfg, sources=[src], sinks=[sink])
        await agent.start()
        await asyncio.wait_for(src.done.wait(), 20)
        for e in agent.emitters:
            await e.settle()
        for _ in range(500):
            if agent.spool.all_acked():
                break
            await asyncio.sleep(0.02)
        await agent.shutdown()

    asyncio.run(ship())
    shipped = [orjson.loads(raw) for raw in TOY_BUCKETS["b1"]]
    assert [e["seq"] for e in shipped if e["stream"] == f"{HOST}/file:a"] == list(range(1, 31))

    capsys.readouterr()
    code = cli(["verify", "--config", str(config), "--from", "toy", "--json"])
    report = orjson.loads(capsys.readouterr().out)
    assert code == 0, report["problems"]
    (stream,) = [s for s in report["streams"] if s["stream"] == f"{HOST}/file:a"]
    assert (stream["events"], stream["first_seq"], stream["last_seq"]) == (30, 1, 30)

    # a line altered in the toy's storage is found by verify through the toy's reader
    TOY_BUCKETS["b1"][4] = TOY_BUCKETS["b1"][4].replace(b"line ", b"LINE ")
    capsys.readouterr()
    assert cli(["verify", "--config", str(config), "--from", "toy", "--json"]) == 1
    report = orjson.loads(capsys.readouterr().out)
    assert any("toy b1 #5" in str(p) or "seq" in str(p) for p in report["problems"]), report["problems"]


def test_check_prints_a_registered_sink_types_summary_its_errors_and_its_probe(
        toy: SinkType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    TOY_BUCKETS["b2"] = [b"{}", b"{}"]
    config = toy_config(tmp_path, "b2")
    assert cli(["check", "--config", str(config), "--connect"]) == 0
    out = capsys.readouterr().out
    assert "  sinks[0] toy bucket b2" in out
    assert "OK   sinks[0] toy b2: reachable, holds 2 line(s)" in out

    bad = toy_config(tmp_path, "not a name")
    assert cli(["check", "--config", str(bad)]) == 2
    assert "sinks[0].bucket: 'not a name' is not a bucket name" in capsys.readouterr().err


# ------------------------------------------------------------------------ every type is whole
#: a minimal valid entry of each type; a type registered without one here fails the tests below
SOURCE_EXAMPLES: dict[str, dict[str, Any]] = {
    "file": {"type": "file", "path": "/var/log/redis/redis-server.log"},
    "redis": {"type": "redis", "url": "redis://:s3cret@127.0.0.1:6379"},
    "kubernetes": {"type": "kubernetes", "node": "node-1"},
}
SINK_EXAMPLES: dict[str, dict[str, Any]] = {
    "file": {"type": "file", "path": "/tmp/out.jsonl"},
    "local": {"type": "local"},
    "loki": {"type": "loki", "url": "http://127.0.0.1:3100"},
    "elasticsearch": {"type": "elasticsearch", "url": "http://127.0.0.1:9200"},
}
#: types with nothing on the network to reach: ``check --connect`` has no probe for them
OFFLINE = {("source", "file"), ("sink", "file"), ("sink", "local")}


def _fn(f: Any) -> Any:
    """The function a registration names (a Lazy one imported now)."""
    return f.resolve() if isinstance(f, Lazy) else f


def _params(f: Any) -> int:
    return len(inspect.signature(_fn(f)).parameters)


def _tag(model: type[Strict]) -> Any:
    return typing.get_args(model.model_fields["type"].annotation)


def _check_parts(family: str, t: SinkType | SourceType) -> None:
    assert _tag(t.config) == (t.name,), t.name
    assert _params(t.describe) == 4, t.name
    assert (t.probe is None) == ((family, t.name) in OFFLINE), t.name
    if t.probe is not None:
        assert inspect.iscoroutinefunction(_fn(t.probe)) and _params(t.probe) == 4, t.name


def test_every_sink_type_has_its_config_factory_trail_reader_check_and_probe() -> None:
    assert SINKS.names() == list(SINK_EXAMPLES)
    for t in SINKS.types():
        _check_parts("sink", t)
        assert (_params(t.build), _params(t.read)) == (2, 1), t.name


def test_every_source_type_has_its_config_factory_stream_name_check_and_probe() -> None:
    assert SOURCES.names() == list(SOURCE_EXAMPLES)
    for t in SOURCES.types():
        _check_parts("source", t)
        assert (_params(t.build), _params(t.stream_name)) == (3, 1), t.name


def test_each_built_in_sink_type_parses_builds_and_describes_itself(tmp_path: Path) -> None:
    cfg = parse_config({"state_dir": str(tmp_path), "sinks": list(SINK_EXAMPLES.values())})
    sinks = build_sinks(cfg)
    assert [s.name for s in sinks] == list(SINK_EXAMPLES)
    assert all(isinstance(s, Sink) for s in sinks)
    report = Report()
    for i, sc in enumerate(cfg.sinks):
        line = SINKS.get(sc.type).describe(f"sinks[{i}]", sc, cfg, report)
        assert isinstance(line, str) and line.startswith(sc.type), line


def test_each_built_in_source_type_parses_builds_names_and_describes_itself(tmp_path: Path) -> None:
    cfg = parse_config({"state_dir": str(tmp_path), "sources": list(SOURCE_EXAMPLES.values())})
    names = [source_name(sc) for sc in cfg.sources]
    assert names == ["file:/var/log/redis/redis-server.log", "redis:redis://127.0.0.1:6379", "kubernetes:node-1"]
    for sc, name in zip(cfg.sources, names, strict=True):
        src = build_source(sc, UTC)
        assert isinstance(src, Source) and src.name == name
    report = Report()
    for i, sc in enumerate(cfg.sources):
        line = SOURCES.get(sc.type).describe(f"sources[{i}]", sc, cfg, report)
        assert isinstance(line, str) and line.startswith(sc.type), line


def test_a_type_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="sink type 'loki' is already registered"):
        SINKS.register(SINKS.get("loki"))
    with pytest.raises(KeyError, match="unknown source type 'nope'"):
        SOURCES.get("nope")
