"""`redis-shipper verify`: a trail read back from a sink is proven complete and unaltered, or the
report says precisely which stream and which seq is wrong, and why.

Trails here are made by the real agent (runtime + spool sealing + real sinks), then read back
by the real readers; tampering happens where an attacker would do it (the sink's files, the
receivers' storage).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from parsers.events import dumps, format_epoch, make_event
from shipper.api import Batch, Delivery, RetryableError, Source, SourceContext, SpooledEvent
from shipper.audit.anchor import AnchorTimer, anchor_event, parse_heads_file
from shipper.audit.verify import GENESIS, Verifier, chain_hash
from shipper.cli import main as cli
from shipper.config import load_config
from shipper.pipeline.runtime import Agent, build_sinks
from shipper.sinks.local import LocalSink, event_files

from receivers.elasticsearch import ElasticsearchReceiver
from receivers.loki import Entry, LokiReceiver

HOST = socket.gethostname()
ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------------ helpers
class ListSource(Source):
    """Emits ``n`` events in batches (position = next index); resumes from the committed position."""

    def __init__(self, name: str, n: int, *, batch: int = 5, same_ts: bool = False) -> None:
        self.name, self.n, self.batch, self.same_ts = name, n, batch, same_ts
        self.key_prefix = f"{name}:"
        self.done = asyncio.Event()
        self.t0 = time.time() - 30

    def event(self, i: int) -> dict[str, Any]:
        ts = self.t0 if self.same_ts else self.t0 + i * 0.001
        return make_event(timestamp=format_epoch(ts), source="redis", category="other", event="unrecognized",
                          message=f"{self.name} line {i} é/\u2028")

    async def run(self, ctx: SourceContext) -> None:
        i = ctx.positions.get(f"{self.name}:next", 0)
        while i < self.n and not ctx.stop.is_set():
            j = min(self.n, i + self.batch)
            await ctx.emit(Batch([self.event(k) for k in range(i, j)], {f"{self.name}:next": j}))
            i = j
        self.done.set()
        await ctx.stop.wait()


def write_config(tmp_path: Path, sinks: list[dict[str, Any]] | None = None, **extra: Any) -> Path:
    # anchors off unless a test asks: these tests pin what the chain alone and --heads can see
    cfg = {"state_dir": str(tmp_path / "state"), "timezone": "UTC", "labels": {"job": "audit-test"},
           "shutdown_timeout": 5, "sinks": sinks or [{"type": "local"}], "audit": {"anchor_interval": 0},
           **extra}
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


async def run_agent(config: Path, sources: list[ListSource], sinks: list[Any] | None = None,
                    during: Any = None, settle: bool = True) -> None:
    """Run until every source is done and (shutdown) the spool is flushed."""
    cfg = load_config(config)
    agent = Agent(cfg, sources=list(sources), sinks=sinks if sinks is not None else build_sinks(cfg))
    await agent.start()
    await asyncio.wait_for(asyncio.gather(*(s.done.wait() for s in sources)), 20)
    for e in agent.emitters:  # the sources' last batches are committed (one may be in flight)
        await e.settle()
    if during is not None:
        await during(agent)
    for _ in range(250 if settle else 0):
        if agent.spool.all_acked():
            break
        await asyncio.sleep(0.02)
    await agent.shutdown()


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = cli(["verify", *args, "--json"])
    out = capsys.readouterr().out
    return code, orjson.loads(out)


def stream_of(report: dict[str, Any], name: str) -> dict[str, Any]:
    for s in report["streams"]:
        if s["stream"] == name:
            return s
    raise AssertionError(f"no stream {name} in {[s['stream'] for s in report['streams']]}")


def local_lines(tmp_path: Path) -> tuple[Path, list[bytes]]:
    files = event_files(tmp_path / "state" / "events")
    assert len(files) == 1
    return files[0], files[0].read_bytes().splitlines()


def line_of(lines: list[bytes], stream: str, seq: int) -> int:
    for i, raw in enumerate(lines):
        ev = orjson.loads(raw)
        if ev["stream"] == stream and ev["seq"] == seq:
            return i
    raise AssertionError(f"{stream} seq {seq} not found")


def resealed(raw: bytes, **changes: Any) -> bytes:
    """The event with some keys changed, re-encoded canonically (what a careful forger writes)."""
    ev = orjson.loads(raw)
    ev.update(changes)
    return dumps(ev)


# ------------------------------------------------------------------------------------ the checker
def test_a_clean_trail_from_the_agent_verifies_and_every_link_is_checked(tmp_path, capsys):
    config = write_config(tmp_path)
    asyncio.run(run_agent(config, [ListSource("file:a", 40), ListSource("file:b", 25)]))
    code, rep = verify(capsys, "--config", str(config))
    assert code == 0, rep["problems"]
    a, b = stream_of(rep, f"{HOST}/file:a"), stream_of(rep, f"{HOST}/file:b")
    assert (a["events"], a["first_seq"], a["last_seq"]) == (40, 1, 40)
    assert (b["events"], b["first_seq"], b["last_seq"]) == (25, 1, 25)
    assert a["gaps"] == [] and a["breaks"] == [] and a["duplicates"] == [] and a["unverified_links"] == 0


def test_deleted_altered_swapped_and_duplicated_events_are_each_reported_at_their_seq(tmp_path, capsys):
    config = write_config(tmp_path)
    asyncio.run(run_agent(config, [ListSource("file:a", 40), ListSource("file:b", 40)]))
    path, lines = local_lines(tmp_path)
    a, b = f"{HOST}/file:a", f"{HOST}/file:b"
    # altered: a careful forger keeps the encoding canonical; only the chain can tell
    i = line_of(lines, a, 10)
    lines[i] = resealed(lines[i], message="nothing to see here")
    # swapped: seq 20 and 21 of stream b exchange places (their seq numbers)
    i, j = line_of(lines, b, 20), line_of(lines, b, 21)
    lines[i], lines[j] = resealed(lines[j], seq=20), resealed(lines[i], seq=21)
    # duplicated: seq 30 of stream a appears twice, byte for byte
    lines.append(lines[line_of(lines, a, 30)])
    # deleted: seq 5 of stream b
    del lines[line_of(lines, b, 5)]
    path.write_bytes(b"".join(x + b"\n" for x in lines))

    code, rep = verify(capsys, "--config", str(config))
    assert code == 1
    sa, sb = stream_of(rep, a), stream_of(rep, b)
    assert sa["altered"] == [10] and sa["reordered"] == []
    assert [x["seq"] for x in sa["breaks"]] == [11]
    assert [(d["seq"], d["copies"], d["identical"]) for d in sa["duplicates"]] == [(30, 2, True)]
    assert sa["gaps"] == []
    assert [(g["first"], g["last"], g["explanation"]) for g in sb["gaps"]] == [(5, 5, None)]
    assert sorted(map(tuple, sb["reordered"])) == [(20, 21), (21, 20)]
    assert sb["altered"] == []
    assert sb["duplicates"] == []
    problems = rep["problems"]
    assert any(p.startswith(f"{b}: missing seq 5 ") for p in problems)
    assert any(p.startswith(f"{a}: chain break at seq 11: seq 10 (events-") and "was altered" in p for p in problems)
    assert not any("seq 30" in p for p in problems), "an identical replay is not a problem"


def test_an_identical_duplicate_alone_is_reported_but_verifies(tmp_path, capsys):
    config = write_config(tmp_path)
    asyncio.run(run_agent(config, [ListSource("file:a", 12)]))
    path, lines = local_lines(tmp_path)
    path.write_bytes(b"".join(x + b"\n" for x in lines + lines[3:6]))
    code, rep = verify(capsys, "--config", str(config))
    assert code == 0, rep["problems"]
    assert [d["seq"] for d in stream_of(rep, f"{HOST}/file:a")["duplicates"]] == [4, 5, 6]


def test_two_different_events_with_one_seq_are_a_conflict_and_the_one_that_chains_is_named(tmp_path, capsys):
    config = write_config(tmp_path)
    asyncio.run(run_agent(config, [ListSource("file:a", 12)]))
    path, lines = local_lines(tmp_path)
    forged = resealed(lines[line_of(lines, f"{HOST}/file:a", 7)], message="forged")
    path.write_bytes(b"".join(x + b"\n" for x in [*lines, forged]))
    code, rep = verify(capsys, "--config", str(config))
    assert code == 1
    (dup,) = stream_of(rep, f"{HOST}/file:a")["duplicates"]
    assert (dup["seq"], dup["identical"], dup["genuine"]) == (7, False, 0)
    assert any("seq 7 appears with different contents" in p for p in rep["problems"])


def test_a_re_encoded_line_is_flagged_even_when_its_content_is_unchanged(tmp_path, capsys):
    config = write_config(tmp_path)
    asyncio.run(run_agent(config, [ListSource("file:a", 6)]))
    path, lines = local_lines(tmp_path)
    lines[2] = json.dumps(orjson.loads(lines[2])).encode()  # spaces, \u escapes: what a generic tool writes
    path.write_bytes(b"".join(x + b"\n" for x in lines))
    code, rep = verify(capsys, "--config", str(config))
    assert code == 1
    s = stream_of(rep, f"{HOST}/file:a")
    assert s["not_canonical"] == [3] and s["altered"] == [3]


def test_a_torn_write_followed_by_its_replay_is_harmless_but_garbage_is_not(tmp_path, capsys):
    config = write_config(tmp_path)
    asyncio.run(run_agent(config, [ListSource("file:a", 8)]))
    path, lines = local_lines(tmp_path)
    torn = lines[5][: len(lines[5]) // 2]
    path.write_bytes(b"".join(x + b"\n" for x in lines[:5]) + torn + b"".join(x + b"\n" for x in lines[5:]))
    code, rep = verify(capsys, "--config", str(config))
    assert code == 0, rep["problems"]
    assert len(rep["invalid"]) == 1 and rep["invalid"][0]["explanation"]
    with open(path, "ab") as f:
        f.write(b"hello, I am not an event\n")
    code, rep = verify(capsys, "--config", str(config))
    assert code == 1 and any("not JSON" in p for p in rep["problems"])


def test_a_cut_tail_passes_the_chain_but_not_the_agents_heads(tmp_path, capsys):
    config = write_config(tmp_path)
    asyncio.run(run_agent(config, [ListSource("file:a", 20), ListSource("file:b", 5)]))
    path, lines = local_lines(tmp_path)
    a = f"{HOST}/file:a"
    cut = [x for x in lines if not (orjson.loads(x)["stream"] == a and orjson.loads(x)["seq"] > 17)]
    path.write_bytes(b"".join(x + b"\n" for x in cut))
    code, _ = verify(capsys, "--config", str(config))
    assert code == 0, "a hash chain alone cannot see a cut tail"
    code, rep = verify(capsys, "--config", str(config), "--heads")
    assert code == 1
    assert [(g["first"], g["last"], g["explanation"]) for g in stream_of(rep, a)["gaps"]] == [(18, 20, None)]
    assert stream_of(rep, f"{HOST}/file:b")["anchors_checked"] == 1


def test_the_runtime_anchors_at_shutdown_so_a_cut_tail_shows_in_the_trail_alone(tmp_path, capsys):
    config = write_config(tmp_path, audit={"anchor_interval": 300})
    asyncio.run(run_agent(config, [ListSource("file:a", 20)]))
    path, lines = local_lines(tmp_path)
    a = f"{HOST}/file:a"
    assert any(orjson.loads(x)["event"] == "chain_anchor" for x in lines), "a final anchor at shutdown"
    code, _ = verify(capsys, "--config", str(config), "--no-agent-state")
    assert code == 0
    cut = [x for x in lines if not (orjson.loads(x)["stream"] == a and orjson.loads(x)["seq"] > 17)]
    path.write_bytes(b"".join(x + b"\n" for x in cut))
    code, rep = verify(capsys, "--config", str(config), "--no-agent-state")
    assert code == 1
    assert [(g["first"], g["last"]) for g in stream_of(rep, a)["gaps"]] == [(18, 20)]


def test_heads_printed_earlier_catch_a_rewritten_last_event(tmp_path, capsys):
    config = write_config(tmp_path)
    asyncio.run(run_agent(config, [ListSource("file:a", 10)]))
    capsys.readouterr()
    assert cli(["verify", "--config", str(config), "--print-heads"]) == 0
    heads_file = tmp_path / "heads.json"
    heads_file.write_text(capsys.readouterr().out)
    heads = parse_heads_file(heads_file.read_bytes())
    assert heads[f"{HOST}/file:a"][0] == 10
    path, lines = local_lines(tmp_path)
    i = line_of(lines, f"{HOST}/file:a", 10)
    lines[i] = resealed(lines[i], message="rewritten")  # the last event: no successor to break
    path.write_bytes(b"".join(x + b"\n" for x in lines))
    code, _ = verify(capsys, "--config", str(config), "--no-agent-state")
    assert code == 0
    code, rep = verify(capsys, "--config", str(config), "--no-agent-state", "--heads", str(heads_file))
    assert code == 1
    assert any("seq 10 hashes to" in p and "rewritten after the anchor" in p for p in rep["problems"])


def test_chain_anchor_events_in_the_trail_pin_every_stream(tmp_path, capsys):
    config = write_config(tmp_path)
    src = ListSource("file:a", 15)

    async def anchor(agent: Agent) -> None:
        timer = AnchorTimer(agent.spool.chain_heads, agent.record_agent, agent_stream=f"{HOST}/agent")
        assert await timer.tick() is True
        assert await timer.tick() is False, "no new anchor while nothing moved"

    asyncio.run(run_agent(config, [src], during=anchor))
    path, lines = local_lines(tmp_path)
    a = f"{HOST}/file:a"
    anchors = [orjson.loads(x) for x in lines if orjson.loads(x)["event"] == "chain_anchor"]
    assert anchors[0]["fields"]["heads"][a]["seq"] == 15
    code, rep = verify(capsys, "--config", str(config), "--no-agent-state")
    assert code == 0 and stream_of(rep, a)["anchors_checked"] == 1
    cut = [x for x in lines if not (orjson.loads(x)["stream"] == a and orjson.loads(x)["seq"] >= 14)]
    path.write_bytes(b"".join(x + b"\n" for x in cut))
    code, rep = verify(capsys, "--config", str(config), "--no-agent-state")
    assert code == 1
    assert [(g["first"], g["last"]) for g in stream_of(rep, a)["gaps"]] == [(14, 15)]


class FlakyLocalSink(LocalSink):
    """The local sink with faults: refuses some messages for good, or stops acknowledging."""

    def __init__(self, cfg: Any, state_dir: str, *, reject: set[str] = frozenset(), stop_after: int | None = None):
        super().__init__(cfg, state_dir=state_dir)
        self.reject, self.stop_after, self.sent = reject, stop_after, 0
        self.max_wait = 0.02
        self.retry_initial, self.retry_max = 0.01, 0.05

    async def send(self, batch: list[SpooledEvent]) -> Delivery:
        if self.stop_after is not None and self.sent >= self.stop_after:
            raise RetryableError("disk on fire", status=503)
        rejected = [(i, "refused") for i, e in enumerate(batch) if e.event.get("message") in self.reject]
        keep = [e for i, e in enumerate(batch) if i not in {r[0] for r in rejected}]
        await super().send(keep)
        self.sent += len(batch)
        return Delivery(rejected=rejected)


def test_dead_lettered_events_are_explained_for_the_sink_that_refused_them(tmp_path, capsys):
    config = write_config(tmp_path)
    cfg = load_config(config)
    src = ListSource("file:a", 20)
    sink = FlakyLocalSink(cfg.sinks[0], cfg.state_dir, reject={src.event(6)["message"], src.event(7)["message"]})
    sink.name = "local"
    asyncio.run(run_agent(config, [src], sinks=[sink]))
    a = f"{HOST}/file:a"
    code, rep = verify(capsys, "--config", str(config))
    assert code == 0, rep["problems"]
    (gap,) = stream_of(rep, a)["gaps"]
    assert (gap["first"], gap["last"]) == (7, 8) and gap["explanation"].startswith("dead-lettered")
    assert [d["event"] for d in stream_of(rep, f"{HOST}/agent")["declared"]] == ["dead_lettered"]
    # from another host (no dead-letter file): the dead_lettered event's ids still explain it
    code, rep = verify(capsys, "--config", str(config), "--no-agent-state")
    assert code == 0, rep["problems"]
    assert stream_of(rep, a)["gaps"][0]["explanation"].startswith("dead-lettered by sink local")
    # ... but only for that sink: the same trail read as another sink's has an unexplained gap
    code, rep = verify(capsys, "--config", str(config), "--no-agent-state", "--input",
                       *map(str, event_files(tmp_path / "state" / "events")), "--sink", "loki")
    assert code == 1 and stream_of(rep, a)["gaps"][0]["explanation"] is None


def test_events_still_in_the_spool_explain_a_lagging_sink(tmp_path, capsys):
    config = write_config(tmp_path, shutdown_timeout=0.5)
    cfg = load_config(config)
    sink = FlakyLocalSink(cfg.sinks[0], cfg.state_dir, stop_after=10)
    sink.name = "local"
    sink.max_batch_bytes = 1500  # a few events per batch
    asyncio.run(run_agent(config, [ListSource("file:a", 30, batch=10)], sinks=[sink], settle=False))
    a = f"{HOST}/file:a"
    code, rep = verify(capsys, "--config", str(config), "--heads")
    assert code == 0, rep["problems"]
    (gap,) = stream_of(rep, a)["gaps"]
    assert 10 <= sink.sent < 30
    assert (gap["first"], gap["last"]) == (sink.sent + 1, 30) and gap["explanation"].startswith("pending")
    assert cli(["verify", "--config", str(config), "--heads", "--no-agent-state"]) == 2, \
        "--heads without a file reads the agent state"


def test_a_time_window_checks_only_the_seqs_stamped_inside_it(tmp_path, capsys):
    config = write_config(tmp_path)
    src = ListSource("file:a", 30)
    asyncio.run(run_agent(config, [src]))
    since = src.event(10)["timestamp"]
    until = src.event(20)["timestamp"]
    code, rep = verify(capsys, "--config", str(config), "--since", since, "--until", until, "--stream",
                       f"{HOST}/file:a")
    assert code == 0, rep["problems"]
    s = stream_of(rep, f"{HOST}/file:a")
    assert (s["first_seq"], s["last_seq"], s["events"]) == (11, 20, 10)
    assert len(rep["streams"]) == 1


def test_verify_reports_config_errors_with_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sinks: [{type: loki}]\n")
    assert cli(["verify", "--config", str(bad)]) == 2
    config = write_config(tmp_path)
    assert cli(["verify", "--config", str(config), "--from", "loki"]) == 2
    assert cli(["verify", "--config", str(config), "--since", "yesterday-ish"]) == 2
    assert "no sink of type 'loki'" in capsys.readouterr().err


def test_the_checker_accepts_a_chain_built_by_hand_from_the_documented_rules():
    """docs/audit.md: a third party can seal and check without our code's help."""
    prev, lines = GENESIS, []
    for seq in range(1, 6):
        ev = {"stream": "h/x", "seq": seq, "prev_hash": prev, "timestamp": "2026-11-25T17:00:00.000000Z",
              "message": "caf\u00e9 </script> \u2028", "n": 1.5}
        raw = orjson.dumps(ev, option=orjson.OPT_SORT_KEYS)
        lines.append(raw)
        prev = chain_hash(raw)
    v = Verifier()
    v.add_lines((x, str(i)) for i, x in enumerate(lines))
    rep = v.report()
    assert rep.ok, rep.problems()
    assert b"\\u" not in lines[0] and b"\\/" not in lines[0], "non-ASCII and / are written as is"
    v = Verifier()
    v.add_lines((x, str(i)) for i, x in enumerate(lines[1:]))
    rep = v.report()
    assert rep.ok and rep.streams[0].notes and "begins at seq 2" in rep.streams[0].notes[0]
    v = Verifier(require_genesis=True)
    v.add_lines((x, str(i)) for i, x in enumerate(lines[1:]))
    assert not v.report().ok


