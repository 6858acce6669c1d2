"""The Elasticsearch sink against the contract-enforcing receiver (tests/receivers/elasticsearch.py)."""

from __future__ import annotations

import asyncio
import copy
import fnmatch
import json
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from parsers.events import dumps, event_id, make_event
from shipper.api import Delivery, RetryableError, SpooledEvent
from shipper.config import ElasticsearchSinkConfig
from shipper.sinks.elasticsearch import ElasticsearchSink, document_id, to_document

from receivers import free_port
from receivers.elasticsearch import ElasticsearchReceiver

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "elasticsearch" / "index-template.json"
OPENSEARCH_TEMPLATE = ROOT / "deploy" / "opensearch" / "index-template.json"
LABELS = {"job": "redis", "instance": "redis://10.0.0.5:6379", "env": "prod", "host": "node-7"}


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def log_event(i: int) -> dict[str, Any]:
    ev = make_event(timestamp=f"2026-11-25T17:20:{i % 60:02d}.{i:06d}Z", source="redis", category="persistence",
                    event="bgsave_started", level="notice", pid=4242, role="replica",
                    message="Background saving started by pid 4311", fields={"child_pid": 4311}, offset=i * 70)
    ev.update(file="/var/log/redis/redis-server.log", origin="file:ino-99", labels=dict(LABELS), seq=i,
              prev_hash="ab" * 32, stream="file:ino-99")
    ev["id"] = event_id("file:ino-99", str(i * 70))
    return ev


def slowlog_event(i: int) -> dict[str, Any]:
    ev = make_event(timestamp=f"2026-11-25T17:21:{i % 60:02d}.{i:06d}Z", source="slowlog", category="slowlog",
                    event="slow_command", level="notice", role="master", message="SET user:1 ...",
                    fields={"id": i, "duration_us": 15000 + i, "args": ["SET", "user:1", "x"],
                            "client_addr": "10.0.0.9:51234", "client_name": "api", "run_id": "f" * 40})
    ev.update(origin="redis:run1:slowlog", labels=dict(LABELS))
    ev["id"] = event_id("redis:run1:slowlog", str(i))
    return ev


def sentinel_event(i: int) -> dict[str, Any]:
    ev = make_event(timestamp=f"2026-11-25T17:22:{i % 60:02d}.000000Z", source="sentinel", category="failover",
                    event="switch_master", level="warning", pid=77, role="sentinel",
                    message="+switch-master mymaster 10.0.0.5 6379 10.0.0.6 6379",
                    fields={"master_name": "mymaster", "old": {"ip": "10.0.0.5", "port": 6379}})
    ev.update(origin="file:ino-5", offset=i, lines=1, labels=dict(LABELS))
    ev["id"] = event_id("file:ino-5", str(i))
    return ev


def spooled(evs: list[dict[str, Any]]) -> list[SpooledEvent]:
    return [SpooledEvent(i + 1, ev, dumps(ev)) for i, ev in enumerate(evs)]


def mixed(n: int) -> list[SpooledEvent]:
    makers = (log_event, slowlog_event, sentinel_event)
    return spooled([makers[i % 3](i) for i in range(n)])


def sink(url: str, **kw: Any) -> ElasticsearchSink:
    cfg = {"type": "elasticsearch", "url": url, "retry": {"initial": "5ms", "max": "2s", "timeout": "2s"}, **kw}
    return ElasticsearchSink(ElasticsearchSinkConfig(**cfg))


async def send(s: ElasticsearchSink, batch: list[SpooledEvent]) -> Delivery:
    try:
        return await s.send(batch)
    finally:
        await s.close()


