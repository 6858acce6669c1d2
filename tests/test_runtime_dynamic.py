"""Sources added and stopped while the agent runs (shipper/pipeline/dynamic.py): a real file source
on real Redis lines, added, drained and stopped, added again; nothing lost, nothing twice, its audit
stream continued, its own labels over the agent's."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_runtime import RecordingSink

from shipper.audit.verify import Verifier
from shipper.config import ConfigError, parse_config
from shipper.pipeline.runtime import Agent

SAMPLE = Path(__file__).resolve().parent.parent / "sample-logs" / "redis-7.0"


def redis_lines() -> list[str]:
    """Single-line entries of a real Redis 7.0 log (no banner: one line, one event)."""
    lines = []
    for p in sorted(SAMPLE.glob("*.log")):
        for line in p.read_text(errors="replace").splitlines():
            if line[:1].isdigit() and ":M " in line[:40] and len(line) < 300:
                lines.append(line)
    assert len(lines) >= 40, "the sample corpus has Redis 7.0 lines"
    return lines[:40]


async def until(cond, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_a_file_source_added_while_running_drains_on_stop_and_resumes_when_added_again(tmp_path: Path) -> None:
    log = tmp_path / "pods" / "cache_redis-0_uid1" / "redis" / "0.log"
    log.parent.mkdir(parents=True)
    lines = redis_lines()

    async def scenario() -> tuple[RecordingSink, Agent]:
        cfg = parse_config({"state_dir": str(tmp_path / "state"), "timezone": "UTC", "labels": {"job": "redis"},
                            "shutdown_timeout": 5})
        sink = RecordingSink()
        agent = Agent(cfg, sources=[], sinks=[sink])
        await agent.start()
        spec = {"type": "file", "path": str(log.parent / "*.log"), "idle_flush": 0.2, "partial_line_timeout": 0.5,
                "poll_interval": 0.1}
        with log.open("w") as f:
            f.write("\n".join(lines[:20]) + "\n")
        await agent.dynamic.add("k8s:cache/redis-0/redis:file", spec, {"pod": "redis-0", "job": "redis-pods"})
        await agent.dynamic.add("k8s:cache/redis-0/redis:file", spec, {"pod": "ignored"})  # runs: a no-op
        with log.open("a") as f:  # written just before the stop: the drain reads it
            f.write("\n".join(lines[20:30]) + "\n")
        await agent.dynamic.stop("k8s:cache/redis-0/redis:file")
        assert agent.dynamic.running == {}
        # drained: what was in the file when the stop came is committed, and reaches the sink
        await until(lambda: sum(e.event["source"] != "agent" for e in sink.got) >= 30, timeout=10)
        with log.open("a") as f:  # written while nobody follows the file
            f.write("\n".join(lines[30:]) + "\n")
        await agent.dynamic.add("k8s:cache/redis-0/redis:file", spec, {"pod": "redis-0", "job": "redis-pods"})
        await until(lambda: sum(e.event["source"] != "agent" for e in sink.got) >= len(lines))
        await agent.shutdown()
        return sink, agent

    sink, agent = asyncio.run(scenario())
    data = [e.event for e in sink.got if e.event["source"] != "agent"]
    # "28862:M 25 Nov 2026 18:58:35.756 * <message>": the message is the 7th field
    assert [ev["message"] for ev in data] == [line.split(" ", 6)[6] for line in lines], \
        "every line once, in order, across stop and re-add"
    assert all(ev["labels"] == {"job": "redis-pods", "pod": "redis-0"} for ev in data)
    streams = {ev["stream"] for ev in data}
    assert streams == {f"{agent.host}/k8s:cache/redis-0/redis:file"}
    assert [ev["seq"] for ev in data] == list(range(1, len(lines) + 1)), "one hash chain, continued"
    v = Verifier(require_genesis=True)
    v.add_lines((e.raw, str(e.seq)) for e in sink.got)
    report = v.report()
    assert report.ok, report.problems()


def test_a_source_config_that_does_not_validate_is_refused_with_its_key(tmp_path: Path) -> None:
    async def scenario() -> None:
        cfg = parse_config({"state_dir": str(tmp_path), "timezone": "UTC"})
        agent = Agent(cfg, sources=[], sinks=[RecordingSink()])
        await agent.start()
        try:
            with pytest.raises(ConfigError) as e:
                await agent.dynamic.add("bad", {"type": "file", "paht": "/x"}, {})
            assert "bad.path" in str(e.value) or "paht" in str(e.value)
            assert agent.dynamic.running == {}
        finally:
            await agent.shutdown()

    asyncio.run(scenario())


def test_stopping_a_source_that_does_not_run_is_a_no_op(tmp_path: Path) -> None:
    async def scenario() -> None:
        cfg = parse_config({"state_dir": str(tmp_path), "timezone": "UTC"})
        agent = Agent(cfg, sources=[], sinks=[RecordingSink()])
        await agent.start()
        await agent.dynamic.stop("never-added")
        await agent.shutdown()

    asyncio.run(scenario())


def test_a_kubelet_rotation_and_its_later_gzip_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    """The kubelet renames ``0.log`` to ``0.log.<YYYYMMDD-HHMMSS>``, opens a new ``0.log``, and
    later gzips the rotated file; CRI lines, labels from the kubelet path."""
    import gzip
    import shutil

    logdir = tmp_path / "pods" / "cache_redis-0_0f1e2d3c-aaaa-bbbb-cccc-111122223333" / "redis"
    logdir.mkdir(parents=True)
    lines = redis_lines()

    def cri(line: str) -> str:
        return f"2026-12-07T03:00:00.000000001Z stdout F {line}\n"

    async def scenario() -> RecordingSink:
        cfg = parse_config({"state_dir": str(tmp_path / "state"), "timezone": "UTC", "shutdown_timeout": 5,
                            "sources": [{"type": "file", "path": str(logdir / "*.log"), "rotate_wait": 0.5,
                                         "idle_flush": 0.2, "poll_interval": 0.1}]})
        sink = RecordingSink()
        agent = Agent(cfg, sinks=[sink])
        await agent.start()
        live = logdir / "0.log"
        with live.open("w") as f:
            f.writelines(cri(x) for x in lines[:15])
        await until(lambda: len([e for e in sink.got if e.event["source"] != "agent"]) >= 15)
        with live.open("a") as f:
            f.writelines(cri(x) for x in lines[15:20])
        rotated = logdir / "0.log.20261207-030000"
        live.rename(rotated)
        with live.open("w") as f:
            f.writelines(cri(x) for x in lines[20:])
        await until(lambda: len([e for e in sink.got if e.event["source"] != "agent"]) >= len(lines))
        await asyncio.sleep(1.5)  # past rotate_wait: the rotated file is closed
        with rotated.open("rb") as src, gzip.open(f"{rotated}.gz", "wb") as dst:
            shutil.copyfileobj(src, dst)
        rotated.unlink()
        await asyncio.sleep(1.0)
        await agent.shutdown()
        return sink

    sink = asyncio.run(scenario())
    data = [e.event for e in sink.got if e.event["source"] != "agent"]
    # two files are two streams: the rotated file's last event may follow the new file's first ones
    assert sorted(ev["message"] for ev in data) == sorted(line.split(" ", 6)[6] for line in lines)
    assert len({ev["id"] for ev in data}) == len(lines)
    assert all(ev["labels"] == {"namespace": "cache", "pod": "redis-0", "container": "redis"} for ev in data)
    assert all(ev["fields"]["stream"] == "stdout" for ev in data)
