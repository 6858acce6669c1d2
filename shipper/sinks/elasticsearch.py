"""The Elasticsearch / OpenSearch sink: NDJSON ``_bulk`` with ``create`` and a deterministic ``_id``.

Why ``create`` + ``_id``: the event id (a hash of origin and position, set by the sources) makes
a resend idempotent -- the second ``create`` of the same id answers 409, which is counted as
delivered (``Delivery.duplicates``). ``create`` is also the only op a data stream accepts.
Caveat (elastic/elasticsearch#44794): ``_id`` uniqueness holds per backing index, so a replay
that lands after a rollover can duplicate; replays are bounded by one batch, so this is rare.

Why a plain POST and not the official clients: the 9.x client sends ``compatible-with=9``
(ES 8 refuses it) and refuses OpenSearch; its bulk helper does not retry per-item 429s with the
default ``raise_on_error=True`` (elastic/elasticsearch-py#864). ``Content-Type:
application/x-ndjson`` is understood by ES 7, 8, 9 and OpenSearch alike.

Per-item results (the HTTP status is 200 even when items fail, ``errors: true``):

* 2xx -> delivered; 409 -> already there (delivered, counted as a duplicate);
* 429 / 5xx -> retried here, **only those items**, with backoff, until they succeed or the
  partial-retry budget (``retry.max``) is spent; then :class:`RetryableError` for the batch
  (the worker resends it; the items created meanwhile then answer 409, which is fine);
* anything else (400 mapper_parsing / document_parsing, 404 index_not_found...) -> rejected
  for good (dead-letter file), with ES's ``type: reason`` as the reason.

Whole-request answers use shipper/sinks/http.py: 429/5xx/timeouts -> RetryableError; 401/403/
404 -> RetryableError (configuration, retried slowly); other 4xx -> the batch is rejected.

Documents use ECS names compatible with Filebeat's redis module (``redis.log.role``,
``redis.slowlog.*``, ``log.level``, ``process.pid``, ``event.*``) so existing Kibana views work;
the whole event also rides under ``redis_shipper.*``, and its canonical bytes in ``event.original``
(not indexed) for the audit trail. deploy/elasticsearch/index-template.json
maps every field emitted here (tests/test_sink_elasticsearch.py checks it).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import orjson

from parsers.events import Event
from shipper.api import Delivery, Encoded, RetryableError, Sink, SpooledEvent
from shipper.sinks.compress import gzip_body

if TYPE_CHECKING:
    from shipper.config import ElasticsearchSinkConfig

# The HTTP client is imported where requests are made: the encoder also runs in the
# offload process (shipper/pipeline/offload.py), which never sends one.

log = logging.getLogger(__name__)

#: bodies at least this big are compressed on a worker thread
OFFLOAD_BYTES = 64 << 10
#: event.dataset per event source; the two Filebeat uses are kept as they are
DATASETS = {"redis": "redis.log", "sentinel": "redis.log", "slowlog": "redis.slowlog"}
_DATA_STREAM_NAME = re.compile(r"^(logs|metrics|traces|synthetics)-([^-]+)-(.+)$")

#: where the slowlog details may be in ``fields`` (first present wins) -> Filebeat's names
_SLOWLOG_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "slowlog_id", "entry_id"),
    "duration_us": ("duration_us", "duration_micros", "duration", "micros"),
    "args": ("args", "argv", "arguments"),
    "cmd": ("cmd", "command", "command_name"),
    "key": ("key",),
    "clientAddr": ("client_addr", "client_address", "addr", "client"),
    "clientName": ("client_name", "name"),
}


def _first(fields: dict[str, Any], names: tuple[str, ...]) -> Any:
    for n in names:
        v = fields.get(n)
        if v is not None and v != "":
            return v
    return None


def _slowlog(fields: dict[str, Any]) -> dict[str, Any]:
    """``redis.slowlog.*`` as Filebeat writes it: cmd = argv[0], key = argv[1], args = argv[2:]."""
    out: dict[str, Any] = {}
    sid = _first(fields, _SLOWLOG_ALIASES["id"])
    if isinstance(sid, int):
        out["id"] = sid
    dur = _first(fields, _SLOWLOG_ALIASES["duration_us"])
    if isinstance(dur, int | float) and not isinstance(dur, bool):
        out["duration"] = {"us": int(dur)}
    argv = _first(fields, _SLOWLOG_ALIASES["args"])
    cmd = _first(fields, _SLOWLOG_ALIASES["cmd"])
    key = _first(fields, _SLOWLOG_ALIASES["key"])
    if isinstance(argv, list) and argv:
        argv = [a if isinstance(a, str) else str(a) for a in argv]
        if cmd is None:
            cmd, rest = argv[0], argv[1:]
        else:
            rest = argv[1:] if argv[0].lower() == str(cmd).lower() else argv
        if key is None and rest:
            key, rest = rest[0], rest[1:]
        if rest:
            out["args"] = rest
    if cmd is not None:
        out["cmd"] = str(cmd)
    if key is not None:
        out["key"] = str(key)
    for name in ("clientAddr", "clientName"):
        v = _first(fields, _SLOWLOG_ALIASES[name])
        if isinstance(v, str) and v:
            out[name] = v
    return out


def data_stream_fields(index: str) -> dict[str, str] | None:
    """``logs-redis.events-default`` -> {type: logs, dataset: redis.events, namespace: default}."""
    m = _DATA_STREAM_NAME.match(index)
    if not m:
        return None
    return {"type": m.group(1), "dataset": m.group(2), "namespace": m.group(3)}


def to_document(ev: Event, *, raw: bytes | None = None, data_stream: dict[str, str] | None = None) -> dict[str, Any]:
    """The event in ECS names (see the module docstring). Pure; keys absent when unknown.

    ``raw`` (the spooled canonical bytes) becomes ``event.original``, not indexed: it is what
    the audit reader (shipper/audit/readers.py) verifies the hash chain on, byte for byte.
    """
    source = ev.get("source")
    fields = ev.get("fields") if isinstance(ev.get("fields"), dict) else {}
    labels = ev.get("labels") if isinstance(ev.get("labels"), dict) else {}
    doc: dict[str, Any] = {
        "@timestamp": ev.get("timestamp"),
        "message": ev.get("message") or "",
    }
    logf: dict[str, Any] = {}
    if ev.get("level"):
        logf["level"] = ev["level"]
    if ev.get("file"):
        logf["file"] = {"path": ev["file"]}
    if isinstance(ev.get("offset"), int):
        logf["offset"] = ev["offset"]
    if logf:
        doc["log"] = logf
    doc["event"] = {
        "kind": "event",
        "module": "redis",
        "dataset": DATASETS.get(str(source), f"redis.{source}"),
        "category": ["database"],
        "type": ["info"],
        "action": ev.get("event"),
    }
    if isinstance(ev.get("seq"), int):
        doc["event"]["sequence"] = ev["seq"]
    if raw is not None:
        doc["event"]["original"] = raw.decode("utf-8", "replace")
    if isinstance(ev.get("pid"), int):
        doc["process"] = {"pid": ev["pid"]}
    service: dict[str, Any] = {"type": "redis"}
    if labels.get("instance"):
        service["address"] = str(labels["instance"])
    doc["service"] = service
    host = labels.get("host") or labels.get("hostname") or labels.get("node")
    if host:
        doc["host"] = {"name": str(host)}
    redis: dict[str, Any] = {}
    if ev.get("role") and source in ("redis", "sentinel"):
        redis["log"] = {"role": ev["role"]}
    if source == "slowlog":
        sl = _slowlog(fields)
        if ev.get("role"):
            sl["role"] = ev["role"]
        if sl:
            redis["slowlog"] = sl
    if redis:
        doc["redis"] = redis
    if labels:
        doc["labels"] = {str(k): str(v) for k, v in labels.items()}
    rs: dict[str, Any] = {"source": source, "category": ev.get("category"), "event": ev.get("event")}
    for k in ("id", "origin", "stream", "role", "lines", "prev_hash"):
        if ev.get(k) is not None:
            rs[k] = ev[k]
    if fields:
        rs["fields"] = fields
    doc["redis_shipper"] = rs
    if data_stream:
        doc["data_stream"] = dict(data_stream)
    return doc


def document_id(se: SpooledEvent) -> str:
    """The event's own id, or (no id set) a hash of its canonical bytes: a resend still dedups."""
    eid = se.event.get("id")
    if isinstance(eid, str) and eid:
        return eid
    return hashlib.blake2b(se.raw, digest_size=16).hexdigest()