# ------------------------------------------------------------------------------------ Loki read-back
def loki_config(tmp_path: Path, url: str, encoding: str = "json") -> Path:
    return write_config(tmp_path, sinks=[{"type": "loki", "url": url, "encoding": encoding,
                                          "batch": {"max_wait": "50ms"},
                                          "retry": {"initial": "10ms", "max": "50ms"}}])


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_loki_read_back_paginates_and_verifies_then_fails_after_tampering(tmp_path, capsys, encoding):
    with LokiReceiver() as rx:
        config = loki_config(tmp_path, rx.url, encoding)
        # 30 events share one timestamp: a page of 7 cannot advance past it without growing
        asyncio.run(run_agent(config, [ListSource("file:a", 60), ListSource("file:b", 30, same_ts=True)]))
        assert rx.count() >= 90
        code, rep = verify(capsys, "--config", str(config), "--from", "loki", "--loki-limit", "7")
        assert code == 0, rep["problems"]
        assert stream_of(rep, f"{HOST}/file:a")["events"] == 60
        assert stream_of(rep, f"{HOST}/file:b")["events"] == 30
        assert all(s["duplicates"] == [] for s in rep["streams"]), "page boundaries are not read twice"
        # tamper inside Loki's storage: alter one entry, drop another
        with rx.lock:
            for st in rx._streams.values():
                for k, e in enumerate(st.entries):
                    ev = orjson.loads(e.line)
                    if ev["stream"] == f"{HOST}/file:a" and ev["seq"] == 33:
                        st.entries[k] = Entry(e.ts, resealed(e.line.encode(), message="edited").decode(), e.metadata)
                st.entries[:] = [e for e in st.entries
                                 if not (orjson.loads(e.line)["stream"] == f"{HOST}/file:b"
                                         and orjson.loads(e.line)["seq"] == 12)]
        code, rep = verify(capsys, "--config", str(config), "--from", "loki", "--loki-limit", "7",
                           "--no-agent-state")
        assert code == 1
        assert stream_of(rep, f"{HOST}/file:a")["altered"] == [33]
        assert [(g["first"], g["last"]) for g in stream_of(rep, f"{HOST}/file:b")["gaps"]] == [(12, 12)]


