"""The Loki sink against the contract-enforcing receiver (tests/receivers/loki.py)."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import ssl
import subprocess
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from parsers.events import dumps, event_id, make_event
from shipper.api import Delivery, RetryableError, SpooledEvent
from shipper.config import LokiSinkConfig
from shipper.sinks.http import parse_retry_after, redact_url
from shipper.sinks.loki import LokiSink, sanitize_label_name, timestamp_ns

from receivers import free_port
from receivers.loki import LokiReceiver

#: messages of a Redis 7 server's log (format: see /work/shared/reference/redis-log-formats.md)
MESSAGES = [
    ("startup", "server_started", "notice", "Redis version=7.0.15, bits=64, commit=00000000, modified=0, pid=4242"),
    ("startup", "ready", "notice", "Ready to accept connections tcp"),
    ("persistence", "bgsave_started", "notice", "Background saving started by pid 4311"),
    ("persistence", "bgsave_done", "notice", "Background saving terminated with success"),
    ("replication", "sync_done", "notice", "MASTER <-> REPLICA sync: Finished with success"),
    ("replication", "master_link_lost", "warning", "Connection with master lost."),
    ("memory", "overcommit_warning", "warning", "WARNING Memory overcommit must be enabled!"),
]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def events(n: int, *, start: str = "2026-11-25T17:20:", labels: dict[str, str] | None = None,
           origin: str = "file:inode-1234") -> list[SpooledEvent]:
    out = []
    for i in range(n):
        cat, name, level, msg = MESSAGES[i % len(MESSAGES)]
        ev = make_event(
            timestamp=f"{start}{(i // 1000) % 60:02d}.{i % 1000:03d}{i % 997:03d}Z", source="redis", category=cat,
            event=name, level=level, pid=4242, role="master", message=msg, offset=i * 80,
        )
        ev["file"] = "/var/log/redis/redis-server.log"
        ev["origin"] = origin
        ev["id"] = event_id(origin, str(i * 80))
        ev["labels"] = dict(labels if labels is not None else {"job": "redis", "instance": "redis://10.0.0.5:6379"})
        out.append(SpooledEvent(i + 1, ev, dumps(ev)))
    return out


def sink(url: str, **kw: Any) -> LokiSink:
    cfg = {"type": "loki", "url": url, "retry": {"timeout": "2s"}, **kw}
    return LokiSink(LokiSinkConfig(**cfg))


async def send(s: LokiSink, batch: list[SpooledEvent]) -> Delivery:
    try:
        return await s.send(batch)
    finally:
        await s.close()


@pytest.fixture
def loki():
    with LokiReceiver() as rx:
        yield rx


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_every_event_arrives_once_with_its_own_timestamp_and_canonical_line(loki: LokiReceiver, encoding: str) -> None:
    batch = events(300)
    d = run(send(sink(loki.url, encoding=encoding), batch))
    assert d == Delivery()
    got = {e.line: e.ts for e in loki.entries()}
    assert len(got) == 300
    for se in batch:
        assert got[se.raw.decode()] == timestamp_ns(se.event["timestamp"])
    assert loki.pushes[0].content_type == ("application/json" if encoding == "json" else "application/x-protobuf")
    assert loki.pushes[0].content_encoding == ("gzip" if encoding == "json" else "")


def test_both_encodings_produce_the_same_entries_so_switching_encoding_does_not_duplicate(loki: LokiReceiver) -> None:
    batch = events(100)
    run(send(sink(loki.url, encoding="json"), batch))
    run(send(sink(loki.url, encoding="protobuf"), batch))
    assert loki.count() == 100
    assert loki.duplicates_dropped == 100


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_a_replayed_batch_is_byte_identical_and_dropped_as_duplicate(loki: LokiReceiver, encoding: str) -> None:
    batch = events(200)
    run(send(sink(loki.url, encoding=encoding), batch))
    # a crash after the push but before the ack: a NEW process re-reads the same spool rows
    replay = [SpooledEvent(se.seq, dict(se.event), bytes(se.raw)) for se in batch]
    run(send(sink(loki.url, encoding=encoding), replay))
    assert loki.pushes[0].body_digest == loki.pushes[1].body_digest
    assert loki.count() == 200 and loki.duplicates_dropped == 200


def test_entries_are_sorted_by_time_within_each_stream_even_when_the_batch_is_not() -> None:
    batch = events(200)
    random.Random(7).shuffle(batch)
    with LokiReceiver(ordered=True) as rx:  # strict ordering: an unsorted push would be refused
        d = run(send(sink(rx.url), batch))
        assert d == Delivery()
        assert rx.count() == 200
        for push in rx.pushes:
            for _, entries in push.streams:
                assert [e.ts for e in entries] == sorted(e.ts for e in entries)


def test_stream_labels_are_the_pipeline_labels_plus_source_and_level(loki: LokiReceiver) -> None:
    run(send(sink(loki.url), events(14)))
    labels = sorted(loki.stream_labels(), key=lambda d: d["level"])
    assert labels == [
        {"instance": "redis://10.0.0.5:6379", "job": "redis", "level": "notice", "source": "redis"},
        {"instance": "redis://10.0.0.5:6379", "job": "redis", "level": "warning", "source": "redis"},
    ]


def test_high_cardinality_keys_go_to_structured_metadata_not_labels(loki: LokiReceiver) -> None:
    batch = events(3)
    run(send(sink(loki.url), batch))
    for e in loki.entries():
        md = e.md
        assert set(md) == {"id", "origin", "file", "offset", "pid", "role", "category", "event"}
        assert md["pid"] == "4242" and md["file"] == "/var/log/redis/redis-server.log"
    for labels in loki.stream_labels():
        assert not {"id", "origin", "offset", "pid", "file"} & set(labels)


def test_the_audit_reader_gets_every_line_back_byte_for_byte_through_query_range(loki: LokiReceiver) -> None:
    from shipper.audit.readers import read_loki

    batch = events(120)
    run(send(sink(loki.url), batch))

    async def read_all() -> list[bytes]:
        cfg = LokiSinkConfig(type="loki", url=loki.url)
        start = timestamp_ns("2026-11-25T17:00:00.000000Z")
        return [line async for line, _ in read_loki(cfg, selector='{job="redis"}', start_ns=start,
                                                      end_ns=start + 3600 * 10**9, limit=50)]

    assert sorted(run(read_all())) == sorted(se.raw for se in batch)


def test_structured_metadata_can_be_turned_off_for_loki_2(loki: LokiReceiver) -> None:
    run(send(sink(loki.url, structured_metadata=False), events(5)))
    assert loki.count() == 5
    assert all(e.metadata == () for e in loki.entries())


def test_label_names_are_sanitised_and_capped_at_15_with_the_overflow_in_metadata(loki: LokiReceiver) -> None:
    labels = {f"k{i:02d}": "v" for i in range(14)}
    labels.update({"cluster.name": "prod-eu", "9lives": "x", "empty": ""})
    run(send(sink(loki.url), events(2, labels=labels)))
    (got,) = loki.stream_labels()
    assert len(got) == 15
    assert got["cluster_name"] == "prod-eu" and got["_9lives"] == "x" and "empty" not in got
    # 14 k-labels + cluster_name + _9lives = 16: the last by name order overflows; source, level too
    overflow = {"k13", "level", "source"}
    assert not overflow & set(got)
    for e in loki.entries():
        assert overflow <= set(e.md)
    assert sanitize_label_name("a-b.c/d") == "a_b_c_d"


def test_an_event_without_labels_still_gets_a_stream(loki: LokiReceiver) -> None:
    run(send(sink(loki.url, stream_labels=[]), events(2, labels={})))
    assert loki.stream_labels() == [{"job": "redis-shipper"}]


def test_label_values_with_quotes_and_backslashes_survive_the_protobuf_selector(loki: LokiReceiver) -> None:
    labels = {"job": 'we"ird\\job', "instance": "unix:///var/run/redis.sock"}
    run(send(sink(loki.url, encoding="protobuf"), events(2, labels=labels)))
    (got,) = loki.stream_labels()
    assert got["job"] == 'we"ird\\job' and got["instance"] == "unix:///var/run/redis.sock"


def test_an_event_without_a_usable_timestamp_is_rejected_alone(loki: LokiReceiver) -> None:
    batch = events(4)
    bad = dict(batch[2].event, timestamp="25 Nov 2026 17:20:49.123")
    batch[2] = SpooledEvent(batch[2].seq, bad, dumps(bad))
    d = run(send(sink(loki.url), batch))
    assert [i for i, _ in d.rejected] == [2] and "timestamp" in d.rejected[0][1]
    assert loki.count() == 3


def test_a_400_rejects_the_whole_batch_with_lokis_reason(loki: LokiReceiver) -> None:
    # a real 400: one entry is more than 1 h behind the newest entry Loki has in its stream
    run(send(sink(loki.url), events(3)))
    batch = events(3, start="2026-11-25T17:21:")
    old = dict(batch[1].event, timestamp="2026-11-25T15:00:00.000000Z")
    batch[1] = SpooledEvent(2, old, dumps(old))
    d = run(send(sink(loki.url), batch))
    assert [i for i, _ in d.rejected] == [0, 1, 2]
    assert all("too far behind" in r for _, r in d.rejected)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_429_and_5xx_raise_retryable_and_honour_retry_after_seconds(loki: LokiReceiver, status: int) -> None:
    loki.fail_next(1, status, retry_after=4)
    with pytest.raises(RetryableError) as ei:
        run(send(sink(loki.url), events(3)))
    assert ei.value.status == status and ei.value.retry_after == 4.0
    assert loki.count() == 0
    assert run(send(sink(loki.url), events(3))) == Delivery()  # the same batch, sent again, lands
    assert loki.count() == 3


def test_retry_after_as_an_http_date(loki: LokiReceiver) -> None:
    loki.fail_next(1, 429, retry_after=email.utils.formatdate(time.time() + 20, usegmt=True))
    with pytest.raises(RetryableError) as ei:
        run(send(sink(loki.url), events(1)))
    assert ei.value.retry_after is not None and 15 <= ei.value.retry_after <= 21
    assert parse_retry_after("garbage") is None and parse_retry_after("-5") == 0.0


def test_connection_refused_is_retryable() -> None:
    with pytest.raises(RetryableError, match="posting to"):
        run(send(sink(f"http://127.0.0.1:{free_port()}"), events(1)))


def test_a_hung_loki_times_out_as_retryable(loki: LokiReceiver) -> None:
    loki.delay_next(1, 1.0)
    with pytest.raises(RetryableError, match="timeout"):
        run(send(sink(loki.url, retry={"timeout": "300ms"}), events(1)))


def test_http_260_means_discarded_and_is_dead_lettered_not_acknowledged(loki: LokiReceiver) -> None:
    loki.fail_next(1, 260)
    d = run(send(sink(loki.url), events(3)))
    assert [i for i, _ in d.rejected] == [0, 1, 2] and "260" in d.rejected[0][1]


def test_missing_tenant_is_a_slow_retry_not_a_dead_letter() -> None:
    with LokiReceiver(require_tenant=True) as rx:
        with pytest.raises(RetryableError) as ei:
            run(send(sink(rx.url), events(1)))
        assert ei.value.status == 401 and ei.value.retry_after >= 30
        assert run(send(sink(rx.url, tenant="ops"), events(1))) == Delivery()
        assert rx.tenants() == {"ops"}


def test_basic_auth_password_from_file_is_sent_and_never_logged(
    loki: LokiReceiver, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cr3t-pw\n")
    caplog.set_level(logging.DEBUG)
    run(send(sink(loki.url, basic_auth={"username": "u", "password_file": str(secret)}), events(1)))
    assert loki.pushes[-1].authorization == "Basic dTpzM2NyM3QtcHc="  # base64("u:s3cr3t-pw")
    loki.fail_next(1, 500, body="boom")
    with pytest.raises(RetryableError) as ei:
        run(send(sink(loki.url, basic_auth={"username": "u", "password_file": str(secret)}), events(1)))
    assert "s3cr3t" not in str(ei.value) and "s3cr3t" not in caplog.text


def test_bearer_token_from_env(loki: LokiReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOKI_TOKEN", "tok-123")
    run(send(sink(loki.url, bearer_token_env="LOKI_TOKEN"), events(1)))
    assert loki.pushes[-1].authorization == "Bearer tok-123"


def test_credentials_in_the_url_are_redacted_from_errors() -> None:
    url = f"http://user:hunter2@127.0.0.1:{free_port()}"
    with pytest.raises(RetryableError) as ei:
        run(send(sink(url), events(1)))
    assert "hunter2" not in str(ei.value)
    assert redact_url(url) == url.replace("user:hunter2@", "")


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl."""
    d = tmp_path
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", str(d / "ca.key"), "-out", str(d / "ca.pem"))
    exts = (("server", "subjectAltName=IP:127.0.0.1,DNS:loki.internal"), ("client", "extendedKeyUsage=clientAuth"))
    for name, ext in exts:
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", str(d / f"{name}.key"),
                 "-out", str(d / f"{name}.csr"))
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca.key"),
                 "-CAcreateserial", "-days", "2", "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.pem"))
    return d