def put_template(rx: ElasticsearchReceiver, path: Path = TEMPLATE, *, strict: bool = True) -> tuple[int, bytes]:
    """``PUT _index_template/redis-shipper`` with a template of deploy/ (made strict: every field the
    sink sends must then be mapped); the HTTP status and body."""
    import urllib.error
    import urllib.request

    t = json.loads(path.read_text())
    if strict:
        t["template"]["mappings"]["dynamic"] = "strict"
    req = urllib.request.Request(rx.url + "/_index_template/redis-shipper", data=json.dumps(t).encode(),
                                 method="PUT", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def install_template(rx: ElasticsearchReceiver, path: Path = TEMPLATE, *, strict: bool = True) -> None:
    status, body = put_template(rx, path, strict=strict)
    assert status == 200, body


@pytest.fixture
def es() -> Iterator[ElasticsearchReceiver]:
    with ElasticsearchReceiver(flavor="8") as rx:
        yield rx


def test_every_event_is_created_once_under_its_own_id(es: ElasticsearchReceiver) -> None:
    batch = mixed(30)
    assert run(send(sink(es.url), batch)) == Delivery()
    docs = {d["_id"]: d for d in es.documents("logs-redis.events-default")}
    assert set(docs) == {se.event["id"] for se in batch}
    (record,) = es.bulks
    assert record.path == "/logs-redis.events-default/_bulk"
    assert record.content_type == "application/x-ndjson" and record.content_encoding == "gzip"


def test_a_resent_batch_creates_nothing_new_and_counts_duplicates(es: ElasticsearchReceiver) -> None:
    batch = mixed(20)
    run(send(sink(es.url), batch))
    d = run(send(sink(es.url), batch))
    assert d == Delivery(duplicates=20)
    assert es.count() == 20


def test_only_the_items_answered_429_or_5xx_are_resent(es: ElasticsearchReceiver) -> None:
    batch = mixed(10)
    es.fail_items([None, 429, None, 503, None, 429, None, None, None, None])
    d = run(send(sink(es.url), batch))
    assert d == Delivery()
    assert [b.actions for b in es.bulks] == [10, 3]
    assert es.bulks[1].item_statuses == [201, 201, 201]
    assert es.count() == 10


def test_items_still_refused_when_the_budget_is_spent_raise_retryable_then_resend_dedups(
    es: ElasticsearchReceiver,
) -> None:
    batch = mixed(6)
    es.fail_items([None, 429, None, None, None, None] + [429] * 1000)
    with pytest.raises(RetryableError, match="1 of 6 items"):
        run(send(sink(es.url, retry={"initial": "5ms", "max": "60ms"}), batch))
    es.clear_faults()
    with es.lock:
        es._item_faults.clear()
    d = run(send(sink(es.url), batch))  # the worker resends the whole batch later
    assert d == Delivery(duplicates=5)
    assert es.count() == 6


def test_an_item_400_is_rejected_with_the_es_reason_and_the_rest_delivered(es: ElasticsearchReceiver) -> None:
    batch = mixed(5)
    es.fail_items([None, None, 400])
    d = run(send(sink(es.url), batch))
    assert [i for i, _ in d.rejected] == [2]
    assert "mapper_parsing_exception" in d.rejected[0][1]
    assert es.count() == 4


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_a_whole_request_429_or_5xx_is_retryable_with_retry_after(es: ElasticsearchReceiver, status: int) -> None:
    es.fail_next(1, status, retry_after=9)
    with pytest.raises(RetryableError) as ei:
        run(send(sink(es.url), mixed(3)))
    assert ei.value.status == status and ei.value.retry_after == 9.0
    assert es.count() == 0


def test_a_whole_request_400_rejects_the_batch() -> None:
    with ElasticsearchReceiver(flavor="8") as rx:
        rx.fail_next(1, 400, body="request body is malformed")
        d = run(send(sink(rx.url), mixed(3)))
        assert [i for i, _ in d.rejected] == [0, 1, 2] and "malformed" in d.rejected[0][1]


def test_wrong_credentials_are_a_slow_retry_and_api_key_or_basic_auth_work(tmp_path: Path) -> None:
    keyfile = tmp_path / "key"
    keyfile.write_text("c2VjcmV0LWtleQ==\n")
    with ElasticsearchReceiver(flavor="8", require_auth="ApiKey c2VjcmV0LWtleQ==") as rx:
        with pytest.raises(RetryableError) as ei:
            run(send(sink(rx.url), mixed(1)))
        assert ei.value.status == 401 and ei.value.retry_after >= 30
        assert run(send(sink(rx.url, api_key_file=str(keyfile)), mixed(1))) == Delivery()
    with ElasticsearchReceiver(flavor="8", require_auth="Basic ZWxhc3RpYzpwdw==") as rx:  # elastic:pw
        assert run(send(sink(rx.url, basic_auth={"username": "elastic", "password": "pw"}), mixed(1))) == Delivery()


@pytest.mark.parametrize("flavor", ["7.17", "8", "9", "opensearch"])
def test_the_same_requests_work_on_es7_es8_es9_and_opensearch(flavor: str) -> None:
    with ElasticsearchReceiver(flavor=flavor) as rx:
        batch = mixed(9)
        assert run(send(sink(rx.url), batch)) == Delivery()
        assert run(send(sink(rx.url), batch)) == Delivery(duplicates=9)
        assert rx.count("logs-redis.events-default") == 9


def test_a_plain_index_without_data_stream(es: ElasticsearchReceiver) -> None:
    assert run(send(sink(es.url, index="redis-events", data_stream=False), mixed(4))) == Delivery()
    docs = es.documents("redis-events")
    assert len(docs) == 4 and all("data_stream" not in d for d in docs)


def test_connection_refused_is_retryable() -> None:
    with pytest.raises(RetryableError):
        run(send(sink(f"http://127.0.0.1:{free_port()}"), mixed(1)))


# ---------------------------------------------------------------- documents and the index template
def test_documents_use_filebeat_redis_module_ecs_names() -> None:
    d = to_document(log_event(1))
    assert d["@timestamp"] == "2026-11-25T17:20:01.000001Z"
    assert d["message"] == "Background saving started by pid 4311"
    assert d["log"] == {"level": "notice", "file": {"path": "/var/log/redis/redis-server.log"}, "offset": 70}
    assert d["process"] == {"pid": 4242}
    assert d["redis"] == {"log": {"role": "replica"}}
    assert d["event"]["dataset"] == "redis.log" and d["event"]["action"] == "bgsave_started"
    assert d["service"] == {"type": "redis", "address": "redis://10.0.0.5:6379"}
    assert d["host"] == {"name": "node-7"} and d["labels"]["env"] == "prod"
    s = to_document(slowlog_event(3))
    assert s["event"]["dataset"] == "redis.slowlog"
    assert s["redis"]["slowlog"] == {"id": 3, "duration": {"us": 15003}, "cmd": "SET", "key": "user:1",
                                     "args": ["x"], "role": "master", "clientAddr": "10.0.0.9:51234",
                                     "clientName": "api"}
    assert s["redis_shipper"]["fields"]["run_id"] == "f" * 40
    assert d["event"]["sequence"] == 1 and d["redis_shipper"]["stream"] == "file:ino-99"


def test_event_original_holds_the_canonical_bytes_and_the_audit_reader_gets_them_back(
    es: ElasticsearchReceiver,
) -> None:
    from shipper.audit.readers import read_elasticsearch

    batch = mixed(25)
    run(send(sink(es.url), batch))

    async def read_all() -> list[bytes]:
        cfg = ElasticsearchSinkConfig(type="elasticsearch", url=es.url)
        return [line async for line, _ in read_elasticsearch(cfg, page=7)]

    got = run(read_all())
    assert sorted(got) == sorted(se.raw for se in batch)


def test_an_event_without_id_gets_a_content_hash_so_a_resend_still_dedups(es: ElasticsearchReceiver) -> None:
    ev = log_event(1)
    del ev["id"]
    batch = spooled([ev])
    assert document_id(batch[0]) == document_id(spooled([copy.deepcopy(ev)])[0])
    run(send(sink(es.url), batch))
    assert run(send(sink(es.url), batch)) == Delivery(duplicates=1)


def _leaf_paths(doc: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for k, v in doc.items():
        if isinstance(v, dict) and v:
            yield from _leaf_paths(v, f"{prefix}{k}.")
        else:
            yield prefix + k, v


def _mapping_for(mappings: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: dict[str, Any] = mappings
    parts = path.split(".")
    for i, part in enumerate(parts):
        props = node.get("properties", {})
        if part not in props:
            return None
        node = props[part]
        if node.get("type") == "flattened" or (node.get("dynamic") is True and i < len(parts) - 1):
            return node
    return node


def test_the_index_template_parses_targets_the_default_data_stream_and_maps_every_emitted_field() -> None:
    t = json.loads(TEMPLATE.read_text())
    assert "data_stream" in t and t["priority"] > 100  # beats the built-in logs-*-* template
    assert any(fnmatch.fnmatchcase("logs-redis.events-default", p) for p in t["index_patterns"])
    mappings = t["template"]["mappings"]
    dyn = [next(iter(x.values())) for x in mappings.get("dynamic_templates", [])]
    s = sink("http://es:9200")
    unmapped = set()
    for se in mixed(9):
        doc = orjson.loads(s.item_lines([se])[0].split(b"\n")[1])
        for path, _ in _leaf_paths(doc):
            if _mapping_for(mappings, path) is None and not any(
                    fnmatch.fnmatchcase(path, d.get("path_match", "")) for d in dyn):
                unmapped.add(path)
    assert unmapped == set()


def opensearch_types(template: dict[str, Any]) -> dict[str, Any]:
    """The Elasticsearch template as OpenSearch 2.7+ maps it: ``flattened`` is Elastic's, OpenSearch
    has ``flat_object`` (2.7+, no mapping parameters); ``constant_keyword`` only exists from 2.14."""
    t = copy.deepcopy(template)

    def fix(node: dict[str, Any]) -> None:
        for name, child in (node.get("properties") or {}).items():
            if child.get("type") == "flattened":
                node["properties"][name] = {"type": "flat_object"}
            elif child.get("type") == "constant_keyword":
                child["type"] = "keyword"
            else:
                fix(child)

    fix(t["template"]["mappings"])
    return t


def test_the_opensearch_template_is_the_elasticsearch_one_with_opensearch_field_types() -> None:
    es_t, os_t = json.loads(TEMPLATE.read_text()), json.loads(OPENSEARCH_TEMPLATE.read_text())
    assert "OpenSearch 2.7+" in os_t["_meta"]["description"]
    for t in (es_t, os_t):
        del t["_meta"]["description"]
    assert os_t == opensearch_types(es_t)  # the two never drift apart: only the field types differ
    assert "flattened" not in json.dumps(os_t) and "flat_object" in json.dumps(os_t)


def test_opensearch_refuses_the_elasticsearch_template_and_its_own_maps_every_document() -> None:
    with ElasticsearchReceiver(flavor="opensearch") as rx:
        status, body = put_template(rx, TEMPLATE)
        assert status == 400 and b"mapper_parsing_exception" in body
        assert b"No handler for type [flattened] declared on field [redis_shipper.fields]" in body
        install_template(rx, OPENSEARCH_TEMPLATE, strict=True)
        assert run(send(sink(rx.url), mixed(30))) == Delivery()
        assert rx.count("logs-redis.events-default") == 30


def test_a_strict_copy_of_the_template_accepts_every_document_the_sink_sends(es: ElasticsearchReceiver) -> None:
    install_template(es, strict=True)
    d = run(send(sink(es.url), mixed(30)))
    assert d == Delivery()
    assert es.count("logs-redis.events-default") == 30
    # and the receiver does enforce it: a field the template does not know is refused
    bad = log_event(99)
    s = sink(es.url)
    s.item_lines = lambda batch: [  # type: ignore[method-assign]
        b'{"create":{"_id":"x"}}\n' + orjson.dumps({**to_document(bad), "surprise": 1}) + b"\n"]
    d = run(send(s, spooled([bad])))
    assert len(d.rejected) == 1 and "strict_dynamic_mapping_exception" in d.rejected[0][1]
