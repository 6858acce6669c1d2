"""A Loki 3 push endpoint that enforces the real contract, and a minimal query_range.

Rules modelled, with where they live in grafana/loki (v3.x):

* ``pkg/loghttp/push/push.go::ParseLokiRequest``: ``Content-Encoding`` "" / ``snappy`` (ignored:
  the protobuf path un-snappies anyway) / ``gzip`` / ``deflate``; anything else is
  ``400 Content-Encoding "<x>" not supported``. ``Content-Type: application/json`` is JSON;
  anything else is protobuf that must be **raw (block) snappy** -- a framed-snappy or plain
  protobuf body is a 400.
* JSON (``pkg/loghttp/entry.go``): ``{"streams":[{"stream":{..},"values":[["<ns>","<line>",{md}]]}]}``;
  the timestamp must be a **string** of Unix nanoseconds; label values must be strings.
* Protobuf (``pkg/push/push.proto``): PushRequest.streams=1; StreamAdapter.labels=1 (selector
  text ``{a="b", c="d"}`` parsed like ``syntax.ParseLabels``), entries=2; EntryAdapter.timestamp=1
  (google.protobuf.Timestamp), line=2, structuredMetadata=3 (LabelPairAdapter name=1 value=2).
  Decoded here by an independent wire-format reader, not by the sink's message classes.
* ``pkg/distributor/validator.go``: no labels -> 400; more than 15 label names (``service_name``
  not counted) -> 400; name > 1024 or value > 2048 bytes -> 400; duplicate names -> 400; line
  over ``max_line_size`` (256 KB) and more than 128 structured metadata entries -> that entry
  rejected; optional (off by default, see ``reject_old_samples_max_age``) age/future checks.
* ``pkg/ingester/stream.go::validateEntries``: unordered writes (default since 2.4) accept any
  order within ``max_chunk_age/2`` (1 h) of the stream's highest timestamp, else "entry too far
  behind"; ``ordered=True`` models the pre-2.4 rule (older than the last entry = out of order).
  Entries identical in (timestamp, line, structured metadata) to one already stored are dropped
  silently (the push-path last-line check, the head block and the query merge all dedupe).
* When some entries fail, the others **are written** and the answer is 400 with a text body
  listing the ignored ones ("total ignored: N out of M"). Success is ``204`` with an empty body.
* ``auth_enabled`` (``require_tenant=True``): no ``X-Scope-OrgID`` -> 401 "no org id";
  otherwise the tenant is ``fake``.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import ssl
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import snappy
from aiohttp import web

from . import ThreadedApp

MAX_LABEL_NAMES = 15
MAX_LABEL_NAME_LEN = 1024
MAX_LABEL_VALUE_LEN = 2048
MAX_LINE_SIZE = 256 * 1024
MAX_SM_ENTRIES = 128
UNORDERED_WINDOW_NS = 3600 * 10**9  # max_chunk_age (2h) / 2
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


try:  # ISA-L's gunzip (a runtime dependency of the agent): ~4x zlib's, so the receiver's CPU,
    # which shares the benches' two cores with the agent, is less of the measurement
    from isal.igzip import decompress as _gunzip
except ImportError:  # pragma: no cover - isal is installed with the package
    _gunzip = gzip.decompress


class BadRequest(Exception):
    pass


class Entry(NamedTuple):
    """One stored entry; a NamedTuple because the receiver makes and hashes one per entry."""

    ts: int  # ns
    line: str
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def md(self) -> dict[str, str]:
        return dict(self.metadata)


_new_entry = tuple.__new__


@dataclass
class PushRecord:
    """What one push request looked like on the wire (for tests of encoding and replays)."""

    tenant: str
    content_type: str
    content_encoding: str
    body_bytes: int
    status: int
    #: the decoded entries (empty when the receiver does not keep entries)
    streams: list[tuple[str, list[Entry]]] = field(default_factory=list)
    #: the Authorization header as received (tests check that credentials were sent)
    authorization: str | None = None
    #: a hash of the body as sent (replays must be byte-identical)
    body_digest: str = ""
    #: entries in the request (decoded, whether stored or not)
    entries: int = 0


@dataclass
class _Stream:
    labels: dict[str, str]
    entries: list[Entry] = field(default_factory=list)
    #: what identifies a stored entry: the Entry, or only its hash (``keep_entries=False``)
    keys: set[Any] = field(default_factory=set)
    #: entries stored (kept or only counted)
    count: int = 0
    highest: int = 0
    last: int = 0


# --------------------------------------------------------------------------- protobuf wire reader
def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise BadRequest("proto: truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise BadRequest("proto: varint overflow")


def _fields(buf: bytes) -> Iterable[tuple[int, int, Any]]:
    """(field number, wire type, value) over a message; LEN values are bytes."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        if num == 0:
            raise BadRequest("proto: illegal field number 0")
        if wt == 0:
            v, pos = _varint(buf, pos)
        elif wt == 2:
            n, pos = _varint(buf, pos)
            if pos + n > len(buf):
                raise BadRequest("proto: unexpected EOF")
            v, pos = buf[pos:pos + n], pos + n
        elif wt == 1:
            v, pos = buf[pos:pos + 8], pos + 8
        elif wt == 5:
            v, pos = buf[pos:pos + 4], pos + 4
        else:
            raise BadRequest(f"proto: illegal wire type {wt}")
        if pos > len(buf):
            raise BadRequest("proto: unexpected EOF")
        yield num, wt, v


