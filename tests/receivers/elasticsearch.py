"""An Elasticsearch (7.17 / 8.x / 9.x) or OpenSearch node, as far as a log shipper sees one.

Contract modelled (elastic.co bulk API reference, unchanged 7.x-9.x; elastic/elasticsearch
sources where cited):

* ``POST /_bulk`` and ``POST /<index>/_bulk``; ``Content-Type`` ``application/x-ndjson`` or
  ``application/json`` (ES 8/9 also accept ``application/vnd.elasticsearch+x-ndjson;
  compatible-with=N`` for N = major or major-1, else 400 ``media_type_header_exception``;
  ES 7.17 and OpenSearch answer 406 to that vendor type); ``Content-Encoding: gzip`` is accepted.
* NDJSON: "The bulk request must be terminated by a newline [\\n]" (400
  illegal_argument_exception); an action line is an object with one of create/index/update/
  delete; a malformed line is a 400 for the whole request; an empty body is 400
  "Validation Failed: 1: no requests added;". A missing index is 400 "index is missing".
* Per item, inside HTTP 200 with ``errors: true`` when any failed: ``create`` of an existing
  ``_id`` -> 409 version_conflict_engine_exception; ``create`` without ``_id`` gets a generated
  one; ``index`` overwrites (200 "updated"). Data streams (an index template with
  ``data_stream: {}`` matches the name; ES 7.9+ ships one for ``logs-*-*`` at priority 100,
  OpenSearch does not): only ``create`` ("only write ops with an op_type of create are allowed
  in data streams"), ``@timestamp`` required, ``_index`` in the answer is the backing index
  ``.ds-<name>-<yyyy.MM.dd>-000001``. ES 7 items also carry ``_type: _doc``.
* With index-template mappings installed (``PUT /_index_template/<name>``), documents are
  checked like ``dynamic: strict`` (unmapped field -> 400 strict_dynamic_mapping_exception) and
  by type (a string in a ``long`` -> 400 document_parsing_exception / mapper_parsing_exception
  on 7.x and OpenSearch), so a test proves every emitted field is mapped.
* Faults: whole request (``fail_next``: 429 es_rejected_execution_exception, 503...) and per
  item (``fail_items`` / ``fail_next_items``: 429, 400, 503 inside a 200).
* Read back: ``_search`` (match_all, term, terms, range, exists, bool filter/must/must_not;
  sort; size; from; search_after; date sort values as epoch millis) and ``_count``.
"""

from __future__ import annotations

import base64
import fnmatch
import gzip
import itertools
import os
import re
import ssl
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from . import Fault, ThreadedApp

FLAVORS = {
    "7.17": ("7.17.25", "elasticsearch"),
    "8": ("8.15.3", "elasticsearch"),
    "9": ("9.1.5", "elasticsearch"),
    "opensearch": ("2.17.1", "opensearch"),
}
_ES_ERRORS = {
    429: ("es_rejected_execution_exception",
          "rejected execution of coordinating operation [coordinating_and_primary_bytes=0, "
          "replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1, max_coordinating_and_primary_bytes=0]"),
    503: ("unavailable_shards_exception", "[logs][0] primary shard is not active Timeout: [1m]"),
    500: ("exception", "internal server error"),
    400: ("mapper_parsing_exception", "failed to parse field [process.pid] of type [long]"),
}
MAX_RESULT_WINDOW = 10000


#: field types both distributions map (the ones templates here use, and their common relatives)
_COMMON_TYPES = {"object", "nested", "keyword", "text", "match_only_text", "wildcard", "constant_keyword",
                 "long", "integer", "short", "byte", "unsigned_long", "double", "float", "half_float",
                 "scaled_float", "date", "date_nanos", "boolean", "ip", "binary", "alias", "token_count",
                 "geo_point", "geo_shape", "version"}
#: ``flattened`` is Elastic's (X-Pack, 7.3+); OpenSearch has ``flat_object`` instead (2.7+), which
#: takes no mapping parameters (its TypeParser reads none, so any is "unsupported")
_TYPES = {"elasticsearch": _COMMON_TYPES | {"flattened"}, "opensearch": _COMMON_TYPES | {"flat_object"}}
_NO_PARAMETERS = {"flat_object"}