def test_mutual_tls_with_ca_and_client_certificate(pki: Path) -> None:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem"))
    ctx.load_cert_chain(str(pki / "server.pem"), str(pki / "server.key"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    with LokiReceiver(ssl_context=ctx) as rx:
        tls = {"ca_file": str(pki / "ca.pem"), "cert_file": str(pki / "client.pem"),
               "key_file": str(pki / "client.key")}
        assert run(send(sink(rx.url, tls=tls), events(2))) == Delivery()
        assert rx.count() == 2
        with pytest.raises(RetryableError):  # no client certificate: the handshake fails
            run(send(sink(rx.url, tls={"ca_file": str(pki / "ca.pem")}), events(1)))
        with pytest.raises(RetryableError):  # an unknown CA: the server is not trusted
            run(send(sink(rx.url), events(1)))
        # server_name: the name checked in the server's certificate (and sent as SNI)
        assert run(send(sink(rx.url, tls={**tls, "server_name": "loki.internal"}), events(3))) == Delivery()
        with pytest.raises(RetryableError):
            run(send(sink(rx.url, tls={**tls, "server_name": "elsewhere.internal"}), events(1)))


def test_start_refuses_a_bad_tls_file_before_any_request(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate\n")
    with pytest.raises(ssl.SSLError):
        run(sink("https://loki:3100", tls={"ca_file": str(bad)}).start())


def test_start_leaves_the_http_client_to_the_first_request(loki: LokiReceiver) -> None:
    # aiohttp's ~0.16 s of imports happen while the agent already reads its sources
    code = (
        "import asyncio, sys\n"
        "from shipper.config import LokiSinkConfig\n"
        "from shipper.sinks.loki import LokiSink\n"
        f"s = LokiSink(LokiSinkConfig(type='loki', url={loki.url!r}))\n"
        "asyncio.run(s.start())\n"
        "print('aiohttp' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["False"]
    s = sink(loki.url)
    run(s.start())
    assert run(send(s, events(2))) == Delivery() and loki.count() == 2


def test_the_sink_exposes_the_configured_batch_bounds() -> None:
    s = sink("http://loki:3100", batch={"max_bytes": "512KiB", "max_wait": "250ms"})
    assert (s.max_batch_bytes, s.max_wait) == (512 * 1024, 0.25)
    assert s.url == "http://loki:3100/loki/api/v1/push"
    assert sink("http://gw/loki/api/v1/push").url == "http://gw/loki/api/v1/push"


def test_timestamp_ns_accepts_rfc3339_and_refuses_garbage() -> None:
    assert timestamp_ns("1970-01-01T00:00:01.000002Z") == 1_000_002_000
    assert timestamp_ns("1970-01-01T01:00:01.5+01:00") == 1_500_000_000
    for bad in ("2026-13-01T00:00:00.000000Z", "nope", "2026-11-25T17:20:49.12x456Z"):
        with pytest.raises(ValueError):
            timestamp_ns(bad)


def test_structured_metadata_holds_every_present_high_cardinality_field_as_a_string() -> None:
    """The compiled ``metadata_of`` (one straight-line function) keeps exactly the fields of
    METADATA_KEYS that are present and not empty, as strings, in that order."""
    from shipper.sinks.loki import METADATA_KEYS, _metadata_of

    cases: list[dict[str, Any]] = [
        {},
        {"id": "ab12", "offset": 0, "seq": 17, "pid": 4018, "role": "master", "category": "startup",
         "event": "ready", "file": "/var/log/redis/redis.log", "origin": "f00d", "stream": "h/redis"},
        {"id": "", "offset": None, "seq": 1, "pid": True, "role": "", "message": "not metadata"},
    ]
    for ev in cases:
        expected = {k: v if isinstance(v, str) else str(v) for k in METADATA_KEYS
                    if (v := ev.get(k)) is not None and v != ""}
        got = _metadata_of(ev.get)
        assert got == expected and list(got) == list(expected)
    assert _metadata_of(cases[2].get) == {"seq": "1", "pid": "True"}
