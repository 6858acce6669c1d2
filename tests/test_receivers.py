"""The test receivers refuse what real Loki / Elasticsearch refuse (and accept what they accept).

If a receiver were lenient, the sink tests built on it would prove nothing: these tests pin
each contract rule the receivers model (see tests/receivers/loki.py and elasticsearch.py for
where each rule comes from in the servers' sources and docs).
"""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from typing import Any

import cramjam
import orjson
import pytest
import snappy

from shipper.sinks._proto import push_pb

from receivers.elasticsearch import ElasticsearchReceiver
from receivers.loki import LokiReceiver, parse_selector

NS = 1_795_627_200_000_000_000  # 2026-11-25T12:00:00Z


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
         ) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def loki_json(streams: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"streams": streams})


def push_json(rx: LokiReceiver, streams: list[dict[str, Any]], **headers: str) -> tuple[int, bytes]:
    h = {"Content-Type": "application/json", **headers}
    status, _, body = http("POST", rx.url + "/loki/api/v1/push", loki_json(streams), h)
    return status, body


def proto_body(labels: str, entries: list[tuple[int, str]]) -> bytes:
    req = push_pb.PushRequest()
    s = req.streams.add(labels=labels)
    for ns, line in entries:
        e = s.entries.add(line=line)
        e.timestamp.seconds, e.timestamp.nanos = divmod(ns, 10**9)
    return req.SerializeToString()


def push_proto(rx: LokiReceiver, body: bytes, **headers: str) -> tuple[int, bytes]:
    h = {"Content-Type": "application/x-protobuf", **headers}
    status, _, resp = http("POST", rx.url + "/loki/api/v1/push", body, h)
    return status, resp


@pytest.fixture
def loki():
    with LokiReceiver() as rx:
        yield rx