# ------------------------------------------------------------------------------------ Elasticsearch
def test_elasticsearch_read_back_verifies_then_fails_after_tampering(tmp_path, capsys):
    with ElasticsearchReceiver() as rx:
        config = write_config(tmp_path, sinks=[{"type": "elasticsearch", "url": rx.url,
                                                "batch": {"max_wait": "50ms"},
                                                "retry": {"initial": "10ms", "max": "1s"}}])
        asyncio.run(run_agent(config, [ListSource("file:a", 45), ListSource("file:b", 20)]))
        assert all("original" in d["event"] and "stream" in d["redis_shipper"] for d in rx.documents())
        code, rep = verify(capsys, "--config", str(config), "--from", "elasticsearch", "--es-page", "8")
        assert code == 0, rep["problems"]
        assert stream_of(rep, f"{HOST}/file:a")["events"] == 45
        assert stream_of(rep, f"{HOST}/file:b")["events"] == 20
        code, rep = verify(capsys, "--config", str(config), "--from", "elasticsearch", "--since", "1h",
                           "--margin", "0s", "--stream", f"{HOST}/file:a")
        assert code == 0 and [s["stream"] for s in rep["streams"]] == [f"{HOST}/file:a"]
        code, rep = verify(capsys, "--config", str(config), "--from", "elasticsearch", "--until", "2h")
        assert code == 1 and rep["streams"] == [], "nothing stamped before the window: nothing proven"
        with rx.lock:
            for ix in rx.indices.values():
                for doc_id, doc in list(ix.docs.items()):
                    ev = orjson.loads(doc["event"]["original"])
                    if ev["stream"] == f"{HOST}/file:a" and ev["seq"] == 9:
                        del ix.docs[doc_id]
                    if ev["stream"] == f"{HOST}/file:b" and ev["seq"] == 4:
                        doc["event"]["original"] = resealed(doc["event"]["original"].encode(),
                                                            level="debug").decode()
        code, rep = verify(capsys, "--config", str(config), "--from", "elasticsearch", "--es-page", "8")
        assert code == 1
        assert [(g["first"], g["last"], g["explanation"]) for g in stream_of(rep, f"{HOST}/file:a")["gaps"]] == \
            [(9, 9, None)]
        assert stream_of(rep, f"{HOST}/file:b")["altered"] == [4]