def mapping_error(mappings: dict[str, Any] | None, distribution: str) -> str | None:
    """Why ``PUT _index_template`` would fail to parse these mappings on ``distribution``, or None
    (``mapper_parsing_exception`` texts as the servers word them)."""
    known = _TYPES[distribution]

    def check(node: dict[str, Any], path: str) -> str | None:
        ftype = node.get("type")
        if ftype is not None and ftype not in known:
            return f"No handler for type [{ftype}] declared on field [{path}]"
        if ftype in _NO_PARAMETERS:
            extra = sorted(k for k in node if k not in ("type", "properties"))
            if extra:
                params = ", ".join(f"{k} : {node[k]}" for k in extra)
                return f"Mapping definition for [{path}] has unsupported parameters:  [{params}]"
        for name, child in (node.get("properties") or {}).items():
            err = check(child, f"{path}.{name}" if path else name)
            if err:
                return err
        return None

    if not mappings:
        return None
    for entry in mappings.get("dynamic_templates") or []:
        for name, spec in entry.items():
            err = check(spec.get("mapping") or {}, name)
            if err:
                return err
    return check(mappings, "")


def es_error(status: int, etype: str, reason: str) -> dict[str, Any]:
    return {"error": {"root_cause": [{"type": etype, "reason": reason}], "type": etype, "reason": reason},
            "status": status}


def get_path(doc: dict[str, Any], path: str) -> Any:
    """A field by dotted path, through objects or literal dotted keys (as ES resolves them)."""
    if path in doc:
        return doc[path]
    head, _, rest = path.partition(".")
    while rest:
        if head in doc and isinstance(doc[head], dict):
            v = get_path(doc[head], rest)
            if v is not None:
                return v
        nxt, _, rest = rest.partition(".")
        head = f"{head}.{nxt}"
        if head in doc and not rest:
            return doc[head]
    return None


def _as_date_millis(v: Any) -> int | None:
    if isinstance(v, str) and re.match(r"^\d{4}-\d{2}-\d{2}", v):
        try:
            dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1000)
    return None


def _comparable(v: Any) -> Any:
    d = _as_date_millis(v)
    if d is not None:
        return (0, d)
    if isinstance(v, bool):
        return (1, int(v))
    if isinstance(v, int | float):
        return (0, v)
    return (2, str(v))


class BulkError(Exception):
    def __init__(self, status: int, etype: str, reason: str):
        super().__init__(reason)
        self.status, self.etype, self.reason = status, etype, reason


@dataclass
class Index:
    name: str
    data_stream: str | None = None
    mappings: dict[str, Any] | None = None
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq: dict[str, int] = field(default_factory=dict)


@dataclass
class BulkRecord:
    """One bulk request as it came (for tests: content type, encoding, per-item outcome)."""

    path: str
    content_type: str
    content_encoding: str
    status: int
    actions: int
    item_statuses: list[int] = field(default_factory=list)


