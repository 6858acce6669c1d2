"""The Loki sink: one ``POST /loki/api/v1/push`` per batch, JSON+gzip or protobuf+snappy.

How a spooled event becomes a Loki entry (docs/sinks.md has the reference):

* **stream labels** = the event's ``labels`` (set by the pipeline: job, instance, env...) plus
  the configured ``stream_labels`` keys read from the event (default ``source`` and ``level``).
  Names are sanitised to ``[a-zA-Z_][a-zA-Z0-9_]*``; empty values are dropped (Prometheus
  semantics: an empty label is no label); at most 15 names (Loki's
  ``max_label_names_per_series``) -- the overflow goes to structured metadata, never silently away.
* **line** = the canonical JSON bytes from the spool (``SpooledEvent.raw``), untouched.
* **timestamp** = the event's own ``timestamp`` in nanoseconds, never the time of sending.
* **structured metadata** (Loki 3, ``structured_metadata: true``) = the high-cardinality keys
  (id, origin, stream, file, offset, seq, pid, role, category, event) as strings.

All three are pure functions of the spooled bytes, so a replay after a crash or a timeout is
byte-identical and Loki drops it as a duplicate (same timestamp, line and metadata).

Why JSON+gzip is the default encoding: measured in bench/loki_bench.py (docs/sinks.md), in
Python it is both cheaper to build and smaller on the wire than protobuf+snappy. Protobuf stays
available for gateways that accept only it.

Answers: 2xx 200/204 = delivered; another 2xx (Loki's 260 "ingestion blocked") means Loki
discarded the data -> the batch is rejected (dead-lettered, so nothing is lost silently);
400/413/422 = rejected for good (Loki writes the valid entries of a 400 and lists the others in
a free-text body, which is not a contract to parse; the dead-letter file keeps all of them);
429/5xx/timeouts/refused and auth/URL mistakes (401/403/404) = RetryableError.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from shipper.api import Delivery, Encoded, Sink, SpooledEvent
from shipper.sinks.loki_annex import LokiAnnexer
from shipper.sinks.loki_encoder import (  # noqa: F401 - re-exported: the sink's public names
    FALLBACK_LABELS,
    MAX_LABELS,
    METADATA_KEYS,
    LokiEncoder,
    _metadata_of,
    quote_label_value,
    sanitize_label_name,
    selector,
    timestamp_ns,
)

if TYPE_CHECKING:
    from shipper.config import LokiSinkConfig

# The HTTP client and the protobuf classes are imported where they are used: most
# agents use the JSON encoding, and the tests and benches build bodies without a server.

log = logging.getLogger(__name__)

PUSH_PATH = "/loki/api/v1/push"
#: payloads at least this big are compressed on a worker thread
OFFLOAD_BYTES = 64 << 10

class LokiSink(Sink):
    """Pushes batches of spooled events to Loki (see the module docstring for the mapping)."""

    idempotent = True  # a replay is byte-identical: Loki drops it

    def __init__(self, cfg: LokiSinkConfig, *, name: str = "loki"):
        self.cfg = cfg
        self.encoder = LokiEncoder(encoding=cfg.encoding, structured_metadata=cfg.structured_metadata,
                                   stream_labels=list(cfg.stream_labels), sink_name=name)
        self.max_batch_bytes = cfg.batch.max_bytes
        self.max_wait = cfg.batch.max_wait
        base = cfg.url.rstrip("/")
        self.url = base if base.endswith(PUSH_PATH) else base + PUSH_PATH
        self._http: Any = None  # http.LazySession once started
        self._headers: dict[str, str] = {}
        self._annexer = LokiAnnexer(self.encoder) if cfg.encoding == "json" else None

    @property  # type: ignore[override]
    def name(self) -> str:
        """The sink's name is its encoder's (the runtime renames sinks after building them)."""
        return self.encoder.name

    @name.setter
    def name(self, value: str) -> None:
        self.encoder.name = value

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Read secrets and build the TLS context: bad secrets or TLS files fail here. The
        pooled connection comes with the first request."""
        from shipper.sinks import http

        cfg = self.cfg
        headers = http.auth_headers(
            basic_auth=cfg.basic_auth,
            bearer_token_file=cfg.bearer_token_file,
            bearer_token_env=cfg.bearer_token_env,
        )
        if cfg.tenant:
            headers["X-Scope-OrgID"] = cfg.tenant
        self._headers = headers
        session = http.LazySession(cfg.tls, cfg.retry.timeout)
        session.prepare()
        self._http = session

    async def close(self) -> None:
        session, self._http = self._http, None
        if session is not None:
            await session.close()

    def annexer(self) -> LokiAnnexer | None:
        """The JSON encoding's annex (shipper/sinks/loki_annex.py); protobuf has none."""
        return self._annexer

    def encode(self, batch: list[SpooledEvent]) -> Encoded:
        """The body :meth:`send` would post for ``batch``. Pure: the bench and the tests call it
        without a server."""
        return self.encoder.encode(batch)

    def encoder_spec(self) -> tuple[str, dict[str, Any]]:
        """The encoder by its own module, not this one: the offload process then imports neither
        asyncio nor the HTTP client (this module's imports), 4.5 MB less RSS in that process."""
        enc = self.encoder
        return "shipper.sinks.loki_encoder:LokiEncoder", {
            "encoding": enc.encoding, "structured_metadata": enc.structured_metadata,
            "stream_labels": list(enc.stream_labels), "sink_name": self.name,
        }

    # ----------------------------------------------------------------- delivery
    async def send(self, batch: list[SpooledEvent]) -> Delivery:
        if not batch:
            return Delivery()
        enc = self.encoder
        payload, headers, rejected, n = enc.build(batch)
        if n == 0:  # everything was unusable; Loki would answer 422 to zero streams
            return Delivery(rejected=rejected)
        if len(payload) >= OFFLOAD_BYTES:
            # deflate and snappy release the GIL: compressing on a worker thread lets the sources
            # parse on the event loop meanwhile (measured in bench/loki_bench.py)
            body = await asyncio.get_running_loop().run_in_executor(None, enc.compress, payload)
        else:
            body = enc.compress(payload)
        return await self.send_encoded(Encoded(body, headers, rejected, n), len(batch))

    async def send_encoded(self, encoded: Encoded, count: int) -> Delivery:
        from shipper.sinks import http

        rejected, headers, body = encoded.rejected, encoded.headers, encoded.body
        if encoded.entries == 0:  # everything was unusable; Loki would answer 422 to zero streams
            return Delivery(rejected=rejected)
        if self._http is None:
            await self.start()
        resp = await http.post(
            self._http.get(), self.url, body, {**self._headers, **headers}, what=f"loki {self.name}",
            server_hostname=self.cfg.tls.server_name if self.cfg.tls else None,
        )
        if resp.status in (200, 204):
            return Delivery(rejected=rejected)
        sent = sorted(set(range(count)) - {i for i, _ in rejected})
        if 200 <= resp.status < 300:
            reason = (f"loki discarded the batch (HTTP {resp.status}, ingestion blocked?): "
                      f"{resp.text(http.MAX_REASON_CHARS)}")
            log.error("loki sink %s: %s", self.name, reason)
            return Delivery(rejected=rejected + [(i, reason) for i in sent])
        try:
            http.classify(resp, f"loki {self.name}")
        except http.PermanentError as e:
            reason = f"loki HTTP {e.status}: {e.body}"
            return Delivery(rejected=sorted(rejected + [(i, reason) for i in sent]))
        raise AssertionError("unreachable: classify() returns only for 2xx")  # pragma: no cover
