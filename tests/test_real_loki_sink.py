"""The Loki sink against the real Grafana Loki (tests/loki_server.py): what the contract
receiver (tests/receivers/loki.py) models, proved on the server itself. Each test has its own
tenant and labels, so tests never see each other's entries."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from parsers.events import dumps
from parsers.logfile import LogParser
from shipper.api import Delivery, RetryableError, SpooledEvent
from shipper.commands.parse import iter_lines
from shipper.config import LokiSinkConfig
from shipper.sinks.loki import LokiSink, timestamp_ns

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.real_loki, pytest.mark.integration]
#: the sample logs of single servers and Sentinels are from 25 Nov 2026 (UTC), the cluster logs
#: from 7 Dec: the window of most tests, and the one of the every-kind test
START, END = timestamp_ns("2026-11-25T00:00:00.000000Z"), timestamp_ns("2026-11-26T00:00:00.000000Z")
ALL_END = timestamp_ns("2026-12-08T00:00:00.000000Z")
ALLOWED_STREAM_LABELS = {"job", "instance", "source", "level", "service_name"}


def parse_file(path: Path) -> list[dict[str, Any]]:
    """The events of a log file, as ``redis-shipper parse --timezone UTC`` prints them (the same
    parser and line reader, in this process: the covering test parses every sample log)."""
    with open(path, "rb") as f:
        parser = LogParser(tz=UTC, reference_time=datetime.fromtimestamp(os.fstat(f.fileno()).st_mtime, UTC))
        events = [ev for line, offset, cut, partial in iter_lines(f, 1 << 20)
                  for ev in parser.feed(line, offset, cut_bytes=cut, partial=partial)]
    return [orjson.loads(dumps(ev)) for ev in events + list(parser.flush())]


@functools.cache
def kinds_by_file() -> dict[str, frozenset[str]]:
    """Every log of sample-logs/ (relative path) and the event kinds the parsers find in it."""
    logs = sorted(p.relative_to(ROOT / "sample-logs").as_posix() for p in (ROOT / "sample-logs").rglob("*.log"))
    return {r: frozenset(ev["event"] for ev in parse_file(ROOT / "sample-logs" / r)) for r in logs}


def covering_files() -> list[str]:
    """Few sample logs that between them hold every event kind of sample-logs/ (greedy cover)."""
    kinds, left, out = kinds_by_file(), set().union(*kinds_by_file().values()), []
    while left:
        best = max(kinds, key=lambda r: len(kinds[r] & left))
        out.append(best)
        left -= kinds[best]
    return out


def parsed(*rel: str, job: str) -> list[SpooledEvent]:
    """The events of sample-logs files, as the spool would hand them (``instance`` = the file)."""
    out: list[SpooledEvent] = []
    for r in rel:
        for ev in parse_file(ROOT / "sample-logs" / r):
            ev["labels"] = {"job": job, "instance": r}
            out.append(SpooledEvent(len(out) + 1, ev, dumps(ev)))
    return out


def sink(url: str, tenant: str | None, **kw: Any) -> LokiSink:
    return LokiSink(LokiSinkConfig(type="loki", url=url, tenant=tenant, retry={"timeout": "3s"}, **kw))


def send(s: LokiSink, batch: list[SpooledEvent]) -> Delivery:
    async def go() -> Delivery:
        try:
            return await s.send(batch)
        finally:
            await s.close()
    return asyncio.run(go())


def send_until_delivered(s: LokiSink, batch: list[SpooledEvent], timeout: float = 60) -> list[RetryableError]:
    """What the sink worker does: retry a RetryableError after a pause; the errors seen."""
    errors: list[RetryableError] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            d = send(s, batch)
            assert d.rejected == [], d.rejected
            return errors
        except RetryableError as e:
            errors.append(e)
            assert time.monotonic() < deadline, f"not delivered in {timeout} s: {errors[-1]}"
            time.sleep(min(2.0, 0.2 * len(errors)))


def wait_entries(loki: Any, tenant: str, query: str, n: int, timeout: float = 30, end: int = END) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        got = loki.entries(tenant, query, START, end)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.3)


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_every_event_kind_arrives_with_its_labels_metadata_and_own_timestamp(loki, encoding):
    tenant = job = f"kinds-{encoding}"
    files = covering_files()
    batch = parsed(*files, job=job)
    kinds = {se.event["event"] for se in batch}
    assert kinds == set().union(*kinds_by_file().values()), "every event kind of sample-logs/"
    assert len(kinds) > 150
    for r in files:  # one push per file, as a live agent would send them
        d = send(sink(loki.url, tenant, encoding=encoding), [se for se in batch if se.event["labels"]["instance"] == r])
        assert d.rejected == []
    got = wait_entries(loki, tenant, f'{{job="{job}"}}', len(batch), end=ALL_END)
    assert len(got) == len(batch), "every event once"
    by_line = {line: (labels, ts) for labels, ts, line in got}
    for se in batch:
        labels, ts = by_line[se.raw.decode()]
        ev = se.event
        assert ts == timestamp_ns(ev["timestamp"]), "the line's own timestamp, to the microsecond"
        assert labels["job"] == job and labels["instance"] == ev["labels"]["instance"]
        assert labels["source"] == ev["source"] and labels.get("level") == ev.get("level")
        assert labels["event"] == ev["event"] and labels["category"] == ev["category"]
        for k in ("pid", "role", "id", "offset"):  # the rest of the structured metadata
            if ev.get(k) not in (None, ""):
                assert labels[k] == str(ev[k]), k
    assert {labels["event"] for labels, _, _ in got} == kinds
    series = loki.series(tenant, f'{{job="{job}"}}', START, ALL_END)
    assert {k for s in series for k in s} <= ALLOWED_STREAM_LABELS, "nothing high-cardinality as a stream label"
    assert len(series) == len({(se.event["labels"]["instance"], se.event["source"], se.event.get("level"))
                               for se in batch})


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_a_replayed_batch_leaves_no_duplicate_in_loki(loki, encoding):
    tenant = job = f"replay-{encoding}"
    batch = parsed("redis-7.0/startup-shutdown.log", job=job)
    send(sink(loki.url, tenant, encoding=encoding), batch)
    send(sink(loki.url, tenant, encoding="protobuf" if encoding == "json" else "json"), batch)
    send(sink(loki.url, tenant, encoding=encoding), batch[: len(batch) // 2])
    got = wait_entries(loki, tenant, f'{{job="{job}"}}', len(batch))
    time.sleep(1)
    got = loki.entries(tenant, f'{{job="{job}"}}', START, END)
    assert len(got) == len(batch)
    assert len({(ts, line) for _, ts, line in got}) == len(batch)


def test_a_tiny_ingestion_rate_gives_real_429s_and_retrying_loses_nothing(loki):
    job = "rate"
    batch = parsed("redis-7.0/startup-shutdown.log", "redis-7.0/replication-master.log", job=job)
    s = sink(loki.url, "slow")
    errors: list[RetryableError] = []
    chunks = [batch[i:i + 8] for i in range(0, len(batch), 8)]
    for c in chunks:
        errors += send_until_delivered(s, c, timeout=90)
    assert errors and all("429" in str(e) for e in errors), errors[:3]
    got = wait_entries(loki, "slow", f'{{job="{job}"}}', len(batch))
    assert sorted(line for _, _, line in got) == sorted(se.raw.decode() for se in batch)


def test_a_line_over_max_line_size_is_a_real_400_the_batch_rejected_the_rest_written(loki):
    job = "linesize"
    batch = parsed("redis-7.0/startup-shutdown.log", job=job)[:10]
    big = dict(batch[4].event, message="x" * 5000)
    batch[4] = SpooledEvent(5, big, dumps(big))
    d = send(sink(loki.url, "small"), batch)
    assert sorted(i for i, _ in d.rejected) == list(range(10)), "the whole batch goes to the dead-letter file"
    assert "Max entry size" in d.rejected[4][1] and "HTTP 400" in d.rejected[4][1]
    got = wait_entries(loki, "small", f'{{job="{job}"}}', 9)
    assert sorted(line for _, _, line in got) == sorted(se.raw.decode() for k, se in enumerate(batch) if k != 4)


def test_too_many_labels_is_a_real_400_and_rejected(loki):
    batch = parsed("redis-7.0/security.log", job="labels")[:5]
    for se in batch:
        se.event["labels"].update(env="prod", dc="eu")
    batch = [SpooledEvent(se.seq, se.event, dumps(se.event)) for se in batch]
    d = send(sink(loki.url, "small"), batch)
    assert len(d.rejected) == 5 and "label names" in d.rejected[0][1]
    assert loki.entries("small", '{job="labels"}', START, END) == []


def test_fifteen_labels_the_sinks_cap_are_accepted_by_the_real_server(loki):
    batch = parsed("redis-7.0/security.log", job="many")[:5]
    for se in batch:
        se.event["labels"].update({f"l{k}": "v" for k in range(13)})
    batch = [SpooledEvent(se.seq, se.event, dumps(se.event)) for se in batch]
    assert send(sink(loki.url, "many"), batch).rejected == []
    assert len(wait_entries(loki, "many", '{job="many"}', 5)) == 5


def test_the_tenant_is_sent_as_x_scope_orgid_and_invisible_to_another_tenant(loki):
    batch = parsed("redis-7.0/misc.log", job="tenant")
    assert send(sink(loki.url, "team-a"), batch).rejected == []
    assert len(wait_entries(loki, "team-a", '{job="tenant"}', len(batch))) == len(batch)
    assert loki.entries("team-b", '{job="tenant"}', START, END) == []
    with pytest.raises(RetryableError, match="401"):  # auth_enabled: no tenant, no write
        send(sink(loki.url, None), batch)


def test_a_paused_loki_times_out_retryably_and_nothing_is_lost_after_it_resumes(loki):
    batch = parsed("redis-7.0/bgsave-aof.log", job="paused")
    s = sink(loki.url, "paused")
    loki.pause()
    try:
        with pytest.raises(RetryableError):
            send(s, batch[:20])
    finally:
        loki.resume()
    send_until_delivered(s, batch[:20])
    send_until_delivered(s, batch[20:])
    got = wait_entries(loki, "paused", '{job="paused"}', len(batch))
    assert sorted(line for _, _, line in got) == sorted(se.raw.decode() for se in batch)


def test_a_killed_and_restarted_loki_keeps_what_it_acknowledged_and_takes_the_rest(loki):
    """Restarts the session Loki in its own dir on its own ports: its WAL keeps every other
    test's entries, and the ``loki`` fixture waits for /ready before the next test."""
    batch = parsed("redis-7.0/config-set-rewrite.log", job="restart")
    s = sink(loki.url, "restart")
    half = len(batch) // 2
    assert send(s, batch[:half]).rejected == []
    loki.kill()
    with pytest.raises(RetryableError):
        send(s, batch[half:])
    loki.start()
    send_until_delivered(s, batch[half:])
    got = wait_entries(loki, "restart", '{job="restart"}', len(batch))
    assert sorted(line for _, _, line in got) == sorted(se.raw.decode() for se in batch)