def _utf8(b: bytes) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("proto: invalid UTF-8 in string field") from None


def decode_push_proto(body: bytes) -> list[tuple[str, list[Entry]]]:
    streams = []
    for num, wt, v in _fields(body):
        if num != 1 or wt != 2:
            continue
        labels, entries = "", []
        for n2, w2, v2 in _fields(v):
            if n2 == 1 and w2 == 2:
                labels = _utf8(v2)
            elif n2 == 2 and w2 == 2:
                secs = nanos = 0
                line = ""
                md: list[tuple[str, str]] = []
                for n3, w3, v3 in _fields(v2):
                    if n3 == 1 and w3 == 2:
                        for n4, w4, v4 in _fields(v3):
                            if n4 == 1 and w4 == 0:
                                secs = v4 - (1 << 64) if v4 >= 1 << 63 else v4
                            elif n4 == 2 and w4 == 0:
                                nanos = v4
                    elif n3 == 2 and w3 == 2:
                        line = _utf8(v3)
                    elif n3 == 3 and w3 == 2:
                        name = value = ""
                        for n5, w5, v5 in _fields(v3):
                            if n5 == 1 and w5 == 2:
                                name = _utf8(v5)
                            elif n5 == 2 and w5 == 2:
                                value = _utf8(v5)
                        md.append((name, value))
                entries.append(Entry(secs * 10**9 + nanos, line, tuple(md)))
        streams.append((labels, entries))
    return streams


# --------------------------------------------------------------------------- label selector parser
_SEL_TOKEN = re.compile(
    r'\s*(?:(?P<name>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*'
    r'(?P<val>"(?:[^"\\\n]|\\.)*"|`[^`]*`)\s*(?P<sep>,|$))'
)
_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
               "\\": "\\", '"': '"', "'": "'"}