class ElasticsearchEncoder:
    """Builds the ``_bulk`` item pairs of a batch; pure, so the offload process can run it."""

    def __init__(self, *, index: str, data_stream: bool = True) -> None:
        self.data_stream = data_stream_fields(index) if data_stream else None

    def item_lines(self, batch: list[SpooledEvent]) -> list[bytes]:
        """One ``{"create":{"_id":..}}\\n<document>\\n`` pair per event, in batch order."""
        out = []
        ds = self.data_stream
        for se in batch:
            action = orjson.dumps({"create": {"_id": document_id(se)}})
            doc = to_document(se.event, raw=se.raw, data_stream=ds)
            out.append(action + b"\n" + orjson.dumps(doc) + b"\n")
        return out

    def encode(self, batch: list[SpooledEvent]) -> Encoded:
        """The item pairs, concatenated, with their sizes (uncompressed: a partial retry re-sends
        only some of them, compressed then)."""
        lines = self.item_lines(batch)
        return Encoded(b"".join(lines), {}, [], len(lines), part_sizes=[len(x) for x in lines])


class ElasticsearchSink(Sink):
    """Bulk-creates events in an Elasticsearch / OpenSearch data stream or index."""

    idempotent = True  # ``create`` with a deterministic _id: a replay is a 409

    def __init__(self, cfg: ElasticsearchSinkConfig, *, name: str = "elasticsearch"):
        self.cfg = cfg
        self.name = name
        self.max_batch_bytes = cfg.batch.max_bytes
        self.max_wait = cfg.batch.max_wait
        self.bulk_url = f"{cfg.url.rstrip('/')}/{quote(cfg.index, safe='')}/_bulk"
        self.encoder = ElasticsearchEncoder(index=cfg.index, data_stream=cfg.data_stream)
        #: seconds of per-item retrying (429/5xx items) inside one send
        self.partial_retry_budget = cfg.retry.max
        self._http: Any = None  # http.LazySession once started
        self._headers: dict[str, str] = {}

    async def start(self) -> None:
        from shipper.sinks import http

        cfg = self.cfg
        self._headers = {
            **http.auth_headers(
                basic_auth=cfg.basic_auth, api_key=cfg.api_key, api_key_file=cfg.api_key_file,
                api_key_env=cfg.api_key_env,
            ),
            "Content-Type": "application/x-ndjson",
            "Accept": "application/json",
            "Content-Encoding": "gzip",
        }
        session = http.LazySession(cfg.tls, cfg.retry.timeout)
        session.prepare()  # bad TLS files fail here; the session comes with the first request
        self._http = session

    async def close(self) -> None:
        session, self._http = self._http, None
        if session is not None:
            await session.close()

    def item_lines(self, batch: list[SpooledEvent]) -> list[bytes]:
        """One ``{"create":{"_id":..}}\\n<document>\\n`` pair per event, in batch order."""
        return self.encoder.item_lines(batch)

    def encoder_spec(self) -> tuple[str, dict[str, Any]]:
        return "shipper.sinks.elasticsearch:ElasticsearchEncoder", {
            "index": self.cfg.index, "data_stream": self.cfg.data_stream}

    @staticmethod
    def _gzip(body: bytes) -> bytes:
        return gzip_body(body)

    async def send(self, batch: list[SpooledEvent]) -> Delivery:
        if not batch:
            return Delivery()
        return await self._send_lines(self.item_lines(batch))

    async def send_encoded(self, encoded: Encoded, count: int) -> Delivery:
        sizes = encoded.part_sizes or []
        if len(sizes) != count:
            raise ValueError(f"elasticsearch {self.name}: {len(sizes)} item pairs for {count} events")
        body = memoryview(encoded.body)
        lines, pos = [], 0
        for n in sizes:
            lines.append(bytes(body[pos:pos + n]))
            pos += n
        return await self._send_lines(lines)

    async def _send_lines(self, lines: list[bytes]) -> Delivery:
        """POST the item pairs; retry only the items answered 429/5xx, within the retry budget."""
        from shipper.sinks import http

        if self._http is None:
            await self.start()
        pending = list(range(len(lines)))
        rejected: list[tuple[int, str]] = []
        duplicates = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.partial_retry_budget
        attempt = 0
        what = f"elasticsearch {self.name}"
        while True:
            payload = b"".join(lines[i] for i in pending)
            if len(payload) >= OFFLOAD_BYTES:  # deflate releases the GIL: sources keep parsing meanwhile
                body = await loop.run_in_executor(None, self._gzip, payload)
            else:
                body = self._gzip(payload)
            resp = await http.post(
                self._http.get(), self.bulk_url, body, self._headers, what=what,
                server_hostname=self.cfg.tls.server_name if self.cfg.tls else None,
            )
            try:
                http.classify(resp, what)
            except http.PermanentError as e:
                reason = f"elasticsearch HTTP {e.status}: {e.body}"
                return Delivery(rejected=sorted(rejected + [(i, reason) for i in pending]), duplicates=duplicates)
            try:
                result = orjson.loads(resp.body)
                items = result["items"]
            except (orjson.JSONDecodeError, KeyError, TypeError) as e:
                raise RetryableError(f"{what}: unreadable bulk response: {e}: {resp.text(200)}") from None
            if len(items) != len(pending):
                raise RetryableError(f"{what}: bulk response has {len(items)} items for {len(pending)} actions")
            retry: list[int] = []
            for idx, item in zip(pending, items, strict=True):
                res = next(iter(item.values())) if isinstance(item, dict) and item else {}
                status = res.get("status", 0) if isinstance(res, dict) else 0
                if 200 <= status < 300:
                    continue
                if status == 409:
                    duplicates += 1
                elif status == 429 or status >= 500 or status == 0:
                    retry.append(idx)
                else:
                    err = res.get("error") if isinstance(res, dict) else None
                    if isinstance(err, dict):
                        msg = f"{err.get('type', 'error')}: {err.get('reason', '')}"
                    else:
                        msg = str(err)
                    rejected.append((idx, f"elasticsearch item {status}: {msg}"[: http.MAX_REASON_CHARS]))
            if not retry:
                return Delivery(rejected=sorted(rejected), duplicates=duplicates)
            attempt += 1
            delay = min(self.cfg.retry.initial * (2 ** (attempt - 1)), self.cfg.retry.max)
            delay *= random.uniform(0.5, 1.0)
            if loop.time() + delay > deadline:
                raise RetryableError(
                    f"{what}: {len(retry)} of {len(lines)} items still refused with 429/5xx after "
                    f"{attempt} bulk attempts", status=429,
                )
            log.info("%s: %d items answered 429/5xx, retrying them in %.2fs", what, len(retry), delay)
            await asyncio.sleep(delay)
            pending = retry