def relabelled(batch: list[SpooledEvent], labels: dict[str, str]) -> list[SpooledEvent]:
    out = []
    for se in batch:
        ev = dict(se.event, labels=labels)
        out.append(SpooledEvent(se.seq, ev, dumps(ev)))
    return out


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_label_names_loki_would_refuse_are_sanitised_and_odd_values_survive(loki, encoding):
    """Dots and a leading digit are not valid in a Loki label name; quotes, backslashes and
    slashes in a value must survive the protobuf selector text the real server parses."""
    tenant = f"names-{encoding}"
    labels = {"job": 'we"ird\\job', "instance": "unix:///var/run/redis.sock", "cluster.name": "prod-eu",
              "9lives": "x", "empty": ""}
    batch = relabelled(parsed("redis-7.0/security.log", job="x")[:5], labels)
    assert send(sink(loki.url, tenant, encoding=encoding), batch).rejected == []
    series = wait_for_series(loki, tenant, '{instance="unix:///var/run/redis.sock"}')
    assert series and {s["level"] for s in series} == {se.event["level"] for se in batch}
    for s in series:
        assert s["job"] == 'we"ird\\job' and s["cluster_name"] == "prod-eu" and s["_9lives"] == "x"
        assert "empty" not in s
    assert len(loki.entries(tenant, '{cluster_name="prod-eu"}', START, END)) == 5