class ElasticsearchReceiver(ThreadedApp):
    def __init__(
        self,
        port: int | None = None,
        *,
        flavor: str = "8",
        require_auth: str | None = None,
        builtin_logs_template: bool | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ):
        super().__init__(port, ssl_context=ssl_context)
        if flavor not in FLAVORS:
            raise ValueError(f"flavor must be one of {sorted(FLAVORS)}")
        self.flavor = flavor
        self.version, self.distribution = FLAVORS[flavor]
        self.major = int(self.version.split(".")[0]) if self.distribution == "elasticsearch" else 0
        self.require_auth = require_auth
        self.templates: dict[str, dict[str, Any]] = {}
        if builtin_logs_template is None:
            builtin_logs_template = self.distribution == "elasticsearch"
        if builtin_logs_template:
            self.templates["logs"] = {"index_patterns": ["logs-*-*"], "priority": 100, "data_stream": {}}
        self.indices: dict[str, Index] = {}
        self.data_streams: dict[str, str] = {}  # name -> backing index
        self.policies: dict[str, dict[str, Any]] = {}  # ILM (Elasticsearch) or ISM (OpenSearch) by name
        self._policy_seq: dict[str, int] = {}
        self.bulks: list[BulkRecord] = []
        self._item_faults: list[int | None] = []
        self._seq = itertools.count()

    # -- fault injection per item
    def fail_items(self, statuses: list[int | None]) -> None:
        """The next bulk items (in order, across requests) get these statuses; None = normal."""
        with self.lock:
            self._item_faults.extend(statuses)

    def fail_next_items(self, n: int, status: int) -> None:
        self.fail_items([status] * n)

    def fault_response(self, fault: Fault, headers: dict[str, str]) -> web.Response:
        etype, reason = _ES_ERRORS.get(fault.status, ("exception", fault.body or "injected"))
        return web.json_response(es_error(fault.status, etype, fault.body or reason), status=fault.status,
                                 headers=headers)

    # -- reading
    def documents(self, target: str = "*") -> list[dict[str, Any]]:
        with self.lock:
            return [dict(d, _id=i) for ix in self._resolve(target) for i, d in ix.docs.items()]

    def count(self, target: str = "*") -> int:
        with self.lock:
            return sum(len(ix.docs) for ix in self._resolve(target))

    # -- HTTP
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=100 << 20)
        app.router.add_get("/", self._root)
        app.router.add_post("/_bulk", self._bulk)
        app.router.add_put("/_bulk", self._bulk)
        app.router.add_post("/{index}/_bulk", self._bulk)
        app.router.add_put("/{index}/_bulk", self._bulk)
        app.router.add_put("/_index_template/{name}", self._put_template)
        app.router.add_get("/_index_template/{name}", self._get_template)
        app.router.add_put("/_ilm/policy/{name}", self._put_ilm)
        app.router.add_get("/_plugins/_ism/policies/{name}", self._get_ism)
        app.router.add_put("/_plugins/_ism/policies/{name}", self._put_ism)
        app.router.add_put("/_data_stream/{name}", self._put_data_stream)
        app.router.add_route("*", "/{index}/_search", self._search)
        app.router.add_route("*", "/{index}/_count", self._count)
        return app

    def _headers(self) -> dict[str, str]:
        return {"X-elastic-product": "Elasticsearch"} if self.distribution == "elasticsearch" else {}

    def _json(self, body: Any, status: int = 200) -> web.Response:
        return web.Response(body=orjson.dumps(body), status=status, content_type="application/json",
                            headers=self._headers())

    def _auth_error(self, request: web.Request) -> web.Response | None:
        if self.require_auth is None or request.headers.get("Authorization") == self.require_auth:
            return None
        return self._json(es_error(401, "security_exception", "missing authentication credentials for REST request"),
                          401)

    def _media_error(self, request: web.Request, *, ndjson: bool) -> web.Response | None:
        for header in ("Content-Type", "Accept"):
            value = request.headers.get(header, "")
            if not value:
                continue
            media = value.split(";")[0].strip().lower()
            m = re.search(r"compatible-with=(\d+)", value)
            if media.startswith("application/vnd.elasticsearch+"):
                if self.major < 8:
                    return self._not_acceptable(value)
                if not m or int(m.group(1)) not in (self.major, self.major - 1):
                    reason = (f"A compatible version is required on both Content-Type and Accept headers if either "
                              f"one has requested a compatible version. Accept version must be either version "
                              f"{self.major} or {self.major - 1}, but found {m.group(1) if m else None}")
                    return self._json(es_error(400, "media_type_header_exception", reason), 400)
                continue
            if header == "Content-Type":
                ok = ("application/x-ndjson", "application/json") if ndjson else ("application/json",)
                if media not in ok:
                    return self._not_acceptable(value)
        return None

    @staticmethod
    def _not_acceptable(value: str) -> web.Response:
        body = {"error": f"Content-Type header [{value}] is not supported", "status": 406}
        return web.Response(status=406, body=orjson.dumps(body), content_type="application/json")

    async def _root(self, request: web.Request) -> web.Response:
        err = self._auth_error(request)
        if err is not None:
            return err
        version: dict[str, Any] = {"number": self.version, "build_type": "docker", "lucene_version": "9.11.1"}
        if self.distribution == "opensearch":
            version = {"distribution": "opensearch", **version}
            tagline = "The OpenSearch Project: https://opensearch.org/"
        else:
            version["build_flavor"] = "default"
            tagline = "You Know, for Search"
        return self._json({"name": "node-1", "cluster_name": "test", "cluster_uuid": "x" * 22,
                           "version": version, "tagline": tagline})

    async def _put_template(self, request: web.Request) -> web.Response:
        try:
            body = orjson.loads(await request.read())
            patterns = body["index_patterns"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as e:
            return self._json(es_error(400, "x_content_parse_exception", f"bad template: {e}"), 400)
        mappings = (body.get("template") or {}).get("mappings")
        reason = mapping_error(mappings, self.distribution)
        if reason is not None:
            return self._json(es_error(400, "mapper_parsing_exception", reason), 400)
        with self.lock:
            self.templates[request.match_info["name"]] = {
                "index_patterns": patterns if isinstance(patterns, list) else [patterns],
                "priority": body.get("priority", 0),
                "data_stream": body.get("data_stream"),
                "mappings": mappings,
                "settings": (body.get("template") or {}).get("settings"),
            }
        return self._json({"acknowledged": True})

    async def _get_template(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        with self.lock:
            t = self.templates.get(name)
        if t is None:
            return self._json(es_error(404, "resource_not_found_exception",
                                       f"index template matching [{name}] not found"), 404)
        return self._json({"index_templates": [{"name": name, "index_template": {
            "index_patterns": t["index_patterns"], "priority": t["priority"],
            "template": {"mappings": t["mappings"]}}}]})

    async def _put_ilm(self, request: web.Request) -> web.Response:
        """``PUT _ilm/policy/<name>``: Elasticsearch only; create or replace, ``{"acknowledged": true}``."""
        if self.distribution != "elasticsearch":
            return self._json(es_error(400, "invalid_index_name_exception", "no handler for _ilm"), 400)
        body = orjson.loads(await request.read() or b"{}")
        if not isinstance(body.get("policy"), dict) or "phases" not in body["policy"]:
            return self._json(es_error(400, "x_content_parse_exception", "[policy] with [phases] required"), 400)
        with self.lock:
            self.policies[request.match_info["name"]] = body["policy"]
        return self._json({"acknowledged": True})

    async def _get_ism(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        with self.lock:
            policy = self.policies.get(name)
        if policy is None or self.distribution != "opensearch":
            return self._json(es_error(404, "status_exception", "Policy not found"), 404)
        return self._json({"_id": name, "_version": self._policy_seq[name] + 1, "_seq_no": self._policy_seq[name],
                           "_primary_term": 1, "policy": policy})

    async def _put_ism(self, request: web.Request) -> web.Response:
        """``PUT _plugins/_ism/policies/<id>``: 201 on create; an existing policy is replaced only with
        ``if_seq_no`` and ``if_primary_term`` matching, else 409 (the OpenSearch contract)."""
        if self.distribution != "opensearch":
            return self._json(es_error(400, "illegal_argument_exception", "no handler for _plugins/_ism"), 400)
        name = request.match_info["name"]
        body = orjson.loads(await request.read() or b"{}")
        policy = body.get("policy")
        if not isinstance(policy, dict) or not policy.get("states") or "default_state" not in policy:
            return self._json(es_error(400, "illegal_argument_exception", "policy needs states and default_state"),
                              400)
        q = request.query
        with self.lock:
            if name in self.policies:
                if q.get("if_seq_no") != str(self._policy_seq[name]) or q.get("if_primary_term") != "1":
                    return self._json(es_error(409, "version_conflict_engine_exception",
                                               f"[{name}]: version conflict, document already exists"), 409)
                self._policy_seq[name] += 1
                status = 200
            else:
                self._policy_seq[name] = 0
                status = 201
            self.policies[name] = policy
            seq = self._policy_seq[name]
        return self._json({"_id": name, "_version": seq + 1, "_primary_term": 1, "_seq_no": seq,
                           "policy": {"policy": policy}}, status)

    async def _put_data_stream(self, request: web.Request) -> web.Response:
        """``PUT _data_stream/<name>``: needs a matching template with ``data_stream``; 400
        ``resource_already_exists_exception`` when it exists."""
        name = request.match_info["name"]
        with self.lock:
            if name in self.data_streams:
                return self._json(es_error(400, "resource_already_exists_exception",
                                           f"data_stream [{name}] already exists"), 400)
            t = self._template_for(name)
            if t is None or t.get("data_stream") is None:
                return self._json(es_error(400, "illegal_argument_exception",
                                           f"no matching index template found for data stream [{name}]"), 400)
            self._index_for_write(name)
        return self._json({"acknowledged": True})

    # -- index resolution
    def _template_for(self, name: str) -> dict[str, Any] | None:
        best = None
        for t in self.templates.values():
            if any(fnmatch.fnmatchcase(name, p) for p in t["index_patterns"]):
                if best is None or t["priority"] > best["priority"]:
                    best = t
        return best

    def _index_for_write(self, name: str) -> Index:
        if name in self.data_streams:
            return self.indices[self.data_streams[name]]
        if name in self.indices:
            return self.indices[name]
        t = self._template_for(name)
        mappings = t.get("mappings") if t else None
        if t is not None and t.get("data_stream") is not None:
            backing = f".ds-{name}-{datetime.now(UTC):%Y.%m.%d}-000001"
            self.indices[backing] = Index(backing, data_stream=name, mappings=mappings)
            self.data_streams[name] = backing
            return self.indices[backing]
        self.indices[name] = Index(name, mappings=mappings)
        return self.indices[name]

    def _resolve(self, target: str) -> list[Index]:
        out: dict[str, Index] = {}
        for part in target.split(","):
            part = part.strip()
            if part in ("_all", "*", ""):
                part = "*"
            for ds, backing in self.data_streams.items():
                if fnmatch.fnmatchcase(ds, part):
                    out[backing] = self.indices[backing]
            for name, ix in self.indices.items():
                if fnmatch.fnmatchcase(name, part) and (part.startswith(".") or not name.startswith(".")):
                    out[name] = ix
        return list(out.values())

    # -- mapping checks
    def _check_mapping(self, ix: Index, doc: dict[str, Any]) -> None:
        if not ix.mappings:
            return
        self._check_object(ix.mappings, doc, "", ix.mappings.get("dynamic", True))

    def _check_object(self, mapping: dict[str, Any], obj: dict[str, Any], prefix: str, dynamic: Any) -> None:
        props = mapping.get("properties", {})
        for key, value in obj.items():
            # dotted keys are objects in disguise
            if "." in key and key not in props:
                head, rest = key.split(".", 1)
                self._check_object(mapping, {head: {rest: value}}, prefix, dynamic)
                continue
            path = prefix + key
            m = props.get(key)
            if m is None:
                if str(dynamic).lower() == "strict":
                    raise BulkError(400, "strict_dynamic_mapping_exception",
                                    f"[1:2] mapping set to strict, dynamic introduction of [{key}] within "
                                    f"[{prefix[:-1] or '_doc'}] is not allowed")
                continue
            self._check_value(m, value, path, m.get("dynamic", dynamic))

    def _parse_err(self, path: str, ftype: str, value: Any) -> BulkError:
        etype = "document_parsing_exception" if self.major >= 8 else "mapper_parsing_exception"
        return BulkError(400, etype, f"[1:2] failed to parse field [{path}] of type [{ftype}] in document. "
                                     f"Preview of field's value: '{value}'")

    def _check_value(self, m: dict[str, Any], value: Any, path: str, dynamic: Any) -> None:
        if value is None:
            return
        if isinstance(value, list):
            for v in value:
                self._check_value(m, v, path, dynamic)
            return
        ftype = m.get("type", "object" if "properties" in m else None)
        if ftype in ("object", "nested"):
            if not isinstance(value, dict):
                raise BulkError(400, "document_parsing_exception" if self.major >= 8 else "mapper_parsing_exception",
                                f"object mapping for [{path}] tried to parse field [{path}] as object, "
                                f"but found a concrete value")
            if m.get("enabled", True):
                self._check_object(m, value, path + ".", dynamic)
            return
        if ftype == "flattened" or ftype == "flat_object":
            return
        if isinstance(value, dict):
            raise self._parse_err(path, ftype, value)
        if ftype in ("long", "integer", "short", "byte", "unsigned_long"):
            ok = (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, float) and value.is_integer()) or (
                isinstance(value, str) and re.fullmatch(r"-?\d+", value) is not None)
        elif ftype in ("float", "double", "half_float", "scaled_float"):
            ok = isinstance(value, int | float) and not isinstance(value, bool) or (
                isinstance(value, str) and re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", value) is not None)
        elif ftype in ("date", "date_nanos"):
            ok = isinstance(value, int) or _as_date_millis(value) is not None
        elif ftype == "boolean":
            ok = isinstance(value, bool) or value in ("true", "false", "")
        elif ftype == "constant_keyword":
            ok = "value" not in m or value == m["value"]
        else:  # keyword, text, wildcard, ip, match_only_text...
            ok = True
        if not ok:
            raise self._parse_err(path, ftype, value)

    # -- _bulk
    async def _bulk(self, request: web.Request) -> web.Response:
        fault = await self.take_fault()
        if fault is not None:
            return fault
        err = self._auth_error(request) or self._media_error(request, ndjson=True)
        if err is not None:
            return err
        raw = await request.read()
        enc = request.headers.get("Content-Encoding", "")
        ctype = request.headers.get("Content-Type", "")
        path_index = request.match_info.get("index")
        if enc == "gzip":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError, zlib.error):
                return self._json(es_error(400, "illegal_argument_exception", "Not in GZIP format"), 400)
        elif enc not in ("", "identity"):
            return self._json(es_error(400, "illegal_argument_exception", f"unsupported encoding [{enc}]"), 400)
        t0 = time.monotonic()
        try:
            ops = self._parse_bulk(raw, path_index)
        except BulkError as e:
            with self.lock:
                self.bulks.append(BulkRecord(request.path, ctype, enc, e.status, 0))
            return self._json(es_error(e.status, e.etype, e.reason), e.status)
        items = []
        with self.lock:
            for op, meta, source in ops:
                items.append(self._apply(op, meta, source))
            statuses = [next(iter(i.values()))["status"] for i in items]
            self.bulks.append(BulkRecord(request.path, ctype, enc, 200, len(ops), statuses))
        took = int((time.monotonic() - t0) * 1000)
        body: dict[str, Any] = {"errors": any(s >= 300 for s in statuses), "took": took, "items": items}
        return self._json(body)

    def _parse_bulk(self, raw: bytes, path_index: str | None) -> list[tuple[str, dict[str, Any], Any]]:
        if not raw.strip():
            raise BulkError(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
        if not raw.endswith(b"\n"):
            raise BulkError(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
        lines = raw.split(b"\n")[:-1]
        ops = []
        i = 0
        while i < len(lines):
            line = lines[i].strip()
            if not line:
                i += 1
                continue
            try:
                action = orjson.loads(line)
            except orjson.JSONDecodeError:
                raise BulkError(400, "x_content_parse_exception",
                                f"[1:1] Unexpected character in action/metadata line [{i + 1}]") from None
            if not isinstance(action, dict) or len(action) != 1:
                raise BulkError(400, "illegal_argument_exception",
                                f"Malformed action/metadata line [{i + 1}], expected START_OBJECT or END_OBJECT")
            op, meta = next(iter(action.items()))
            if op not in ("create", "index", "update", "delete"):
                raise BulkError(400, "illegal_argument_exception",
                                f"Malformed action/metadata line [{i + 1}], expected field [create], [delete], "
                                f"[index] or [update] but found [{op}]")
            if not isinstance(meta, dict):
                raise BulkError(400, "illegal_argument_exception",
                                f"Malformed action/metadata line [{i + 1}], expected START_OBJECT")
            meta = dict(meta)
            meta.setdefault("_index", path_index)
            if not meta.get("_index"):
                raise BulkError(400, "action_request_validation_exception", "Validation Failed: 1: index is missing;")
            source = None
            if op != "delete":
                if i + 1 >= len(lines):
                    raise BulkError(400, "illegal_argument_exception",
                                    f"The bulk request must be terminated by a newline [\\n] (line {i + 2})")
                try:
                    source = orjson.loads(lines[i + 1])
                except orjson.JSONDecodeError as e:
                    # a bad source fails that item only (it is parsed per shard in ES)
                    source = BulkError(400, "document_parsing_exception" if self.major >= 8
                                       else "mapper_parsing_exception", f"failed to parse: {e}")
                i += 1
            ops.append((op, meta, source))
            i += 1
        return ops

    def _apply(self, op: str, meta: dict[str, Any], source: Any) -> dict[str, Any]:
        name = meta["_index"]
        doc_id = meta.get("_id")
        res: dict[str, Any] = {"_index": name}
        if self.major == 7:
            res["_type"] = "_doc"
        fault = self._item_faults.pop(0) if self._item_faults else None
        try:
            if fault is not None:
                etype, reason = _ES_ERRORS.get(fault, ("exception", "injected"))
                raise BulkError(fault, etype, reason)
            if isinstance(source, BulkError):
                raise source
            ix = self._index_for_write(name)
            res["_index"] = ix.name
            if ix.data_stream and op != "create":
                raise BulkError(400, "illegal_argument_exception",
                                "only write ops with an op_type of create are allowed in data streams")
            if op in ("create", "index"):
                if not isinstance(source, dict):
                    raise BulkError(400, "document_parsing_exception" if self.major >= 8
                                    else "mapper_parsing_exception", "failed to parse: not an object")
                if ix.data_stream and get_path(source, "@timestamp") is None:
                    raise BulkError(400, "document_parsing_exception" if self.major >= 8
                                    else "mapper_parsing_exception",
                                    "[1:2] failed to parse: data stream timestamp field [@timestamp] is missing")
                if doc_id is None:
                    doc_id = base64.urlsafe_b64encode(os.urandom(15)).decode().rstrip("=")
                res["_id"] = doc_id
                if op == "create" and doc_id in ix.docs:
                    raise BulkError(409, "version_conflict_engine_exception",
                                    f"[{doc_id}]: version conflict, document already exists (current version [1])")
                self._check_mapping(ix, source)
                existed = doc_id in ix.docs
                ix.docs[doc_id] = source
                seq = next(self._seq)
                ix.seq[doc_id] = seq
                res.update({"_version": 2 if existed else 1, "result": "updated" if existed else "created",
                            "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": seq,
                            "_primary_term": 1, "status": 200 if existed else 201})
            elif op == "delete":
                ix.docs.pop(doc_id, None)
                res.update({"_id": doc_id, "result": "deleted", "status": 200})
            else:
                raise BulkError(400, "illegal_argument_exception", "update is not supported by this test receiver")
        except BulkError as e:
            res.setdefault("_id", doc_id)
            res["status"] = e.status
            res["error"] = {"type": e.etype, "reason": e.reason, "index": name}
        return {op: res}

    # -- search / count
    async def _read_query(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        body = orjson.loads(raw) if raw.strip() else {}
        if "size" in request.query:
            body["size"] = int(request.query["size"])
        return body

    def _match(self, doc: dict[str, Any], q: dict[str, Any] | None) -> bool:
        if not q or "match_all" in q:
            return True
        kind, spec = next(iter(q.items()))
        if kind == "term":
            fld, v = next(iter(spec.items()))
            v = v["value"] if isinstance(v, dict) else v
            have = get_path(doc, fld)
            return v in have if isinstance(have, list) else have == v
        if kind == "terms":
            fld, vs = next(iter(spec.items()))
            have = get_path(doc, fld)
            return any((v in have) if isinstance(have, list) else have == v for v in vs)
        if kind == "exists":
            return get_path(doc, spec["field"]) is not None
        if kind == "range":
            fld, bounds = next(iter(spec.items()))
            have = get_path(doc, fld)
            if have is None:
                return False
            h = _comparable(have)
            for op, b in bounds.items():
                if op in ("format", "time_zone"):
                    continue
                c = _comparable(b)
                if (op == "gte" and not h >= c) or (op == "gt" and not h > c) or (
                        op == "lte" and not h <= c) or (op == "lt" and not h < c):
                    return False
            return True
        if kind == "bool":
            def listify(x: Any) -> list[Any]:
                return x if isinstance(x, list) else [x] if x else []
            return (all(self._match(doc, c) for c in listify(spec.get("filter")) + listify(spec.get("must")))
                    and not any(self._match(doc, c) for c in listify(spec.get("must_not")))
                    and (not spec.get("should") or any(self._match(doc, c) for c in listify(spec.get("should")))))
        raise BulkError(400, "parsing_exception", f"unknown query [{kind}] (test receiver)")

    async def _search(self, request: web.Request) -> web.Response:
        err = self._auth_error(request)
        if err is not None:
            return err
        try:
            body = await self._read_query(request)
            size, frm = int(body.get("size", 10)), int(body.get("from", 0))
            if size + frm > MAX_RESULT_WINDOW:
                raise BulkError(400, "illegal_argument_exception",
                                f"Result window is too large, from + size must be less than or equal to: "
                                f"[{MAX_RESULT_WINDOW}] but was [{size + frm}].")
            with self.lock:
                ixs = self._resolve(request.match_info["index"])
                if not ixs and "*" not in request.match_info["index"]:
                    raise BulkError(404, "index_not_found_exception",
                                    f"no such index [{request.match_info['index']}]")
                hits = [(ix, i, d) for ix in ixs for i, d in ix.docs.items() if self._match(d, body.get("query"))]
                sort = body.get("sort") or []
                sort = sort if isinstance(sort, list) else [sort]
                keys: list[tuple[str, bool]] = []
                for s in sort:
                    if isinstance(s, str):
                        keys.append((s, s == "_score"))
                    else:
                        fld, o = next(iter(s.items()))
                        order = o.get("order", "asc") if isinstance(o, dict) else o
                        keys.append((fld, order == "desc"))

                def sort_values(h: tuple[Index, str, dict[str, Any]]) -> list[Any]:
                    ix, i, d = h
                    out = []
                    for fld, _ in keys:
                        v = i if fld == "_id" else ix.seq[i] if fld == "_doc" else get_path(d, fld)
                        dm = _as_date_millis(v)
                        out.append(dm if dm is not None else v)
                    return out

                def key_of(vals: list[Any]) -> tuple[Any, ...]:
                    k = []
                    for (_, desc), v in zip(keys, vals, strict=True):
                        c = _comparable(v) if v is not None else (9, 0)
                        if desc:
                            c = (-c[0], -c[1]) if isinstance(c[1], int | float) else (-c[0], _Rev(c[1]))
                        k.append(c)
                    return tuple(k)

                decorated = [(sort_values(h), h) for h in hits]
                if keys:
                    decorated.sort(key=lambda x: key_of(x[0]))
                else:
                    decorated.sort(key=lambda x: x[1][0].seq[x[1][1]])
                after = body.get("search_after")
                if after is not None:
                    ka = key_of(list(after))
                    decorated = [x for x in decorated if key_of(x[0]) > ka]
                total = len(hits)
                page = decorated[frm:frm + size]
        except BulkError as e:
            return self._json(es_error(e.status, e.etype, e.reason), e.status)
        except (orjson.JSONDecodeError, ValueError, TypeError, AttributeError, StopIteration) as e:
            return self._json(es_error(400, "parsing_exception", str(e)), 400)
        out_hits = []
        for vals, (ix, i, d) in page:
            h: dict[str, Any] = {"_index": ix.name, "_id": i, "_score": None if keys else 1.0, "_source": d}
            if self.major == 7:
                h["_type"] = "_doc"
            if keys:
                h["sort"] = vals
            out_hits.append(h)
        return self._json({
            "took": 1, "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {"total": {"value": total, "relation": "eq"}, "max_score": None if keys else 1.0,
                     "hits": out_hits},
        })

    async def _count(self, request: web.Request) -> web.Response:
        err = self._auth_error(request)
        if err is not None:
            return err
        try:
            body = await self._read_query(request)
            with self.lock:
                n = sum(1 for ix in self._resolve(request.match_info["index"]) for d in ix.docs.values()
                        if self._match(d, body.get("query")))
        except BulkError as e:
            return self._json(es_error(e.status, e.etype, e.reason), e.status)
        except (orjson.JSONDecodeError, ValueError, TypeError) as e:
            return self._json(es_error(400, "parsing_exception", str(e)), 400)
        return self._json({"count": n, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}})


class _Rev:
    """Reverses string ordering inside a sort key (descending string sorts)."""

    __slots__ = ("v",)

    def __init__(self, v: Any):
        self.v = v

    def __lt__(self, other: _Rev) -> bool:
        return self.v > other.v

    def __gt__(self, other: _Rev) -> bool:
        return self.v < other.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and self.v == other.v

    def __hash__(self) -> int:
        return hash(self.v)


def main() -> None:
    """Serve until SIGTERM, for benches and end-to-end tests that run the agent as a process::

        python -c "import sys; sys.path.insert(0, 'tests'); \
from receivers.elasticsearch import main; main()" --port N [--flavor 8]
    """
    import argparse
    import signal
    import threading

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--flavor", default="8", choices=sorted(FLAVORS))
    args = ap.parse_args()
    rx = ElasticsearchReceiver(args.port, flavor=args.flavor).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"elasticsearch receiver ({args.flavor}) on {rx.url}", flush=True)
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    rx.stop()