def go_unquote(q: str) -> str:
    """strconv.Unquote for double-quoted and backquoted strings."""
    if q.startswith("`"):
        return q[1:-1]
    body, out, i = q[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        i += 1
        if i >= len(body):
            raise BadRequest("invalid escape")
        e = body[i]
        if e in _GO_ESCAPES:
            out.append(_GO_ESCAPES[e])
            i += 1
        elif e in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[e]
            hexs = body[i + 1:i + 1 + n]
            if len(hexs) != n or not all(ch in "0123456789abcdefABCDEF" for ch in hexs):
                raise BadRequest(f"invalid escape \\{e}{hexs}")
            out.append(chr(int(hexs, 16)))
            i += 1 + n
        elif e in "01234567":
            octs = body[i:i + 3]
            if len(octs) != 3 or not all(ch in "01234567" for ch in octs):
                raise BadRequest("invalid octal escape")
            out.append(chr(int(octs, 8)))
            i += 3
        else:
            raise BadRequest(f"invalid escape \\{e}")
    return "".join(out)


def parse_selector(text: str, *, equality_only: bool = True) -> list[tuple[str, str, str]]:
    """``{a="1", b=~"x.*"}`` -> [(name, op, value)], like LogQL's selector grammar."""
    s = text.strip()
    if not (s.startswith("{") and s.endswith("}")):
        raise BadRequest(f"parse error: expected a stream selector {{...}}, got {text!r}")
    inner = s[1:-1]
    pos, out = 0, []
    if inner.strip() == "":
        return []
    while pos < len(inner):
        m = _SEL_TOKEN.match(inner, pos)
        if not m:
            raise BadRequest(f"parse error at position {pos + 1}: {text!r}")
        if equality_only and m.group("op") != "=":
            raise BadRequest(f"parse error: only = matchers are allowed in stream labels: {text!r}")
        out.append((m.group("name"), m.group("op"), go_unquote(m.group("val"))))
        pos = m.end()
        if m.group("sep") == "," and inner[pos:].strip() == "":
            raise BadRequest(f"parse error: trailing comma: {text!r}")
    return out


def _parse_time(v: str | None, default: int) -> int:
    """query_range start/end: Unix ns, Unix seconds (float) or RFC 3339, like Loki's parser."""
    if v is None or v == "":
        return default
    if re.fullmatch(r"\d+", v) and len(v) > 12:
        return int(v)
    try:
        return int(float(v) * 10**9)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"invalid time {v!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 10**9 + dt.microsecond * 1000


# --------------------------------------------------------------------------- the receiver
class LokiReceiver(ThreadedApp):
    """See the module docstring. Read results with :meth:`streams`, :meth:`entries`."""

    def __init__(
        self,
        port: int | None = None,
        *,
        require_tenant: bool = False,
        ordered: bool = False,
        reject_old_samples_max_age: float | None = None,
        creation_grace_period: float | None = None,
        max_label_names: int = MAX_LABEL_NAMES,
        allow_structured_metadata: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        discard: bool = False,
        keep_entries: bool = True,
    ):
        super().__init__(port, ssl_context=ssl_context)
        #: read each body and answer 204 without decoding (NOT Loki: separates the client's
        #: cost from this receiver's in benches)
        self.discard = discard
        #: False: every entry is decoded and checked, and exactly-once is checked by each entry's
        #: hash, but the entries are only counted, not kept (NOT for tests that read entries back:
        #: for benches with hundreds of thousands of entries, where keeping ~1.5 KB of Python
        #: objects per entry made this process's CPU per entry grow with what it held, on the
        #: cores it shares with the agent: 7.6-8.1 µs at 300,000 entries, 12.4 at 1,000,000).
        #: Two distinct entries with the same 64-bit hash would count as one: a bench then reports
        #: an entry missing, it never hides one.
        self.keep_entries = keep_entries
        self.require_tenant = require_tenant
        self.ordered = ordered
        self.reject_old_samples_max_age = reject_old_samples_max_age
        self.creation_grace_period = creation_grace_period
        self.max_label_names = max_label_names
        self.allow_structured_metadata = allow_structured_metadata
        self._streams: dict[tuple[str, tuple[tuple[str, str], ...]], _Stream] = {}
        self.pushes: list[PushRecord] = []
        self.duplicates_dropped = 0

    # -- reading what arrived
    def streams(self, tenant: str | None = None) -> dict[str, list[Entry]]:
        """selector text -> entries, each stream sorted by time (what a query would return)."""
        with self.lock:
            out: dict[str, list[Entry]] = {}
            for (t, key), st in self._streams.items():
                if tenant is None or t == tenant:
                    sel = selector_text(dict(key))
                    out.setdefault(sel, []).extend(st.entries)
            for v in out.values():
                v.sort(key=lambda e: e.ts)
            return out

    def stream_labels(self, tenant: str | None = None) -> list[dict[str, str]]:
        with self.lock:
            return [dict(st.labels) for (t, _), st in self._streams.items() if tenant is None or t == tenant]

    def entries(self, tenant: str | None = None) -> list[Entry]:
        return sorted((e for v in self.streams(tenant).values() for e in v), key=lambda e: e.ts)

    def count(self) -> int:
        with self.lock:
            return sum(st.count for st in self._streams.values())

    def tenants(self) -> set[str]:
        with self.lock:
            return {t for t, _ in self._streams}

    def reset(self) -> None:
        with self.lock:
            self._streams.clear()
            self.pushes.clear()
            self.duplicates_dropped = 0

    # -- HTTP
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=100 << 20)
        app.router.add_post("/loki/api/v1/push", self._push)
        app.router.add_get("/loki/api/v1/query_range", self._query_range)
        app.router.add_get("/ready", self._ready)
        # not Loki: counters for tests and benches that run the receiver in another process
        app.router.add_get("/_test/stats", self._stats)
        app.router.add_post("/_test/reset", self._reset)
        return app

    async def _stats(self, request: web.Request) -> web.Response:
        with self.lock:
            body = {"entries": sum(st.count for st in self._streams.values()), "pushes": len(self.pushes),
                    "streams": len(self._streams), "duplicates_dropped": self.duplicates_dropped,
                    "push_statuses": [p.status for p in self.pushes[-1000:]],
                    "body_bytes": sum(p.body_bytes for p in self.pushes)}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.Response(status=204)

    async def _ready(self, request: web.Request) -> web.Response:
        return web.Response(text="ready\n")

    def _tenant(self, request: web.Request) -> str | None:
        t = request.headers.get("X-Scope-OrgID")
        if t:
            return t
        return None if self.require_tenant else "fake"

    async def _push(self, request: web.Request) -> web.Response:
        fault = await self.take_fault()
        if fault is not None:
            return fault
        tenant = self._tenant(request)
        if tenant is None:
            return web.Response(status=401, text="no org id\n")
        raw = await request.read()
        enc = request.headers.get("Content-Encoding", "")
        ctype = request.headers.get("Content-Type", "")
        if self.discard:
            with self.lock:
                self.pushes.append(PushRecord(tenant, ctype, enc, len(raw), 204))
            return web.Response(status=204)
        try:
            streams = self._decode(raw, enc, ctype)
            status, text = self._ingest(tenant, streams)
        except BadRequest as e:
            status, text, streams = 400, f"{e}\n", []
        with self.lock:
            self.pushes.append(PushRecord(
                tenant, ctype, enc, len(raw), status, streams if self.keep_entries else [],
                authorization=request.headers.get("Authorization"),
                body_digest=hashlib.sha256(raw).hexdigest(),
                entries=sum(len(entries) for _, entries in streams),
            ))
        if status == 204:
            return web.Response(status=204)
        return web.Response(status=status, text=text)

    def _decode(self, raw: bytes, enc: str, ctype: str) -> list[tuple[str, list[Entry]]]:
        if enc in ("", "snappy"):
            body = raw
        elif enc == "gzip":
            try:
                body = _gunzip(raw)
            except (OSError, EOFError, zlib.error) as e:
                raise BadRequest(f"gzip: invalid header: {e}") from None
        elif enc == "deflate":
            try:
                body = zlib.decompress(raw, -15)
            except zlib.error as e:
                raise BadRequest(f"flate: corrupt input: {e}") from None
        else:
            raise BadRequest(f'Content-Encoding "{enc}" not supported')
        media = ctype.split(";")[0].strip().lower()
        if media == "application/json":
            return self._decode_json(body)
        try:
            plain = snappy.decompress(body)
        except Exception as e:  # noqa: BLE001 - any snappy failure is Loki's 400
            raise BadRequest(f"snappy: corrupt input: {e}") from None
        return decode_push_proto(plain)

    def _decode_json(self, body: bytes) -> list[tuple[str, list[Entry]]]:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise BadRequest(f"loghttp.PushRequest: {e}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("streams", []), list):
            raise BadRequest("loghttp.PushRequest: expected an object with streams")
        out = []
        for s in doc.get("streams") or []:
            if not isinstance(s, dict):
                raise BadRequest("loghttp.Stream: expected an object")
            labels = s.get("stream") or {}
            if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
                raise BadRequest("loghttp.LabelSet: label values must be strings")
            for k in labels:
                if not LABEL_NAME.match(k):
                    raise BadRequest(f"error parsing labels: invalid label name {k!r}")
            sel = "{" + ", ".join(f"{k}={orjson.dumps(v).decode()}" for k, v in sorted(labels.items())) + "}"
            entries = []
            for v in s.get("values") or []:
                if type(v) is not list or not 2 <= len(v) <= 3:
                    raise BadRequest("loghttp.Entry: expected [ts, line] or [ts, line, metadata]")
                ts, line = v[0], v[1]
                if type(ts) is not str:
                    raise BadRequest("loghttp.Entry.Timestamp: MalformedStringError, expected a string")
                if not (ts.isdigit() or (ts[:1] == "-" and ts[1:].isdigit())) or not ts.isascii():
                    raise BadRequest(f"loghttp.Entry.Timestamp: invalid nanoseconds {ts!r}")
                if type(line) is not str:
                    raise BadRequest("loghttp.Entry.Line: expected a string")
                md: tuple[tuple[str, str], ...] = ()
                if len(v) == 3:
                    d = v[2]
                    if type(d) is not dict:
                        raise BadRequest("loghttp.Entry.StructuredMetadata: expected an object")
                    try:
                        "".join(d.values())  # every value a string: the common case, checked in C
                        md = tuple(d.items())
                    except TypeError:
                        pairs = []
                        for mk, mv in d.items():
                            if type(mv) is not str:
                                if isinstance(mv, bool) or not isinstance(mv, int | float):
                                    raise BadRequest("loghttp.Entry.StructuredMetadata: values must be strings") \
                                        from None
                                mv = str(mv)
                            pairs.append((mk, mv))
                        md = tuple(pairs)
                entries.append(_new_entry(Entry, (int(ts), line, md)))  # Entry(...) without its Python __new__
            out.append((sel, entries))
        return out

    def _validate_labels(self, text: str) -> dict[str, str]:
        try:
            matchers = parse_selector(text)
        except BadRequest as e:
            raise BadRequest(f"error parsing labels {text!r}: {e}") from None
        if not matchers:
            raise BadRequest("error at least one label pair is required per stream")
        labels: dict[str, str] = {}
        for name, _, value in matchers:
            if name in labels:
                raise BadRequest(f"stream '{text}' has duplicate label name: '{name}'")
            if len(name) > MAX_LABEL_NAME_LEN:
                raise BadRequest(f"stream '{text}' has label name too long: '{name}'")
            if len(value) > MAX_LABEL_VALUE_LEN:
                raise BadRequest(f"stream '{text}' has label value too long: '{value}'")
            if value != "":  # Prometheus labels: an empty value is no label
                labels[name] = value
        if not labels:
            raise BadRequest("error at least one label pair is required per stream")
        n = len(labels) - (1 if "service_name" in labels else 0)
        if n > self.max_label_names:
            raise BadRequest(
                f"stream '{text}' has {n} label names; limit {self.max_label_names}"
            )
        return labels

    def _ingest(self, tenant: str, streams: list[tuple[str, list[Entry]]]) -> tuple[int, str]:
        if not streams:
            return 204, ""
        # labels are validated for the whole request before anything is written
        parsed = [(self._validate_labels(text), entries) for text, entries in streams]
        failures: list[str] = []
        total = 0
        now_ns = time.time_ns()
        # only the default limits apply: checked inline per entry (what _entry_error decides then)
        plain = (self.reject_old_samples_max_age is None and self.creation_grace_period is None
                 and not self.ordered and self.allow_structured_metadata)
        keep = self.keep_entries
        with self.lock:
            for labels, entries in parsed:
                key = (tenant, tuple(sorted(labels.items())))
                st = self._streams.get(key)
                if st is None:
                    st = self._streams[key] = _Stream(labels)
                keys = st.keys
                for e in entries:
                    total += 1
                    if plain and len(e.line) <= MAX_LINE_SIZE and len(e.metadata) <= MAX_SM_ENTRIES \
                            and e.ts >= st.highest - UNORDERED_WINDOW_NS:
                        reason = ""  # the default limits, inlined: what _entry_error decides for this entry
                    else:
                        reason = self._entry_error(e, st, now_ns)
                    if reason:
                        ts = datetime.fromtimestamp(e.ts / 1e9, UTC).isoformat()
                        failures.append(f"entry with timestamp {ts} ignored, reason: '{reason}' for stream: "
                                        f"{selector_text(labels)},")
                        continue
                    n = len(keys)
                    keys.add(e if keep else hash(e))  # one hash of the entry, not two ("in" then "add")
                    if len(keys) == n:
                        self.duplicates_dropped += 1
                        continue
                    if keep:
                        st.entries.append(e)
                    st.count += 1
                    st.highest = max(st.highest, e.ts)
                    st.last = e.ts
        if failures:
            return 400, "\n".join(failures) + f"\nuser '{tenant}', total ignored: {len(failures)} out of {total}\n"
        return 204, ""

    def _entry_error(self, e: Entry, st: _Stream, now_ns: int) -> str:
        if self.reject_old_samples_max_age is not None and e.ts < now_ns - self.reject_old_samples_max_age * 1e9:
            return "greater_than_max_sample_age"
        if self.creation_grace_period is not None and e.ts > now_ns + self.creation_grace_period * 1e9:
            return "entry too far in future"
        if len(e.line) > MAX_LINE_SIZE:
            return f"max entry size '{MAX_LINE_SIZE}' bytes exceeded"
        if e.metadata:
            if not self.allow_structured_metadata:
                return "stream has structured metadata, but structured metadata is disallowed"
            if len(e.metadata) > MAX_SM_ENTRIES:
                return f"structured metadata has {len(e.metadata)} entries, limit {MAX_SM_ENTRIES}"
        if (e if self.keep_entries else hash(e)) in st.keys:
            return ""  # a duplicate is dropped silently, never an error
        if self.ordered:
            if st.count and e.ts < st.last:
                return "entry out of order"
        elif st.highest and e.ts < st.highest - UNORDERED_WINDOW_NS:
            return "entry too far behind"
        return ""

    # -- query_range (a subset: a stream selector, optional pipeline stages ignored)
    async def _query_range(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request)
        if tenant is None:
            return web.Response(status=401, text="no org id\n")
        q = request.query
        try:
            query = q.get("query", "")
            m = re.match(r"\s*(\{.*?\})\s*(\|.*)?$", query, re.S)
            if not m:
                raise BadRequest(f"parse error: {query!r}")
            matchers = parse_selector(m.group(1), equality_only=False)
            if not matchers:
                raise BadRequest("queries require at least one regexp or equality matcher")
            now = time.time_ns()
            end = _parse_time(q.get("end"), now)
            start = _parse_time(q.get("start"), end - 3600 * 10**9)
            limit = int(q.get("limit", "100"))
            direction = q.get("direction", "backward").lower()
            if direction not in ("forward", "backward"):
                raise BadRequest(f"invalid direction {direction!r}")
        except (BadRequest, ValueError) as e:
            return web.Response(status=400, text=f"{e}\n")
        rows: list[tuple[dict[str, str], Entry]] = []
        with self.lock:
            for (t, _), st in self._streams.items():
                if t != tenant or not _matches(st.labels, matchers):
                    continue
                rows.extend((st.labels, e) for e in st.entries if start <= e.ts < end)
        rows.sort(key=lambda r: r[1].ts, reverse=direction == "backward")
        rows = rows[:limit]
        # Loki 3 without categorize-labels: structured metadata is merged into the stream labels
        result: dict[tuple[tuple[str, str], ...], list[list[str]]] = {}
        for labels, e in rows:
            key = tuple(sorted({**labels, **dict(e.metadata)}.items()))
            result.setdefault(key, []).append([str(e.ts), e.line])
        body = {
            "status": "success",
            "data": {
                "resultType": "streams",
                "result": [{"stream": dict(k), "values": v} for k, v in result.items()],
                "stats": {},
            },
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")


def main() -> None:
    """Serve until SIGTERM, for benches and end-to-end tests that run the agent as a process::

        python -c "import sys; sys.path.insert(0, 'tests'); from receivers.loki import main; main()" --port N
    """
    import argparse
    import gc
    import signal
    import threading

    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ordered", action="store_true")
    ap.add_argument("--require-tenant", action="store_true")
    ap.add_argument("--discard", action="store_true", help="answer 204 without decoding (benches)")
    args = ap.parse_args()
    gc.set_threshold(100_000, 50, 50)  # it holds millions of small tuples: fewer, cheaper GC passes
    rx = LokiReceiver(args.port, ordered=args.ordered, require_tenant=args.require_tenant,
                      discard=args.discard).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    print(f"loki receiver on {rx.url}", flush=True)
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    rx.stop()


def selector_text(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}={orjson.dumps(v).decode()}" for k, v in sorted(labels.items())) + "}"


def _matches(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for name, op, value in matchers:
        have = labels.get(name, "")
        if op == "=" and have != value:
            return False
        if op == "!=" and have == value:
            return False
        if op == "=~" and not re.fullmatch(value, have):
            return False
        if op == "!~" and re.fullmatch(value, have):
            return False
    return True

