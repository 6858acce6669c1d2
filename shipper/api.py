"""The narrow interfaces between the rooms: sources, the spool, sinks.

Data flows one way (see docs/architecture.md)::

    source --Batch--> emit() --> labels --> spool (SQLite, one transaction) --> sink workers --> sinks

* A **source** produces :class:`Batch` es: events plus the source's new *positions*
  (checkpoints). ``await emit(batch)`` captures the batch and returns once the batch *before*
  it is durable in the spool (one batch in flight, so reading overlaps the commit); the
  runtime commits the last one before it stops. Events and positions commit together, in
  order, so what is durable is always a prefix of what was emitted: after a crash a source
  resumes from ``ctx.positions`` (what the spool committed), and nothing is lost.
* A **sink** gets lists of already-serialised events from its own spool cursor and
  either acknowledges them (returns), rejects some for good (:class:`Delivery.rejected`, they
  go to the dead-letter file), or raises :class:`RetryableError` (the worker backs off and
  sends the same bytes again).
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from parsers.events import Event

if TYPE_CHECKING:  # the offload process imports this module and never runs an event loop
    import asyncio
    from collections.abc import Iterable

    from .pipeline.spool_rows import AnnexedRow
    from .sinks.loki_annex import Taken

Position = Any  # JSON-able value: a source's checkpoint for one key


@dataclass
class Batch:
    """Events and the positions that become true once the events are durable.

    ``positions`` maps a checkpoint key (unique across the agent, e.g. ``file:<identity>`` or
    ``redis:<url>:slowlog``) to a JSON-able value. ``None`` as a value deletes the key.
    A batch may carry positions and no events (e.g. skipping a file to its end).
    """

    events: list[Event]
    positions: dict[str, Position] = field(default_factory=dict)


#: returns once the batch is captured and the previous one is durable (see the module docstring)
Emit = Callable[[Batch], Awaitable[None]]


@dataclass
class SourceContext:
    """What the runtime hands a source when it starts."""

    emit: Emit
    #: committed positions whose key starts with the source's ``key_prefix``
    positions: dict[str, Position]
    stop: asyncio.Event
    state_dir: str
    #: records an ``agent`` event that is not tied to this source's positions
    #: (warnings, data gaps, Redis unreachable...). Awaiting it makes it durable.
    emit_agent: Callable[[Event], Awaitable[None]] | None = None
    #: adds and stops other sources while the agent runs (``add(name, config, labels)``,
    #: ``stop(name)``): what a discovery source (``type: kubernetes``) drives; see
    #: :class:`shipper.pipeline.runtime.SourceControl`
    sources: Any = None


class Source(abc.ABC):
    """A producer of events. One instance per configured source (a glob may cover many files)."""

    #: human name for logs and metrics, e.g. ``file:/var/log/redis/*.log``
    name: str = "source"
    #: every checkpoint key this source writes starts with this prefix
    key_prefix: str = ""

    @abc.abstractmethod
    async def run(self, ctx: SourceContext) -> None:
        """Produce batches until ``ctx.stop`` is set, then return promptly.

        Must not raise for expected trouble (file missing, Redis down): retry with backoff,
        log it, count it. An exception escaping ``run`` is a bug; the runtime logs it and
        restarts the source after a pause.
        """


class RetryableError(Exception):
    """The sink could not deliver now (429, 5xx, timeout, connection refused).

    ``retry_after`` (seconds) honours a server's Retry-After. ``acked`` is the number of
    leading events of the batch that *were* durably accepted, if the sink knows it.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, status: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class TooLarge(Exception):
    """The receiver (or a gateway in front of it) answered 413: this request body is over its
    size limit.

    Deliberately *not* a permanent error: the sinks turn one of those into "every event of the
    batch rejected" (dead letters), which would throw away a whole batch because of a size limit
    the agent can respect. A TooLarge passes through the sinks unchanged and the runtime's sink
    worker splits the batch instead (shipper/pipeline/runtime.py, ``SinkWorker``).
    """

    def __init__(self, message: str, *, status: int = 413, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body


@dataclass
class Delivery:
    """Outcome of a successful :meth:`Sink.send`: everything acknowledged except ``rejected``.

    ``rejected`` holds (index into the batch, reason) for events the receiver refused for
    good (Loki 400, Elasticsearch mapping error): they are dead-lettered, counted and logged,
    and the pipeline moves on.
    """

    rejected: list[tuple[int, str]] = field(default_factory=list)
    #: events the receiver already had (Elasticsearch 409 on create): delivered, counted apart
    duplicates: int = 0


class SpooledEvent:
    """An event as the spool hands it to a sink: its canonical bytes, the parsed dict, and the
    annex the spool stored beside the bytes for this sink (see :class:`Annexer`), if any.

    The dict is parsed from ``raw`` on first use when the spool handed out bytes only: a sink
    that builds its body from annexes never pays for the ``orjson.loads``.
    """

    __slots__ = ("seq", "raw", "annex", "_event")

    def __init__(self, seq: int, event: Event | None, raw: bytes, annex: bytes | None = None) -> None:
        self.seq = seq  # spool row id, increasing
        self.raw = raw  # canonical JSON (parsers.events.dumps) -- send these bytes, never re-serialise
        self.annex = annex
        self._event = event

    @property
    def event(self) -> Event:
        ev = self._event
        if ev is None:
            ev = self._event = orjson.loads(self.raw)
        return ev

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SpooledEvent):
            return NotImplemented
        return (self.seq, self.raw, self.annex) == (other.seq, other.raw, other.annex)

    __hash__ = None  # type: ignore[assignment] - mutable: not a dict key

    def __repr__(self) -> str:
        return f"SpooledEvent(seq={self.seq!r}, raw={self.raw!r}, annex={self.annex!r})"