# ------------------------------------------------------------------------------------ Loki
def test_loki_accepts_plain_and_gzip_and_deflate_json_with_204(loki: LokiReceiver) -> None:
    doc = loki_json([{"stream": {"job": "redis"}, "values": [[str(NS), "a"]]}])
    assert http("POST", loki.url + "/loki/api/v1/push", doc, {"Content-Type": "application/json"})[0] == 204
    gz = gzip.compress(loki_json([{"stream": {"job": "redis"}, "values": [[str(NS + 1), "b"]]}]))
    status, _, body = http("POST", loki.url + "/loki/api/v1/push", gz,
                           {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert (status, body) == (204, b"")
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    df = co.compress(loki_json([{"stream": {"job": "redis"}, "values": [[str(NS + 2), "c"]]}])) + co.flush()
    assert http("POST", loki.url + "/loki/api/v1/push", df,
                {"Content-Type": "application/json", "Content-Encoding": "deflate"})[0] == 204
    assert [e.line for e in loki.entries()] == ["a", "b", "c"]


def test_loki_refuses_zstd_content_encoding(loki: LokiReceiver) -> None:
    status, _, body = http("POST", loki.url + "/loki/api/v1/push", b"x",
                           {"Content-Type": "application/json", "Content-Encoding": "zstd"})
    assert status == 400 and b'Content-Encoding "zstd" not supported' in body


def test_loki_protobuf_must_be_block_snappy_not_framed_or_plain(loki: LokiReceiver) -> None:
    raw = proto_body('{job="redis"}', [(NS, "line")])
    assert push_proto(loki, bytes(cramjam.snappy.compress(raw)))[0] == 400  # framed format
    assert push_proto(loki, raw)[0] == 400  # not compressed at all
    assert loki.count() == 0
    assert push_proto(loki, snappy.compress(raw))[0] == 204
    # Content-Encoding: snappy is tolerated (ignored) like Loki does (#3407)
    raw2 = proto_body('{job="redis"}', [(NS + 1, "line2")])
    assert push_proto(loki, snappy.compress(raw2), **{"Content-Encoding": "snappy"})[0] == 204
    assert [e.line for e in loki.entries()] == ["line", "line2"]


def test_loki_without_content_type_expects_protobuf(loki: LokiReceiver) -> None:
    body = snappy.compress(proto_body('{job="redis"}', [(NS, "x")]))
    status, _, _ = http("POST", loki.url + "/loki/api/v1/push", body, {"Content-Type": ""})
    assert status == 204


@pytest.mark.parametrize("labels", [
    "{job=redis}",               # value not quoted
    'job="redis"',               # no braces
    '{job!="redis"}',            # not an equality matcher
    '{job="redis",}',            # trailing comma
    '{1job="redis"}',            # name starts with a digit
    '{job.name="redis"}',        # dot in a name
    "{}",                        # no labels at all
    '{job="redis", job="x"}',    # duplicate name
])
def test_loki_refuses_bad_protobuf_stream_labels(loki: LokiReceiver, labels: str) -> None:
    status, body = push_proto(loki, snappy.compress(proto_body(labels, [(NS, "x")])))
    assert status == 400, body
    assert loki.count() == 0


def test_loki_accepts_escaped_label_values_and_unquotes_them(loki: LokiReceiver) -> None:
    labels = '{job="re\\"dis\\\\", path=`C:\\tmp`}'
    assert push_proto(loki, snappy.compress(proto_body(labels, [(NS, "x")])))[0] == 204
    assert loki.stream_labels() == [{"job": 're"dis\\', "path": "C:\\tmp"}]
    assert parse_selector('{a="\\u00e9\\n"}') == [("a", "=", "é\n")]


def test_loki_json_refuses_number_timestamps_and_non_string_label_values(loki: LokiReceiver) -> None:
    assert push_json(loki, [{"stream": {"job": "redis"}, "values": [[NS, "x"]]}])[0] == 400
    assert push_json(loki, [{"stream": {"port": 6379}, "values": [[str(NS), "x"]]}])[0] == 400
    assert push_json(loki, [{"stream": {"bad-name": "x"}, "values": [[str(NS), "x"]]}])[0] == 400
    assert loki.count() == 0


def test_loki_caps_label_names_at_15_not_counting_service_name(loki: LokiReceiver) -> None:
    fifteen = {f"l{i}": "v" for i in range(15)}
    assert push_json(loki, [{"stream": fifteen, "values": [[str(NS), "x"]]}])[0] == 204
    with_service = {**fifteen, "service_name": "redis"}
    assert push_json(loki, [{"stream": with_service, "values": [[str(NS), "y"]]}])[0] == 204
    sixteen = {**fifteen, "l15": "v"}
    status, body = push_json(loki, [{"stream": sixteen, "values": [[str(NS), "z"]]}])
    assert status == 400 and b"16 label names" in body


def test_loki_unordered_window_writes_valid_entries_and_lists_the_rejected(loki: LokiReceiver) -> None:
    hour = 3600 * 10**9
    values = [[str(NS), "newest"], [str(NS - hour // 2), "30 min older: inside the window"],
              [str(NS - 2 * hour), "2 h older: too far behind"]]
    status, body = push_json(loki, [{"stream": {"job": "redis"}, "values": values}])
    assert status == 400
    assert b"too far behind" in body and b"total ignored: 1 out of 3" in body
    assert [e.line for e in loki.entries()] == ["30 min older: inside the window", "newest"]


def test_loki_strict_ordering_option_refuses_older_entries() -> None:
    with LokiReceiver(ordered=True) as rx:
        status, body = push_json(rx, [{"stream": {"job": "redis"},
                                       "values": [[str(NS), "a"], [str(NS), "same ts ok"], [str(NS - 1), "older"]]}])
        assert status == 400 and b"out of order" in body
        assert [e.line for e in rx.entries()] == ["a", "same ts ok"]


def test_loki_drops_exact_duplicates_but_keeps_same_time_different_line_or_metadata(loki: LokiReceiver) -> None:
    v = [[str(NS), "x", {"offset": "1"}], [str(NS), "x", {"offset": "1"}], [str(NS), "x", {"offset": "2"}],
         [str(NS), "y"]]
    assert push_json(loki, [{"stream": {"job": "redis"}, "values": v}])[0] == 204
    assert push_json(loki, [{"stream": {"job": "redis"}, "values": v}])[0] == 204
    assert loki.count() == 3
    assert loki.duplicates_dropped == 5


def test_loki_counting_only_receiver_applies_the_same_rules_without_keeping_entries() -> None:
    v = [[str(NS), "x", {"offset": "1"}], [str(NS), "x", {"offset": "1"}], [str(NS), "x", {"offset": "2"}],
         [str(NS), "y"]]
    with LokiReceiver(keep_entries=False) as rx:
        assert push_json(rx, [{"stream": {"job": "redis"}, "values": v}])[0] == 204
        assert push_json(rx, [{"stream": {"job": "redis"}, "values": v}])[0] == 204
        assert rx.count() == 3 and rx.duplicates_dropped == 5  # exactly-once, as with kept entries
        assert rx.entries() == [] and [p.entries for p in rx.pushes] == [4, 4]
        status, body = push_json(rx, [{"stream": {"job": "redis"}, "values": [[str(NS - 2 * 3600 * 10**9), "old"]]}])
        assert status == 400 and b"too far behind" in body and rx.count() == 3
    with LokiReceiver(keep_entries=False, ordered=True) as rx:
        status, body = push_json(rx, [{"stream": {"job": "redis"}, "values": [[str(NS), "a"], [str(NS - 1), "older"]]}])
        assert status == 400 and b"out of order" in body and rx.count() == 1


def test_loki_with_auth_enabled_answers_401_without_tenant() -> None:
    with LokiReceiver(require_tenant=True) as rx:
        v = [{"stream": {"job": "redis"}, "values": [[str(NS), "x"]]}]
        status, body = push_json(rx, v)
        assert status == 401 and b"no org id" in body
        assert push_json(rx, v, **{"X-Scope-OrgID": "ops"})[0] == 204
        assert rx.tenants() == {"ops"}


def test_loki_fault_injection_answers_then_recovers(loki: LokiReceiver) -> None:
    loki.fail_next(2, 429, retry_after=3)
    v = [{"stream": {"job": "redis"}, "values": [[str(NS), "x"]]}]
    for _ in range(2):
        status, headers, _ = http("POST", loki.url + "/loki/api/v1/push", loki_json(v),
                                  {"Content-Type": "application/json"})
        assert status == 429 and headers["Retry-After"] == "3"
    assert push_json(loki, v)[0] == 204
    assert loki.count() == 1


def test_loki_refuses_too_many_structured_metadata_entries(loki: LokiReceiver) -> None:
    md = {f"k{i}": "v" for i in range(129)}
    status, body = push_json(loki, [{"stream": {"job": "redis"}, "values": [[str(NS), "x", md]]}])
    assert status == 400 and b"129 entries" in body


def test_loki_query_range_selects_streams_and_honours_limit_direction_and_range(loki: LokiReceiver) -> None:
    push_json(loki, [
        {"stream": {"job": "redis", "instance": "a"}, "values": [[str(NS + i), f"a{i}"] for i in range(5)]},
        {"stream": {"job": "redis", "instance": "b"}, "values": [[str(NS + i), f"b{i}"] for i in range(5)]},
    ])
    def q(**params: str) -> dict[str, Any]:
        status, _, body = http("GET", loki.url + "/loki/api/v1/query_range?" + urllib.parse.urlencode(params))
        assert status == 200, body
        return json.loads(body)
    common = {"start": str(NS), "end": str(NS + 100)}
    r = q(query='{instance="a"} | json', limit="3", direction="forward", **common)
    assert r["status"] == "success" and r["data"]["resultType"] == "streams"
    assert [v[1] for s in r["data"]["result"] for v in s["values"]] == ["a0", "a1", "a2"]
    r = q(query='{job="redis"}', limit="2", **common)  # backward by default: newest first
    assert sorted(v[1] for s in r["data"]["result"] for v in s["values"]) == ["a4", "b4"]
    r = q(query='{instance=~"a|b"}', start=str(NS + 3), end=str(NS + 4), limit="10")
    assert sorted(v[1] for s in r["data"]["result"] for v in s["values"]) == ["a3", "b3"]
    assert http("GET", loki.url + "/loki/api/v1/query_range?query=job")[0] == 400



def test_loki_query_range_defaults_to_the_last_hour(loki: LokiReceiver) -> None:
    now = time.time_ns()
    push_json(loki, [{"stream": {"job": "redis"}, "values": [[str(now - 2 * 3600 * 10**9), "old"], [str(now), "new"]]}])
    _, _, body = http("GET", loki.url + "/loki/api/v1/query_range?query=" + urllib.parse.quote('{job="redis"}'))
    assert [v[1] for s in json.loads(body)["data"]["result"] for v in s["values"]] == ["new"]


def test_loki_query_range_merges_structured_metadata_into_stream_labels(loki: LokiReceiver) -> None:
    push_json(loki, [{"stream": {"job": "redis"}, "values": [[str(NS), "x", {"id": "e1"}]]}])
    _, _, body = http("GET", loki.url + "/loki/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": '{job="redis"}', "start": str(NS), "end": str(NS + 1)}))
    assert json.loads(body)["data"]["result"] == [{"stream": {"id": "e1", "job": "redis"}, "values": [[str(NS), "x"]]}]


# ------------------------------------------------------------------------------------ Elasticsearch
def bulk(rx: ElasticsearchReceiver, body: bytes, path: str = "/_bulk", ctype: str = "application/x-ndjson",
         **headers: str) -> tuple[int, dict[str, Any]]:
    status, _, resp = http("POST", rx.url + path, body, {"Content-Type": ctype, **headers})
    return status, (json.loads(resp) if resp else {})


def ndjson(*objs: Any) -> bytes:
    return b"".join(orjson.dumps(o) + b"\n" for o in objs)


@pytest.fixture
def es():
    with ElasticsearchReceiver(flavor="8") as rx:
        yield rx


def test_es_bulk_requires_the_trailing_newline(es: ElasticsearchReceiver) -> None:
    body = ndjson({"create": {"_index": "idx", "_id": "1"}}, {"a": 1})[:-1]
    status, resp = bulk(es, body)
    assert status == 400
    assert resp["error"]["reason"] == "The bulk request must be terminated by a newline [\\n]"
    assert es.count() == 0


def test_es_bulk_refuses_empty_and_malformed_action_lines(es: ElasticsearchReceiver) -> None:
    assert bulk(es, b"")[0] == 400
    status, resp = bulk(es, ndjson({"upsert": {"_index": "idx"}}, {"a": 1}))
    assert status == 400 and "expected field [create], [delete], [index] or [update]" in resp["error"]["reason"]
    assert bulk(es, ndjson({"create": {"_id": "1"}}, {"a": 1}))[0] == 400  # index is missing


def test_es_create_with_id_is_201_then_409(es: ElasticsearchReceiver) -> None:
    body = ndjson({"create": {"_id": "e1"}}, {"@timestamp": "2026-11-25T12:00:00Z", "m": 1})
    status, resp = bulk(es, body, "/plain-index/_bulk")
    assert status == 200 and resp["errors"] is False and resp["items"][0]["create"]["status"] == 201
    status, resp = bulk(es, body, "/plain-index/_bulk")
    assert status == 200 and resp["errors"] is True
    item = resp["items"][0]["create"]
    assert item["status"] == 409 and item["error"]["type"] == "version_conflict_engine_exception"
    assert es.count("plain-index") == 1


def test_es_data_streams_take_only_create_and_need_a_timestamp(es: ElasticsearchReceiver) -> None:
    status, resp = bulk(es, ndjson(
        {"index": {"_id": "1"}}, {"@timestamp": "2026-11-25T12:00:00Z"},
        {"create": {"_id": "2"}}, {"message": "no timestamp"},
        {"create": {"_id": "3"}}, {"@timestamp": "2026-11-25T12:00:00Z"},
    ), "/logs-redis.events-default/_bulk")
    assert status == 200 and resp["errors"] is True
    s = [next(iter(i.values())) for i in resp["items"]]
    assert s[0]["status"] == 400 and "op_type of create" in s[0]["error"]["reason"]
    assert s[1]["status"] == 400 and "[@timestamp] is missing" in s[1]["error"]["reason"]
    assert s[2]["status"] == 201 and s[2]["_index"].startswith(".ds-logs-redis.events-default-")


def test_es7_items_carry_type_and_opensearch_has_no_builtin_logs_data_stream() -> None:
    with ElasticsearchReceiver(flavor="7.17") as rx:
        _, resp = bulk(rx, ndjson({"create": {"_id": "1"}}, {"@timestamp": "2026-11-25T12:00:00Z"}),
                       "/logs-redis.events-default/_bulk")
        assert resp["items"][0]["create"]["_type"] == "_doc"
    with ElasticsearchReceiver(flavor="opensearch") as rx:
        status, headers, body = http("GET", rx.url + "/")
        assert json.loads(body)["version"]["distribution"] == "opensearch"
        assert "X-elastic-product" not in headers
        _, resp = bulk(rx, ndjson({"index": {"_id": "1"}}, {"m": 1}), "/logs-redis.events-default/_bulk")
        assert resp["items"][0]["index"]["_index"] == "logs-redis.events-default"  # a plain index there


def test_es_compatibility_media_types_per_version() -> None:
    body = ndjson({"create": {"_id": "1"}}, {"@timestamp": "2026-11-25T12:00:00Z"})
    v9 = "application/vnd.elasticsearch+x-ndjson; compatible-with=9"
    v8 = "application/vnd.elasticsearch+x-ndjson; compatible-with=8"
    with ElasticsearchReceiver(flavor="8") as rx:
        status, resp = bulk(rx, body, "/i/_bulk", ctype=v9)
        assert status == 400 and resp["error"]["type"] == "media_type_header_exception"
        assert bulk(rx, body, "/i/_bulk", ctype=v8)[0] == 200
    with ElasticsearchReceiver(flavor="9") as rx:
        assert bulk(rx, body, "/i/_bulk", ctype=v8)[0] == 200
    for flavor in ("7.17", "opensearch"):
        with ElasticsearchReceiver(flavor=flavor) as rx:
            assert bulk(rx, body, "/i/_bulk", ctype=v8)[0] == 406
            assert bulk(rx, body, "/i/_bulk", ctype="text/plain")[0] == 406
            assert bulk(rx, body, "/i/_bulk")[0] == 200


def test_es_root_reports_the_configured_version() -> None:
    for flavor, number in (("7.17", "7.17."), ("8", "8."), ("9", "9.")):
        with ElasticsearchReceiver(flavor=flavor) as rx:
            status, headers, body = http("GET", rx.url + "/")
            assert status == 200 and headers["X-elastic-product"] == "Elasticsearch"
            assert json.loads(body)["version"]["number"].startswith(number)


def test_es_per_item_faults_inside_http_200(es: ElasticsearchReceiver) -> None:
    es.fail_items([None, 429, 400, 503])
    body = ndjson(*[x for i in range(4) for x in ({"create": {"_id": str(i)}}, {"n": i})])
    status, resp = bulk(es, body, "/i/_bulk")
    assert status == 200 and resp["errors"] is True
    assert [i["create"]["status"] for i in resp["items"]] == [201, 429, 400, 503]
    assert resp["items"][1]["create"]["error"]["type"] == "es_rejected_execution_exception"
    assert es.count("i") == 1


def test_es_whole_request_faults_with_retry_after(es: ElasticsearchReceiver) -> None:
    es.fail_next(1, 429, retry_after=7)
    status, headers, body = http("POST", es.url + "/_bulk", ndjson({"create": {"_index": "i"}}, {}),
                                 {"Content-Type": "application/x-ndjson"})
    assert status == 429 and headers["Retry-After"] == "7"
    assert json.loads(body)["error"]["type"] == "es_rejected_execution_exception"


def test_es_gzip_bodies_are_accepted(es: ElasticsearchReceiver) -> None:
    body = gzip.compress(ndjson({"create": {"_id": "1"}}, {"a": 1}))
    assert bulk(es, body, "/i/_bulk", **{"Content-Encoding": "gzip"})[1]["errors"] is False


def test_es_strict_template_refuses_unmapped_fields_and_wrong_types(es: ElasticsearchReceiver) -> None:
    tmpl = {"index_patterns": ["strict-*"], "priority": 300,
            "template": {"mappings": {"dynamic": "strict", "properties": {
                "@timestamp": {"type": "date"}, "process": {"properties": {"pid": {"type": "long"}}}}}}}
    put = http("PUT", es.url + "/_index_template/t", orjson.dumps(tmpl), {"Content-Type": "application/json"})
    assert put[0] == 200
    _, resp = bulk(es, ndjson(
        {"create": {"_id": "1"}}, {"@timestamp": "2026-11-25T12:00:00Z", "process": {"pid": 12}},
        {"create": {"_id": "2"}}, {"@timestamp": "2026-11-25T12:00:00Z", "unmapped": 1},
        {"create": {"_id": "3"}}, {"@timestamp": "2026-11-25T12:00:00Z", "process.pid": "twelve"},
    ), "/strict-x/_bulk")
    st = [i["create"] for i in resp["items"]]
    assert [s["status"] for s in st] == [201, 400, 400]
    assert st[1]["error"]["type"] == "strict_dynamic_mapping_exception"
    assert st[2]["error"]["type"] == "document_parsing_exception"


def test_es_and_opensearch_each_refuse_the_other_ones_object_field_type() -> None:
    def put(rx: ElasticsearchReceiver, field: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        mappings = {"properties": {"o": {"properties": {"f": field}}}}
        tmpl = {"index_patterns": ["x-*"], "template": {"mappings": mappings}}
        status, _, body = http("PUT", rx.url + "/_index_template/t", orjson.dumps(tmpl),
                               {"Content-Type": "application/json"})
        return status, orjson.loads(body)

    with ElasticsearchReceiver(flavor="7.17") as es, ElasticsearchReceiver(flavor="opensearch") as os_:
        status, body = put(es, {"type": "flat_object"})
        assert status == 400 and body["error"]["type"] == "mapper_parsing_exception"
        assert body["error"]["reason"] == "No handler for type [flat_object] declared on field [o.f]"
        assert put(es, {"type": "flattened", "ignore_above": 8191})[0] == 200
        status, body = put(os_, {"type": "flattened"})
        assert status == 400 and body["error"]["reason"] == "No handler for type [flattened] declared on field [o.f]"
        status, body = put(os_, {"type": "flat_object", "ignore_above": 8191})  # flat_object takes no parameters
        assert status == 400 and "has unsupported parameters" in body["error"]["reason"]
        assert put(os_, {"type": "flat_object"})[0] == 200
        status, _, got = http("GET", os_.url + "/_index_template/t")
        assert status == 200 and orjson.loads(got)["index_templates"][0]["name"] == "t"
        assert http("GET", os_.url + "/_index_template/nope")[0] == 404


def test_es_search_filters_sorts_and_pages_with_search_after(es: ElasticsearchReceiver) -> None:
    docs = [({"create": {"_id": f"d{i}"}},
             {"@timestamp": f"2026-11-25T12:00:{i:02d}.000000Z",
              "redis_shipper": {"source": "redis" if i % 2 else "slowlog"}, "n": i}) for i in range(10)]
    bulk(es, ndjson(*[x for pair in docs for x in pair]), "/logs-redis.events-default/_bulk")
    def search(q: dict[str, Any]) -> dict[str, Any]:
        status, _, body = http("POST", es.url + "/logs-redis.events-*/_search", orjson.dumps(q),
                               {"Content-Type": "application/json"})
        assert status == 200, body
        return json.loads(body)
    r = search({"query": {"term": {"redis_shipper.source": "redis"}}, "sort": [{"@timestamp": "asc"}], "size": 2})
    assert r["hits"]["total"]["value"] == 5
    assert [h["_source"]["n"] for h in r["hits"]["hits"]] == [1, 3]
    r2 = search({"query": {"term": {"redis_shipper.source": "redis"}}, "sort": [{"@timestamp": "asc"}], "size": 2,
                 "search_after": r["hits"]["hits"][-1]["sort"]})
    assert [h["_source"]["n"] for h in r2["hits"]["hits"]] == [5, 7]
    r3 = search({"query": {"range": {"@timestamp": {"gte": "2026-11-25T12:00:08Z"}}},
                 "sort": [{"n": {"order": "desc"}}]})
    assert [h["_source"]["n"] for h in r3["hits"]["hits"]] == [9, 8]
    count_q = {"query": {"bool": {"filter": [{"term": {"redis_shipper.source": "slowlog"}}]}}}
    status, _, body = http("POST", es.url + "/logs-redis.events-default/_count", orjson.dumps(count_q),
                           {"Content-Type": "application/json"})
    assert status == 200 and json.loads(body)["count"] == 5
    assert http("POST", es.url + "/no-such-index/_search", b"{}", {"Content-Type": "application/json"})[0] == 404