def test_an_event_without_labels_gets_a_stream_the_real_server_takes(loki):
    batch = relabelled(parsed("redis-7.0/security.log", job="x")[:3], {})
    assert send(sink(loki.url, "nolabels", stream_labels=[]), batch).rejected == []
    # service_name: the real server derives it from job
    assert wait_for_series(loki, "nolabels", '{job="redis-shipper"}') == [{"job": "redis-shipper",
                                                                           "service_name": "redis-shipper"}]


def test_structured_metadata_off_sends_bare_entries_the_real_server_takes(loki):
    """``structured_metadata: false`` (for Loki 2): the entries arrive with their stream labels only."""
    batch = parsed("redis-7.0/security.log", job="bare")[:5]
    assert send(sink(loki.url, "bare", structured_metadata=False), batch).rejected == []
    got = wait_entries(loki, "bare", '{job="bare"}', 5)
    assert len(got) == 5
    # detected_level: structured metadata the real server adds itself from the line's level
    assert all(set(labels) <= ALLOWED_STREAM_LABELS | {"detected_level"} for labels, _, _ in got), got[0][0]


def wait_for_series(loki: Any, tenant: str, match: str, timeout: float = 30) -> list[dict[str, str]]:
    deadline = time.monotonic() + timeout
    while True:
        got = loki.series(tenant, match, START, END)
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.3)
