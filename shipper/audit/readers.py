"""Read an audit trail back: from the local sink, Loki, Elasticsearch -- and the agent's own view.

Every reader yields ``(raw line, where)``: the canonical bytes the spool sealed, exactly as the
sink holds them, and a location a human can go and look at (``events-....jsonl:17``, a Loki
stream and timestamp, an Elasticsearch ``index/_id``). The checker (:mod:`.verify`) needs
nothing else.

* **local** -- the JSON Lines files of ``type: local`` (``events-*.jsonl``) or any file of
  ``type: file``: one sealed event per line.
* **Loki** -- ``GET /loki/api/v1/query_range`` with ``direction=forward``: Loki returns at most
  ``limit`` entries per query, the *earliest* ones (grafana/loki#9459, #22335), so the reader
  walks forward: the next query starts at the last timestamp seen (``start`` is inclusive,
  ``end`` exclusive: grafana/loki#8847, #597), and entries at that boundary
  timestamp that were already read are skipped (keyed by stream labels + timestamp + line, the
  same identity Loki dedupes on). A page made of one timestamp only cannot advance: the limit
  is doubled up to ``max_limit`` (Loki's ``max_entries_limit_per_query``, 5000 by default).
  Windows longer than ``max_window`` (default 24 h, below Loki's 721 h ``max_query_length``)
  are queried one after the other.
* **Elasticsearch** -- ``POST /<index>/_search`` sorted by ``redis_shipper.stream``,
  ``event.sequence``, ``redis_shipper.id`` (a total order: ids are the ``_id``s, unique) with
  ``search_after``; the line is ``event.original``. ``unmapped_type`` keeps an index without one
  of the sort fields searchable.
* **the agent's state** -- chain heads and the rows a sink has not acknowledged yet, read from
  the spool in one read transaction (SQLite WAL lets a reader run beside the agent), and the
  sink's dead-letter file. They explain seqs missing from a sink (pending, dead-lettered) and
  anchor the tail.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from parsers.events import dumps

from ..config import ElasticsearchSinkConfig, LokiSinkConfig
from ..pipeline import spool_rows

Line = tuple[bytes, str]

log = logging.getLogger(__name__)

#: Loki's default ``max_entries_limit_per_query``
LOKI_MAX_LIMIT = 5000
#: one query_range covers at most this much time (Loki's max_query_length is 721 h by default)
LOKI_MAX_WINDOW_NS = 24 * 3600 * 10**9
ES_PAGE = 1000


class ReadError(Exception):
    """The trail could not be read (connection refused, HTTP error, unreadable state)."""


# ---------------------------------------------------------------------------------- files
def split_torn(raw: bytes) -> tuple[bytes, dict[str, Any]] | None:
    """``(fragment, event)`` when ``raw`` is a torn write: the start of an event cut short with a
    whole event appended on the same line (what a retry after a short write leaves), else None."""
    start = raw.find(b'{"', 1)
    while start > 0:
        try:
            ev = orjson.loads(raw[start:])
        except orjson.JSONDecodeError:
            ev = None
        if isinstance(ev, dict):
            return raw[:start], ev
        start = raw.find(b'{"', start + 1)
    return None


def read_files(paths: Iterable[str | Path], *, missing_ok: bool = False,
               on_unfinished: Callable[[str], None] | None = None) -> Iterator[Line]:
    """Each line of each file, with ``file:line`` as its location.

    With ``on_unfinished``, the last line of the last file is not yielded when it has no
    newline yet (a live sink is writing it: the event is sealed and will be there whole), and
    ``on_unfinished(where)`` is called instead.
    """
    paths = list(paths)
    for index, p in enumerate(paths):
        path = Path(p)
        try:
            f = open(path, "rb")  # noqa: SIM115 - closed below, iterated lazily
        except FileNotFoundError:
            if missing_ok:
                continue  # deleted by the sink's retention since it was listed: that history is gone
            raise ReadError(f"cannot read {path}: no such file") from None
        except OSError as e:
            raise ReadError(f"cannot read {path}: {e.strerror}") from None
        with f:
            last_file = index == len(paths) - 1
            for n, line in enumerate(f, 1):
                if last_file and on_unfinished is not None and not line.endswith(b"\n"):
                    on_unfinished(f"{path.name}:{n}")
                    continue
                yield line.rstrip(b"\n"), f"{path.name}:{n}"


def read_local(directory: str | Path, on_unfinished: Callable[[str], None] | None = None) -> Iterator[Line]:
    """The local sink's files (``events-*.jsonl``), oldest first."""
    from ..sinks.local import event_files

    d = Path(directory)
    if not d.is_dir():
        raise ReadError(f"no local sink directory {d}")
    yield from read_files(event_files(d), missing_ok=True, on_unfinished=on_unfinished)