class Annexer(abc.ABC):
    """A sink's per-event precomputation, made once when the spool seals the event and stored
    beside its canonical bytes, so that building a request body needs no parsing of the bytes.

    Why: the agent has the event's dict in hand when it seals it; a sink that re-derives its
    view of the event (Loki: stream, timestamp in ns, structured metadata) from the stored bytes
    parses every event a second time. The contract:

    * :meth:`annex` is a pure function of the event and of the settings named by
      :attr:`fingerprint`; it returns ``b""`` when it cannot promise the contract for this event
      (the batch holding it then takes the sink's ordinary path);
    * an annex never contains ``b"\\n"`` (the spool joins an event row's annexes with it);
    * :meth:`encode_annexed` of a batch whose every event has an annex returns exactly the
      :class:`Encoded` the sink's ordinary path builds from the events (same bytes: a replay must
      be one the receiver recognises).

    The spool keeps the annexes of one sink (recorded with the fingerprint; annexes written under
    another fingerprint are discarded when it opens) and hands them to that sink only.
    """

    #: changes whenever a setting the annex depends on changes (and with the annex's format)
    fingerprint: str = ""

    @abc.abstractmethod
    def annex(self, event: Event, raw: bytes) -> bytes:
        """The annex of a sealed event (``raw`` its canonical bytes), or ``b""``."""

    @abc.abstractmethod
    def encode_annexed(self, batch: list[SpooledEvent]) -> Encoded:
        """The body of ``batch`` built from its events' annexes (each one non-empty)."""

    def encode_rows(self, rows: Iterable[AnnexedRow], max_bytes: int,
                    max_events: int) -> tuple[Encoded, Taken] | None:
        """The body of the next batch (up to ``max_bytes`` of events' bytes and ``max_events``)
        built straight from the stored rows (``spool_rows.annexed_rows_after``), and which events it
        holds: the same body as :meth:`encode_annexed` of that batch, without an object per event.
        None when the batch must be read as events (an event without an annex; the default)."""
        return None


@dataclass
class Encoded:
    """A batch turned into one request body, ready to send: a pure function of the batch's bytes.

    Sinks that can split "build the body" from "send it" let the runtime build bodies in a
    second process (shipper/pipeline/offload.py) while the agent's own process parses and sends.
    """

    body: bytes
    headers: dict[str, str]
    #: (index in the batch, reason) of events that cannot be sent at all
    rejected: list[tuple[int, str]] = field(default_factory=list)
    #: events in the body
    entries: int = 0
    #: sizes of the body's consecutive per-event parts, for sinks that re-send some of them
    #: (Elasticsearch retries only the items answered 429/5xx); the body is then uncompressed
    part_sizes: list[int] | None = None


class Sink(abc.ABC):
    name: str = "sink"
    #: a batch leaves when it reaches this many bytes of canonical JSON...
    max_batch_bytes: int = 1 << 20
    #: ...or when its oldest event has waited this long (seconds)
    max_wait: float = 1.0
    #: backoff bounds the runtime's sink worker uses between attempts (seconds)
    retry_initial: float = 0.5
    retry_max: float = 30.0
    #: the receiver drops a re-sent event itself (Loki: byte-identical entry; Elasticsearch:
    #: ``create`` of an existing ``_id``): the worker may then send the next batch while the
    #: acknowledgement of this one is being committed. False: every batch's cursor move is
    #: durable before the next is sent (a file written twice would show the duplicate).
    idempotent: bool = False

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections. Called once before the first send."""

    @abc.abstractmethod
    async def send(self, batch: list[SpooledEvent]) -> Delivery:
        """Deliver the batch, or raise :class:`RetryableError`. Must be idempotent:
        the same batch may be sent again after a crash or a timeout."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Flush and release resources."""

    def annexer(self) -> Annexer | None:
        """The sink's :class:`Annexer`, or None (the default: bodies are built from the events)."""
        return None

    def encoder_spec(self) -> tuple[str, dict[str, Any]] | None:
        """``("module:factory", kwargs)`` of a picklable-by-name pure encoder whose
        ``encode(batch) -> Encoded`` builds exactly the body :meth:`send` would send, or None
        when the sink cannot split building from sending (it is then always sent in-process)."""
        return None

    async def send_encoded(self, encoded: Encoded, count: int) -> Delivery:
        """Send a body built by the encoder of :meth:`encoder_spec` for a batch of ``count``
        events; same outcomes as :meth:`send`."""
        raise NotImplementedError(f"sink {self.name} has no encoder")