# ------------------------------------------------------------------------------------ end to end
def _wait(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _local_count(state: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in event_files(state / "events"))


@pytest.mark.slow
def test_agent_killed_mid_run_with_a_loki_outage_leaves_a_trail_that_verifies_in_both_sinks(tmp_path, capsys):
    """`redis-shipper run` (subprocess) tails a growing Redis log into the local sink and Loki;
    Loki answers 503 for a while, the agent is SIGKILLed mid-stream and restarted. Both trails
    then verify: replays are identical bytes (reported, not failures), nothing is missing."""
    sample = [line for p in sorted((ROOT / "sample-logs" / "redis-7.0").glob("*.log"))
              if "crash" not in p.name for line in p.read_bytes().splitlines(keepends=True)] * 3
    log = tmp_path / "redis.log"
    log.write_bytes(b"")
    with LokiReceiver() as rx:
        config = write_config(tmp_path, sinks=[
            {"type": "local"},
            {"type": "loki", "url": rx.url, "encoding": "json", "batch": {"max_wait": "50ms"},
             "retry": {"initial": "20ms", "max": "200ms"}},
        ], sources=[{"type": "file", "path": str(log), "poll_interval": "50ms"}], metrics={"listen": ""})
        state = tmp_path / "state"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "shipper.cli", "run", "--config", str(config)]

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                                    stderr=open(tmp_path / "agent.log", "ab"))  # noqa: SIM115

        rx.fail_next(4, 503)  # an outage that outlives the first run (the sink backs off 0.5 s, 1 s, 2 s...)
        proc = start()
        try:
            half = len(sample) // 2
            for k, line in enumerate(sample[:half]):
                with open(log, "ab") as f:
                    f.write(line)
                if k % 10 == 0:
                    time.sleep(0.01)
            _wait(lambda: _local_count(state) >= half // 2, 20, "events in the local sink")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            with open(log, "ab") as f:
                f.writelines(sample[half:])
            expected = subprocess.run([sys.executable, "-m", "shipper.cli", "parse", "--timezone", "UTC", str(log)],
                                      cwd=ROOT, capture_output=True, check=True).stdout.count(b"\n")
            proc = start()
            # verify while the agent runs (spool read beside it, lines being written)
            code, rep = verify(capsys, "--config", str(config), "--heads")
            assert code == 0, rep["problems"]
            _wait(lambda: _local_max_seq(state) >= expected, 30, "the whole log in the local sink")
            _wait(lambda: _settled(state), 30, "both sinks to catch up")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        code, rep = verify(capsys, "--config", str(config), "--heads")
        assert code == 0, rep["problems"]
        (s,) = [x for x in rep["streams"] if x["stream"].endswith(f"file:{log}")]
        assert (s["first_seq"], s["last_seq"], s["events"], s["gaps"]) == (1, expected, expected, [])
        code, rep = verify(capsys, "--config", str(config), "--from", "loki", "--heads")
        assert code == 0, rep["problems"]
        (s2,) = [x for x in rep["streams"] if x["stream"].endswith(f"file:{log}")]
        assert (s2["first_seq"], s2["last_seq"]) == (s["first_seq"], s["last_seq"])
        assert b"HTTP 503" in (tmp_path / "agent.log").read_bytes(), "the outage happened"


def _local_max_seq(state: Path) -> int:
    """Highest seq of the log file's stream in the local sink (a line being written is skipped)."""
    best = 0
    for p in event_files(state / "events"):
        for x in p.read_bytes().splitlines():
            try:
                ev = orjson.loads(x)
            except orjson.JSONDecodeError:
                continue
            if "/file:" in ev.get("stream", ""):
                best = max(best, ev.get("seq", 0))
    return best


def _settled(state: Path) -> bool:
    import sqlite3

    db = sqlite3.connect(f"file:{state / 'spool.sqlite'}?mode=ro", uri=True)
    try:
        top = db.execute("SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name='batches'").fetchone()[0]
        acked = [r[0] for r in db.execute("SELECT acked FROM sink_cursors")]
    finally:
        db.close()
    return bool(acked) and all(a >= top for a in acked)


def test_anchor_event_shape_is_stable():
    ev = anchor_event({"h/a": (3, "ab" * 32)}, now=0.0)
    assert ev["event"] == "chain_anchor" and ev["source"] == "agent"
    assert ev["fields"] == {"heads": {"h/a": {"seq": 3, "hash": "ab" * 32}}}


def _sealer() -> Any:
    """The spool's own sealing (stream, seq, prev_hash, id), without a database."""
    from shipper.pipeline.spool import Spool

    spool = Spool("/nonexistent", host="h")
    spool._executor.shutdown()

    def seal(stream: str, ev: dict[str, Any]) -> bytes:
        heads: dict[str, tuple[int, str]] = {}
        raw = spool._seal(stream, ev, heads)
        spool._heads.update(heads)
        return raw

    return seal


def _log_event(i: int) -> dict[str, Any]:
    ev = make_event(timestamp=format_epoch(1_764_000_000 + i), source="redis", category="other",
                    event="unrecognized", message=f"line {i}")
    ev["id"] = f"file-identity-offset-{i}"  # a source-given id: not derivable from (stream, seq)
    return ev


def test_declared_seq_ranges_explain_gaps_and_a_bare_overflow_count_explains_no_more_than_it_dropped():
    from shipper.audit.verify import seq_ranges_field

    seal = _sealer()
    trail = [seal("h/file:a", _log_event(i)) for i in range(1, 21)]
    dead = make_event(timestamp=format_epoch(1_764_000_100), source="agent", category="other",
                      event="dead_lettered", message="sink loki refused 2 events",
                      fields={"sink": "loki", "events": 2, "ids": ["file-identity-offset-4", "file-identity-offset-5"],
                              "seqs": seq_ranges_field([("h/file:a", 4), ("h/file:a", 5)])})
    over = make_event(timestamp=format_epoch(1_764_000_101), source="agent", category="other",
                      event="spool_overflow", message="spool full", fields={"dropped_events": 2})
    agent = [seal("h/agent", dead), seal("h/agent", over)]
    kept = [r for r in trail if orjson.loads(r)["seq"] not in (4, 5, 9, 10, 11)] + agent

    v = Verifier(sink="loki")
    v.add_lines((r, "x") for r in kept)
    s = v.report().stream("h/file:a")
    assert [(g.first, g.last) for g in s.gaps] == [(4, 5), (9, 10), (11, 11)]
    assert s.gaps[0].explanation.startswith("dead-lettered by sink loki")
    assert s.gaps[1].explanation.startswith("probably dropped by a full spool")
    assert s.gaps[2].explanation is None, "the overflow dropped 2 events, not 3"
    assert [d.event for d in v.report().stream("h/agent").declared] == ["dead_lettered", "spool_overflow"]

    v = Verifier(sink="elasticsearch")  # another sink: loki's dead letters explain nothing here
    v.add_lines((r, "x") for r in kept)
    gaps = v.report().stream("h/file:a").gaps
    assert not any((g.explanation or "").startswith("dead-lettered") for g in gaps)
    assert sum(g.count for g in gaps if g.explanation is None) == 3, "5 missing, the overflow explains 2"


def test_a_lost_state_dir_restarts_the_chain_and_verify_says_so(tmp_path, capsys):
    config = write_config(tmp_path, sinks=[{"type": "local", "dir": str(tmp_path / "kept-events")}])
    asyncio.run(run_agent(config, [ListSource("file:a", 6)]))
    shutil.rmtree(tmp_path / "state")  # all of it: a lost spool alone is a state_reset, resumed
    time.sleep(0.01)  # the second run's events get other timestamps: other bytes for the same seqs
    asyncio.run(run_agent(config, [ListSource("file:a", 6)]))
    code, rep = verify(capsys, "--config", str(config))
    assert code == 1
    s = stream_of(rep, f"{HOST}/file:a")
    assert [d["seq"] for d in s["duplicates"] if not d["identical"]] == [1, 2, 3, 4, 5, 6]
    assert any("restarted from seq 1" in n for n in s["notes"])


def test_a_line_being_written_while_verify_reads_is_not_a_problem(tmp_path, capsys):
    """verify on a live agent: the local sink's last line may be half written; that event is
    still in the spool (not acknowledged), which explains the fragment."""
    config = write_config(tmp_path, shutdown_timeout=0.5)
    cfg = load_config(config)
    sink = FlakyLocalSink(cfg.sinks[0], cfg.state_dir, stop_after=5)
    sink.name = "local"
    sink.max_batch_bytes = 1500
    asyncio.run(run_agent(config, [ListSource("file:a", 12)], sinks=[sink], settle=False))
    state = _pending(cfg.state_dir)
    path, lines = local_lines(tmp_path)
    with open(path, "ab") as f:
        f.write(state[0][: len(state[0]) // 3])  # the next write, caught in the middle
    code, rep = verify(capsys, "--config", str(config))
    assert code == 0, rep["problems"]
    assert rep["invalid"] == [] and any("still being written" in n for n in rep["notes"])
    # the same file given as --input (not known to be live): the spool explains the fragment
    code, rep = verify(capsys, "--config", str(config), "--input", str(path), "--sink", "local")
    assert code == 0, rep["problems"]
    assert rep["invalid"][0]["explanation"].startswith("a write in progress")
    assert cli(["verify", "--config", str(config), "--input", str(tmp_path / "missing.jsonl")]) == 3


def _pending(state_dir: str) -> list[bytes]:
    from shipper.audit.readers import read_agent_state

    return read_agent_state(state_dir, "local").pending


def test_the_file_sink_is_verified_from_its_own_path(tmp_path, capsys):
    out = tmp_path / "trail.jsonl"
    config = write_config(tmp_path, sinks=[{"type": "file", "path": str(out)}])
    asyncio.run(run_agent(config, [ListSource("file:a", 9)]))
    code, rep = verify(capsys, "--config", str(config), "--from", "file", "--heads")
    assert code == 0, rep["problems"]
    assert stream_of(rep, f"{HOST}/file:a")["events"] == 9
    lines = out.read_bytes().splitlines()
    out.write_bytes(b"".join(x + b"\n" for x in lines[:-1]))
    code, rep = verify(capsys, "--config", str(config), "--from", "file", "--heads")
    assert code == 1 and [(g["first"], g["last"]) for g in stream_of(rep, f"{HOST}/file:a")["gaps"]] == [(9, 9)]


def test_the_anchor_timer_emits_only_when_a_stream_moved_and_once_more_at_shutdown():
    heads = {"h/agent": (1, "a" * 64), "h/file:a": (5, "b" * 64)}
    got: list[dict[str, Any]] = []

    async def get_heads() -> dict[str, tuple[int, str]]:
        return dict(heads)

    async def record(ev: dict[str, Any]) -> None:
        got.append(ev)
        heads["h/agent"] = (heads["h/agent"][0] + 1, "c" * 64)  # the anchor itself moves the agent stream

    async def scenario() -> None:
        stop = asyncio.Event()
        timer = AnchorTimer(get_heads, record, interval=0.01, agent_stream="h/agent")
        task = asyncio.create_task(timer.run(stop))
        await asyncio.sleep(0.1)
        assert len(got) == 1, "one anchor, then nothing while only the agent stream moves"
        heads["h/file:a"] = (6, "d" * 64)
        stop.set()
        await task
        assert len(got) == 2 and got[1]["fields"]["heads"]["h/file:a"]["seq"] == 6

    asyncio.run(scenario())