# ---------------------------------------------------------------------------------- agent state
@dataclass
class AgentState:
    """What the agent itself knows, read in one transaction."""

    heads: dict[str, tuple[int, str]]
    #: canonical bytes of the events the sink has not acknowledged yet
    pending: list[bytes]
    #: False when the sink has no cursor (never ran): ``pending`` is then every spooled row
    sink_known: bool


def spool_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / "spool.sqlite"


def read_agent_state(state_dir: str | Path, sink: str | None) -> AgentState:
    """Chain heads and the sink's pending rows from the spool, without writing to it."""
    path = spool_path(state_dir)
    if not path.exists():
        raise ReadError(f"no spool at {path}")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error as e:
        raise ReadError(f"cannot open {path} read-only: {e}") from None
    try:
        db.execute("BEGIN")  # one snapshot for heads and pending rows
        heads = {s: (int(q), str(h)) for s, q, h in db.execute("SELECT stream, seq, hash FROM chain")}
        pending: list[bytes] = []
        known = False
        if sink is not None:
            row = db.execute("SELECT acked FROM sink_cursors WHERE sink = ?", (sink,)).fetchone()
            known = row is not None
            after = int(row[0]) if row else -1
            pending = spool_rows.stored_raws_after(db, after)
        db.execute("COMMIT")
    except sqlite3.Error as e:
        raise ReadError(f"cannot read {path}: {e}") from None
    finally:
        db.close()
    return AgentState(heads, pending, known)


