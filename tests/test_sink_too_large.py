"""A sink answered 413 (request too large): the batch is split and sent in parts, never
dead-lettered whole.

A 413 comes from a size limit in front of the data (nginx's ``client_max_body_size``, 1 MB by
default; Elasticsearch's ``http.max_content_length``; Loki's ``distributor.max-recv-msg-size``):
the events are fine, the request is too big. What an SRE expects, and what is checked here
against the contract-enforcing receivers with an nginx-like body limit in front
(``ThreadedApp.max_body_bytes``): every event arrives exactly once, only an event too large on its
own is dead-lettered, the agent's batches shrink so the 413 does not repeat on every batch, and
a 413 is never re-sent as-is.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import random
import string
from pathlib import Path
from typing import Any

import orjson
import pytest
from test_offload import agent, es_sink, loki_sink, metric, real_events, shipped, until

from parsers.events import dumps
from shipper.api import SpooledEvent
from shipper.observe import metrics
from shipper.pipeline.runtime import DeadLetters, Outgoing, SinkWorker
from shipper.pipeline.spool import Spool
from shipper.sinks import http

from receivers import NGINX_413_BODY
from receivers.elasticsearch import ElasticsearchReceiver
from receivers.loki import LokiReceiver

pytestmark = pytest.mark.integration

#: the agent's configured batch bound in these tests (canonical JSON bytes)
BATCH = 256 << 10
#: the gateway's body limit in front of Loki, in bytes on the wire (snappy protobuf): a full batch
#: of real Redis log events (about 60 kB on the wire here) is over it, a quarter batch well under
LOKI_LIMIT = 24_000


def dead_letters(tmp: Path, sink: str) -> list[dict[str, Any]]:
    p = tmp / "state" / "deadletter" / f"{sink}.jsonl"
    return [orjson.loads(x) for x in p.read_bytes().splitlines()] if p.exists() else []


def es_docs(rx: ElasticsearchReceiver) -> list[dict[str, Any]]:
    return [d for d in rx.documents() if d["redis_shipper"]["source"] != "agent"]


def lower_bound_of_full_batches(events: list[dict[str, Any]], batch: int) -> int:
    """How many full batches the events make at least (the spool adds fields, so more in fact)."""
    return sum(len(dumps(e)) for e in events) // batch


def run_until(a: Any, done: Any, between: Any = None) -> None:
    async def go() -> None:
        await a.start()
        if between is not None:
            await between()
        await until(done)
        await a.shutdown()

    asyncio.run(go())


def too_large_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "413" in r.getMessage() and r.name == "redis_shipper.runtime"]


# --------------------------------------------------------------------------- the pieces


def test_classify_makes_413_a_too_large_that_is_not_a_permanent_error() -> None:
    resp = http.Response(413, {}, NGINX_413_BODY.encode())
    with pytest.raises(http.TooLarge) as got:
        http.classify(resp, "loki x")
    assert not isinstance(got.value, http.PermanentError)  # the sinks' dead-letter path lets it through
    assert got.value.status == 413 and "Request Entity Too Large" in got.value.body
    with pytest.raises(http.PermanentError):  # other 4xx are unchanged
        http.classify(http.Response(400, {}, b"bad"), "loki x")


def test_the_receiver_answers_413_to_a_body_over_its_limit_before_decoding_it_like_nginx() -> None:
    import urllib.error
    import urllib.request

    with LokiReceiver() as rx:
        rx.max_body_bytes = 100
        # not even JSON: under the limit Loki's own 400 answers, over it the gateway's 413 does
        codes = []
        for n in (100, 101):
            req = urllib.request.Request(rx.url + "/loki/api/v1/push", data=b"x" * n,
                                         headers={"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(req)
            except urllib.error.HTTPError as e:
                codes.append((e.code, e.read().decode()))
        assert codes[0][0] == 400
        assert codes[1] == (413, NGINX_413_BODY)
        assert rx.sized_requests == [("/loki/api/v1/push", 100, False), ("/loki/api/v1/push", 101, True)]
        assert rx.pushes and len(rx.pushes) == 1  # the refused body never reached Loki


@pytest.mark.parametrize("kind", ["loki", "elasticsearch"])
def test_both_http_sinks_raise_too_large_instead_of_rejecting_every_event(kind: str) -> None:
    events = [dict(e, labels={"job": "redis"}) for e in real_events(1)[:50]]
    batch = [SpooledEvent(i + 1, e, dumps(e)) for i, e in enumerate(events)]
    rx: Any = LokiReceiver() if kind == "loki" else ElasticsearchReceiver()
    with rx:
        rx.max_body_bytes = 1000
        sink: Any = loki_sink(rx.url) if kind == "loki" else es_sink(rx.url)

        async def go() -> None:
            try:
                with pytest.raises(http.TooLarge):
                    await sink.send(batch)
                # and the offload path's entry point: a body built by the sink's encoder elsewhere
                module, _, factory = sink.encoder_spec()[0].partition(":")
                encoder = getattr(importlib.import_module(module), factory)(**sink.encoder_spec()[1])
                with pytest.raises(http.TooLarge):
                    await sink.send_encoded(encoder.encode(batch), len(batch))
            finally:
                await sink.close()

        asyncio.run(go())
        assert rx.refused_too_large() == 2


# --------------------------------------------------------------------------- end to end


def test_loki_behind_a_body_limit_gets_every_event_once_and_later_batches_fit_under_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="redis_shipper.runtime")
    events = real_events(40)  # ~1.9 MB of real Redis 7 / Valkey 9 log events
    splits_before = metric(metrics.SINK_SPLIT_BATCHES.labels("loki"))
    with LokiReceiver() as rx:
        rx.max_body_bytes = LOKI_LIMIT
        rx.delay_next(1, 0.5)  # the first accepted push is held: a backlog of full batches builds
        sink = loki_sink(rx.url, max_bytes=BATCH)
        a = agent(tmp_path, events, sink, offload={"mode": "off"})
        run_until(a, lambda: len(shipped(rx)) >= len(events))
        got = shipped(rx)
        sized = list(rx.sized_requests)
        duplicates = rx.duplicates_dropped
    assert rx.refused_too_large() >= 1, "no batch was ever over the limit: the test tests nothing"
    assert sorted(e["seq"] for e in got) == list(range(1, len(events) + 1))  # each once, none missing
    assert duplicates == 0  # an accepted part is never sent again
    assert dead_letters(tmp_path, "loki") == []
    # the batches came down, and stayed down: not one 413 (and split) per batch
    assert 16 << 10 <= sink.max_batch_bytes < BATCH
    refused = [i for i, (_, _, r) in enumerate(sized) if r]
    assert len(refused) < lower_bound_of_full_batches(events, BATCH)
    assert len(sized) - 1 - refused[-1] >= len(sized) // 2, "the requests after the last 413 are the many"
    warnings = too_large_warnings(caplog)
    assert len(warnings) == 1 and "batch.max_bytes" in warnings[0] and str(sink.max_batch_bytes) in warnings[0]
    # and an operator sees it in the metrics: each split counted, the bound the sink uses now
    assert 1 <= metric(metrics.SINK_SPLIT_BATCHES.labels("loki")) - splits_before <= len(refused)
    assert metric(metrics.SINK_MAX_BATCH_BYTES.labels("loki")) == sink.max_batch_bytes


def test_an_offloaded_body_refused_with_413_is_split_from_its_spool_rows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events = real_events(30)
    offloaded = metric(metrics.OFFLOAD_BATCHES)
    split_from_rows: list[bool] = []
    original = SinkWorker._deliver_split

    async def spy(self: SinkWorker, out: Outgoing, err: Exception, stop: asyncio.Event) -> Any:
        split_from_rows.append(out.batch is None)  # a body built by the offload process, no events
        return await original(self, out, err, stop)

    monkeypatch.setattr(SinkWorker, "_deliver_split", spy)
    with LokiReceiver() as rx:
        sink = loki_sink(rx.url, max_bytes=BATCH)
        a = agent(tmp_path, events, sink)
        # the first push is held (every event is spooled meanwhile: a backlog the offload process
        # builds bodies for); the gateway's limit is set while it is held
        rx.delay_next(1, 1.0)

        async def limit_after_the_first_push() -> None:
            await until(lambda: not rx._faults)  # the held push has reached Loki
            rx.max_body_bytes = LOKI_LIMIT

        run_until(a, lambda: len(shipped(rx)) >= len(events), limit_after_the_first_push)
        got = shipped(rx)
    assert metric(metrics.OFFLOAD_BATCHES) > offloaded
    assert True in split_from_rows, "no offloaded body was refused: the test tests nothing"
    assert sorted(e["seq"] for e in got) == list(range(1, len(events) + 1))
    assert dead_letters(tmp_path, "loki") == []
    assert sink.max_batch_bytes < BATCH


def test_elasticsearch_behind_a_body_limit_indexes_every_document_exactly_once(tmp_path: Path) -> None:
    events = real_events(30)
    with ElasticsearchReceiver() as rx:
        # gzip'd NDJSON of a full batch is about 110 kB here (a document carries its event twice:
        # as fields and as event.original): over, and so is a half; a quarter (~27 kB) is under
        rx.max_body_bytes = 40_000
        rx.delay_next(1, 0.5)  # the first accepted bulk is held: a backlog of full batches builds
        sink = es_sink(rx.url, max_bytes=BATCH)
        a = agent(tmp_path, events, sink)
        run_until(a, lambda: len(es_docs(rx)) >= len(events))
        docs = es_docs(rx)
        refused = rx.refused_too_large()
    assert refused >= 1, "no bulk was ever over the limit: the test tests nothing"
    assert len(docs) == len(events)
    assert sorted(d["event"]["sequence"] for d in docs) == list(range(1, len(events) + 1))
    assert dead_letters(tmp_path, "elasticsearch") == []
    assert sink.max_batch_bytes < BATCH
    assert refused < lower_bound_of_full_batches(events, BATCH)


def test_an_event_too_large_on_its_own_is_the_only_dead_letter_and_its_neighbours_arrive(tmp_path: Path) -> None:
    events = real_events(4)
    # a real line with an incompressible blob appended (e.g. a huge CONFIG SET value echoed in a
    # log): bigger than the gateway's limit even alone, smaller than Loki's 256 KB line limit
    giant = dict(events[250], message=events[250]["message"] + " " +
                 "".join(random.Random(7).choices(string.ascii_letters, k=60_000)))
    events[250] = giant
    batch = 96 << 10  # a batch of ordinary events is ~25 kB on the wire: under the limit
    with LokiReceiver() as rx:
        rx.max_body_bytes = 40_000
        sink = loki_sink(rx.url, max_bytes=batch)
        a = agent(tmp_path, events, sink, offload={"mode": "off"})
        run_until(a, lambda: len(shipped(rx)) >= len(events) - 1 and dead_letters(tmp_path, "loki"))
        got = shipped(rx)
        trail = [orjson.loads(x.line) for x in rx.entries()]
        refused = rx.refused_too_large()
    # its batch (with neighbours) was refused, then the event alone: not a batch of one from the start
    assert refused >= 2
    letters = dead_letters(tmp_path, "loki")
    assert len(letters) == 1
    (letter,) = letters
    assert letter["event"]["message"] == giant["message"] and letter["event"]["seq"] == 251
    size = len(dumps(letter["event"]))  # the canonical bytes it had in the spool
    assert "413" in letter["reason"] and f"{size} bytes" in letter["reason"]
    assert sorted(e["seq"] for e in got) == [s for s in range(1, len(events) + 1) if s != 251]
    # one oversized event says nothing about the batch size: batches stay as configured
    assert sink.max_batch_bytes == batch
    # and the trail says so, as for any dead letter
    assert any(e.get("event") == "dead_lettered" and "413" in e["fields"]["reason"] for e in trail)


# --------------------------------------------------------------------------- bounds


def test_a_batch_whose_every_event_is_over_the_limit_costs_2n_minus_1_requests_and_is_acknowledged(
        tmp_path: Path) -> None:
    """A 413 is never re-sent as-is: each request is a smaller part than the one refused, so a
    batch of n events costs at most the 2n - 1 nodes of a binary tree with n leaves."""
    events = [dict(e, labels={"job": "redis"}) for e in real_events(1)[:20]]
    with LokiReceiver() as rx:
        rx.max_body_bytes = 50  # less than any one event
        sink = loki_sink(rx.url, max_bytes=64 << 10)
        trail: list[dict[str, Any]] = []

        async def record(ev: dict[str, Any]) -> None:
            trail.append(ev)

        async def go() -> tuple[int, int]:
            spool = Spool(tmp_path / "state", host="h")
            await spool.open()
            await spool.register_sink(sink.name)
            await spool.append("h/file:x", events, {})
            w = SinkWorker(sink, spool, DeadLetters(str(tmp_path / "state")), record)
            batch, _ = await spool.read(sink.name, 1 << 30)
            # a bound, not a timing assertion: a 413 retried forever would hang here
            async with asyncio.timeout(60):
                await w._deliver(Outgoing.of_batch(batch, sum(len(e.raw) for e in batch)), asyncio.Event())
                await w._settle_ack()
            await sink.close()
            cursor, last = spool.cursor(sink.name), batch[-1].seq
            await spool.close()
            return cursor, last

        cursor, last = asyncio.run(go())
        requests = len(rx.sized_requests)
    n = len(events)
    assert requests == 2 * n - 1
    letters = dead_letters(tmp_path, "loki")
    assert sorted(d["spool_seq"] for d in letters) == list(range(1, n + 1))  # each once
    assert all("413" in d["reason"] for d in letters)
    assert cursor == last  # the batch is done with: acknowledged, not re-read
    assert [e["event"] for e in trail] == ["dead_lettered"]
    assert sink.max_batch_bytes == 64 << 10  # nothing was accepted: no evidence about the batch size


def test_the_batch_size_never_goes_below_16_kib_and_every_event_still_arrives(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="redis_shipper.runtime")
    events = real_events(2)
    with LokiReceiver() as rx:
        rx.max_body_bytes = 2_500  # a 16 KiB batch is ~5 kB on the wire: every batch is split
        sink = loki_sink(rx.url, max_bytes=64 << 10)
        a = agent(tmp_path, events, sink, offload={"mode": "off"})
        run_until(a, lambda: len(shipped(rx)) >= len(events))
        got = shipped(rx)
    assert sink.max_batch_bytes == SinkWorker.MIN_ADAPTED_BATCH_BYTES == 16 << 10
    assert sorted(e["seq"] for e in got) == list(range(1, len(events) + 1))
    assert dead_letters(tmp_path, "loki") == []
    assert len(too_large_warnings(caplog)) == 1  # one warning, however many batches are split