def read_dead_letters(state_dir: str | Path, sink: str,
                      on_invalid: Callable[[str, str], None] | None = None) -> Iterator[Line]:
    """Canonical bytes of the events ``sink`` refused for good (``deadletter/<sink>.jsonl``).

    A line that holds no dead-lettered event is reported, never skipped silently:
    ``on_invalid(where, reason)`` (the verifier's :meth:`~.verify.Verifier.add_invalid`), else a
    warning naming the count and the first one.
    """
    path = Path(state_dir) / "deadletter" / f"{sink}.jsonl"
    if not path.exists():
        return
    bad: list[str] = []

    def invalid(where: str, reason: str) -> None:
        if on_invalid is not None:
            on_invalid(where, reason)
        bad.append(where)

    with open(path, "rb") as f:
        for n, line in enumerate(f, 1):
            where = f"{path.name}:{n}"
            if not line.strip():
                continue
            try:
                rec = orjson.loads(line)
                ev = rec["event"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                ev = None
            if not isinstance(ev, dict):
                invalid(where, "not a dead-letter record (no JSON object with an event)")
                continue
            # the file embeds the raw bytes as a JSON value; re-encoding canonically gives
            # them back (they were canonical), which the verifier then hashes
            yield dumps(ev), where
    if bad and on_invalid is None:
        log.warning("%s: %d line(s) are not dead-letter records (first at %s)", path, len(bad), bad[0])


# ---------------------------------------------------------------------------------- Loki
def loki_base_url(url: str) -> str:
    base = url.rstrip("/")
    for suffix in ("/loki/api/v1/push", "/api/prom/push"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def default_loki_selector(labels: dict[str, str], discovered: Iterable[str] = ()) -> str:
    """The agent's static labels (those discovery cannot replace) as a stream selector, or
    ``{source=~".+"}`` (every stream the sink wrote has a ``source`` label)."""
    from ..sinks.loki import sanitize_label_name, selector

    skip = set(discovered)
    static = {sanitize_label_name(k): v for k, v in labels.items() if k not in skip and v and "${" not in v}
    static = {k: v for k, v in static.items() if k}
    if static:
        return selector(static)
    return '{source=~".+"}'


async def read_loki(
    cfg: LokiSinkConfig,
    *,
    selector: str,
    start_ns: int,
    end_ns: int,
    limit: int = 1000,
    max_limit: int = LOKI_MAX_LIMIT,
    max_window_ns: int = LOKI_MAX_WINDOW_NS,
) -> AsyncIterator[Line]:
    """Every entry of the selected streams in [start_ns, end_ns), paginated forward."""
    from ..sinks import http

    headers = http.auth_headers(basic_auth=cfg.basic_auth, bearer_token_file=cfg.bearer_token_file,
                                bearer_token_env=cfg.bearer_token_env)
    if cfg.tenant:
        headers["X-Scope-OrgID"] = cfg.tenant
    url = loki_base_url(cfg.url) + "/loki/api/v1/query_range"
    session = http.make_session(tls=cfg.tls, timeout=cfg.retry.timeout, headers=headers)
    try:
        w_start = start_ns
        while w_start < end_ns:
            w_end = min(end_ns, w_start + max_window_ns)
            async for line in _loki_window(session, url, selector, w_start, w_end, limit, max_limit):
                yield line
            w_start = w_end
    finally:
        await session.close()


async def _loki_window(session: Any, url: str, selector: str, start: int, end: int, limit: int,
                       max_limit: int) -> AsyncIterator[Line]:
    seen: set[tuple[Any, ...]] = set()  # entries at timestamp == start already yielded
    while True:
        entries = await _loki_page(session, url, selector, start, end, limit)
        entries.sort(key=lambda e: e[0])
        for ts, labels, line in entries:
            if not start <= ts < end:
                continue  # never trust a page past its bounds (grafana/loki#5451): windows must not overlap
            key = (ts, labels, line)
            if ts == start and key in seen:
                continue
            if ts == start:
                seen.add(key)
            yield line.encode("utf-8"), f"loki {_labels_text(labels)} @{ts}"
        if len(entries) < limit:
            return
        last = entries[-1][0]
        if last == start:
            # a full page of one timestamp: the next query would return the same page
            if limit >= max_limit:
                raise ReadError(f"loki: more than {limit} entries share timestamp {start}; raise "
                                "max_entries_limit_per_query and pass a larger --loki-limit")
            limit = min(max_limit, limit * 2)
            continue
        seen = {(ts, labels, line) for ts, labels, line in entries if ts == last}
        start = last


async def _loki_page(session: Any, url: str, selector: str, start: int, end: int,
                     limit: int) -> list[tuple[int, tuple[tuple[str, str], ...], str]]:
    from ..sinks.http import redact_url

    params = {"query": selector, "start": str(start), "end": str(end), "limit": str(limit),
              "direction": "forward"}
    try:
        r = await session.get(url, params=params)
        body, status = r.body, r.status
    except (TimeoutError, OSError) as e:
        raise ReadError(f"loki: cannot query {redact_url(url)}: {type(e).__name__}: {e}") from None
    if status != 200:
        raise ReadError(f"loki: HTTP {status} from {redact_url(url)}: {body[:300].decode('utf-8', 'replace')}")
    try:
        doc = orjson.loads(body)
        result = doc["data"]["result"]
        out = []
        for st in result:
            labels = tuple(sorted((st.get("stream") or {}).items()))
            for v in st["values"]:
                out.append((int(v[0]), labels, str(v[1])))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError) as e:
        raise ReadError(f"loki: unexpected query_range answer: {e}") from None
    return out


def _labels_text(labels: tuple[tuple[str, str], ...]) -> str:
    shown = [(k, v) for k, v in labels if k in ("source", "level", "job", "instance")]
    return "{" + ",".join(f"{k}={v}" for k, v in shown) + "}"


# ---------------------------------------------------------------------------------- Elasticsearch
def es_query(*, start_ns: int | None, end_ns: int | None, streams: Iterable[str] | None) -> dict[str, Any]:
    filters: list[dict[str, Any]] = []
    if start_ns is not None or end_ns is not None:
        rng: dict[str, Any] = {"format": "strict_date_optional_time"}
        if start_ns is not None:
            rng["gte"] = _iso(start_ns)
        if end_ns is not None:
            rng["lt"] = _iso(end_ns)
        filters.append({"range": {"@timestamp": rng}})
    if streams:
        filters.append({"terms": {"redis_shipper.stream": sorted(set(streams))}})
    return {"bool": {"filter": filters}} if filters else {"match_all": {}}


ES_SORT = [
    {"redis_shipper.stream": {"order": "asc", "unmapped_type": "keyword"}},
    {"event.sequence": {"order": "asc", "unmapped_type": "long"}},
    {"redis_shipper.id": {"order": "asc", "unmapped_type": "keyword"}},
]


async def read_elasticsearch(
    cfg: ElasticsearchSinkConfig,
    *,
    start_ns: int | None = None,
    end_ns: int | None = None,
    streams: Iterable[str] | None = None,
    page: int = ES_PAGE,
    on_invalid: Callable[[str, str], None] | None = None,
) -> AsyncIterator[Line]:
    """Every document of the sink's index (or data stream) in the window, as ``event.original``."""
    from ..sinks import http

    headers = {
        **http.auth_headers(basic_auth=cfg.basic_auth, api_key=cfg.api_key, api_key_file=cfg.api_key_file,
                            api_key_env=cfg.api_key_env),
        "Content-Type": "application/json", "Accept": "application/json",
    }
    url = f"{cfg.url.rstrip('/')}/{quote(cfg.index, safe='')}/_search"
    query = es_query(start_ns=start_ns, end_ns=end_ns, streams=streams)
    session = http.make_session(tls=cfg.tls, timeout=cfg.retry.timeout, headers=headers)
    after: list[Any] | None = None
    try:
        while True:
            body: dict[str, Any] = {"size": page, "sort": ES_SORT, "query": query, "track_total_hits": False,
                                    "_source": ["event.original"]}
            if after is not None:
                body["search_after"] = after
            try:
                r = await session.post(url, orjson.dumps(body))
                data, status = r.body, r.status
            except (TimeoutError, OSError) as e:
                raise ReadError(f"elasticsearch: cannot search {http.redact_url(url)}: {type(e).__name__}: {e}") \
                    from None
            if status != 200:
                raise ReadError(f"elasticsearch: HTTP {status} from {http.redact_url(url)}: "
                                f"{data[:300].decode('utf-8', 'replace')}")
            try:
                hits = orjson.loads(data)["hits"]["hits"]
            except (orjson.JSONDecodeError, KeyError, TypeError) as e:
                raise ReadError(f"elasticsearch: unexpected _search answer: {e}") from None
            for h in hits:
                where = f"{h.get('_index')}/{h.get('_id')}"
                original = _get(h.get("_source") or {}, "event.original")
                if isinstance(original, str):
                    yield original.encode("utf-8"), where
                elif on_invalid is not None:
                    on_invalid(where, "document has no event.original (shipped by an older agent?)")
            if len(hits) < page:
                return
            after = hits[-1].get("sort")
            if not after:
                raise ReadError("elasticsearch: hits carry no sort values; cannot paginate")
    finally:
        await session.close()


def _get(doc: dict[str, Any], path: str) -> Any:
    if path in doc:
        return doc[path]
    head, _, rest = path.partition(".")
    sub = doc.get(head)
    return _get(sub, rest) if isinstance(sub, dict) and rest else None


def _iso(ns: int) -> str:
    from datetime import UTC, datetime

    dt = datetime.fromtimestamp(ns // 10**9, UTC).replace(microsecond=(ns % 10**9) // 1000)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
