"""The agent's one event loop: sources -> labels -> spool -> sink workers.

One asyncio loop runs every source, every sink worker and the timers; blocking work (file
reads, SQLite) runs on threads owned by the room that needs it. Shutdown on SIGTERM/SIGINT:
stop the sources (they return after their current batch is durable), keep the sink workers
flushing the spool for at most ``shutdown_timeout`` seconds, then close everything. Whatever
was not delivered stays in the spool and is sent at the next start: exit 0 loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import tzinfo
from pathlib import Path
from typing import Any

import orjson

from parsers.events import Event, format_epoch, make_event

from ..api import Batch, Delivery, Encoded, RetryableError, Sink, Source, SourceContext, SpooledEvent, TooLarge
from ..audit.anchor import AnchorTimer
from ..audit.verify import seq_ranges_field
from ..config import AgentConfig, ConfigError, named_sinks
from ..observe import metrics
from ..observe.health import Health
from ..sinks import limits
from ..util.backoff import Backoff
from ..util.tz import host_timezone, parse_timezone
from ..util.waits import wait_or_stop
from .drop import Dropper
from .dynamic import DynamicSources
from .offload import Offloader, OffloadUnavailable, Prepared
from .spool import Spool

log = logging.getLogger("redis_shipper.runtime")


def resolve_timezone(name: str | None) -> tzinfo:
    """The zone of Redis's local timestamps: the configured name, else the host's zone."""
    if name:
        try:
            return parse_timezone(name)
        except ValueError as e:
            raise ConfigError([("timezone", str(e))]) from None
    return host_timezone()


def agent_event(event: str, message: str, *, level: str = "warning", category: str = "other",
                **fields: Any) -> Event:
    """An event about the agent itself (source ``agent``), stamped with the current time."""
    return make_event(
        timestamp=format_epoch(time.time()), source="agent", category=category, event=event,
        level=level, message=message, fields=fields,
    )


def source_name(sc: Any) -> str:
    """The name (and audit stream) of a configured source: ``file:<path>``, ``redis:<url without
    secrets>``, ``kubernetes:<node>``."""
    if sc.type == "file":
        return f"file:{sc.path}"
    if sc.type == "redis":
        from ..sources.redis.client import safe_url

        return f"redis:{safe_url(sc.url)}"
    return f"{sc.type}:{getattr(sc, 'node', '')}"


def build_source(sc: Any, tz: tzinfo, *, name: str | None = None) -> Source:
    """The source for one validated ``sources:`` entry; ``name`` (its audit stream) defaults to
    one derived from the entry."""
    if sc.type == "file":
        from ..sources.files.source import FileSource

        return FileSource(sc, tz=tz, name=name or source_name(sc), rotate_wait=sc.rotate_wait,
                          idle_flush=sc.idle_flush, stale_after=sc.stale_after)
    if sc.type == "redis":
        from ..sources.redis.source import RedisSource

        return RedisSource(sc, name=name or source_name(sc))
    if sc.type == "kubernetes":
        from ..sources.kubernetes.source import KubernetesSource

        return KubernetesSource(sc, name=name or source_name(sc))
    raise ConfigError([("sources[].type", f"unknown source type {sc.type!r}")])  # pragma: no cover


def build_sources(cfg: AgentConfig, tz: tzinfo) -> list[Source]:
    return [build_source(sc, tz) for sc in cfg.sources]


def build_sinks(cfg: AgentConfig) -> list[Sink]:
    sinks: list[Sink] = []
    for name, sc in named_sinks(cfg):
        if sc.type == "file":
            from ..sinks.file import FileSink

            sink: Sink = FileSink(sc)
        elif sc.type == "local":
            from ..sinks.local import LocalSink

            sink = LocalSink(sc, state_dir=cfg.state_dir)
        elif sc.type == "loki":
            from ..sinks.loki import LokiSink

            sink = LokiSink(sc)
        elif sc.type == "elasticsearch":
            from ..sinks.elasticsearch import ElasticsearchSink

            sink = ElasticsearchSink(sc)
        else:  # pragma: no cover
            raise ConfigError([("sinks", f"unknown sink type {sc.type!r}")])
        sink.name = name
        retry = getattr(sc, "retry", None)
        if retry is not None:  # the runtime owns backoff: hand it the sink's configured bounds
            sink.retry_initial = retry.initial
            sink.retry_max = retry.max
        sinks.append(sink)
    return sinks


class DeadLetters:
    """Events a sink refused for good, appended as JSON Lines to ``state_dir/deadletter/<sink>.jsonl``."""

    def __init__(self, state_dir: str) -> None:
        self.dir = Path(state_dir) / "deadletter"

    def write(self, sink: str, items: list[tuple[SpooledEvent, str]]) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{sink}.jsonl"
        with open(path, "ab") as f:
            for sev, reason in items:
                f.write(orjson.dumps({"sink": sink, "reason": reason, "spool_seq": sev.seq,
                                      "event": orjson.Fragment(sev.raw)}))
                f.write(b"\n")
            f.flush()
            os.fsync(f.fileno())
        return path


class Outgoing:
    """One batch on its way to a sink: either the events (built and sent here) or a body the
    offload process built from the spool rows ``first_seq..last_seq``."""

    __slots__ = ("first_seq", "last_seq", "count", "size", "batch", "encoded")

    def __init__(self, first_seq: int, last_seq: int, count: int, size: int,
                 batch: list[SpooledEvent] | None = None, encoded: Encoded | None = None) -> None:
        self.first_seq, self.last_seq, self.count, self.size = first_seq, last_seq, count, size
        self.batch, self.encoded = batch, encoded

    @classmethod
    def of_batch(cls, batch: list[SpooledEvent], size: int) -> Outgoing:
        return cls(batch[0].seq, batch[-1].seq, len(batch), size, batch=batch)

    @classmethod
    def of_prepared(cls, p: Prepared) -> Outgoing:
        return cls(p.first_seq, p.last_seq, p.count, p.size, encoded=p.encoded)


class _SplitStats:
    """What one split of a batch refused with 413 showed about the receiver's limit."""

    __slots__ = ("largest_accepted", "lone_refusals", "size_refused")

    def __init__(self) -> None:
        #: bytes (canonical JSON, the unit of max_batch_bytes) of the largest part accepted
        self.largest_accepted = 0
        #: single events refused with 413 on their own
        self.lone_refusals = 0
        #: a request was refused although each of its events went through in smaller ones
        self.size_refused = False


class SinkWorker:
    """Reads the spool through one sink's cursor, batches, sends, retries, acknowledges.

    A batch the receiver answers 413 (request too large: its own limit or a gateway's, nginx's
    ``client_max_body_size`` is 1 MB by default) is not dead-lettered: it is split in two and the
    halves are sent in order (split again while still too large), and the whole batch is
    acknowledged once every half was accepted. Only a single event that is too large on its own
    is dead-lettered. The sink's ``max_batch_bytes`` then comes down to the largest part that was
    accepted, so the next batches fit without a 413.
    """

    #: after a 413 a sink's ``max_batch_bytes`` comes down, but never below this: a limit smaller
    #: than this is a gateway misconfiguration to fix, not a reason for thousands of tiny requests
    MIN_ADAPTED_BATCH_BYTES = 16 << 10

    def __init__(self, sink: Sink, spool: Spool, dead: DeadLetters, record_agent: Callable[[Event], Any],
                 backoff: Backoff | None = None, offloader: Offloader | None = None) -> None:
        metrics.SINK_MAX_BATCH_BYTES.labels(sink.name).set(sink.max_batch_bytes)
        self.sink = sink
        self.spool = spool
        self.dead = dead
        self.record_agent = record_agent
        self.backoff = backoff or Backoff(sink.retry_initial, sink.retry_max)
        self.draining = False
        self.healthy = True
        self.failing_since: float | None = None
        self.offloader = offloader
        self.spec = sink.encoder_spec() if offloader is not None else None
        #: the next body, being built by the offload process while this one is sent: (task, after)
        self._prefetch: tuple[asyncio.Task[Prepared | None], int] | None = None
        #: an idempotent sink's last acknowledgement, being committed while the next batch goes out
        self._ack_inflight: asyncio.Future[None] | None = None
        self._sent_upto = -1
        #: the one warning about a lowered max_batch_bytes was logged (later ones go to info)
        self._size_warned = False

    def _cursor(self) -> int:
        """The last row this sink has: acknowledged, or delivered with its acknowledgement in flight."""
        return max(self.spool.cursor(self.sink.name), self._sent_upto)

    def _pending(self) -> int:
        return self.spool.pending_after(self._cursor())

    async def _settle_ack(self) -> None:
        fut, self._ack_inflight = self._ack_inflight, None
        if fut is not None:
            await fut

    def _backlog(self, pending: int) -> bool:
        """A full batch is waiting: worth building in the offload process (latency is not at stake)."""
        return pending * self.spool.mean_event_bytes() >= self.sink.max_batch_bytes * 0.9

    async def _take_prepared(self) -> Prepared | None:
        """The next batch built by the offload process (the prefetched one if it is still the
        next), or None: then the worker reads and builds it itself."""
        cursor = self._cursor()
        if self._prefetch is not None:
            task, after = self._prefetch
            self._prefetch = None
            try:
                prepared = await task
            except OffloadUnavailable:
                return None
            # rows after the cursor never change: the body is still right, unless it was built
            # for a max_batch_bytes that a 413 has lowered since (it would be refused again)
            if after == cursor and not (prepared is not None and prepared.count > 1
                                        and prepared.size > self.sink.max_batch_bytes):
                return prepared
            # the cursor moved meanwhile (drop_oldest): build again from where it is now
        try:
            return await self._prepare(cursor)
        except OffloadUnavailable:
            return None

    def _prepare(self, after: int) -> Awaitable[Prepared | None]:
        """The offload process's next batch after spool row ``after``."""
        assert self.offloader is not None and self.spec is not None
        return self.offloader.prepare(self.spec, after, self.sink.max_batch_bytes)

    def _prefetch_after(self, prepared: Prepared) -> None:
        rest = self._pending() - prepared.count
        if rest > 0 and self._backlog(rest):
            task = asyncio.create_task(self._prepare(prepared.last_seq), name=f"offload:{self.sink.name}")
            self._prefetch = (task, prepared.last_seq)

    async def _cancel_prefetch(self) -> None:
        if self._prefetch is not None:
            task, _ = self._prefetch
            self._prefetch = None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Send batches until stopped; when draining, until the spool is empty for this sink.

        A batch leaves when it is full (``max_batch_bytes``) or when its oldest event has
        waited ``max_wait`` in the spool: the latency bound that freshness depends on.
        """
        try:
            await self._run(stop)
        finally:
            await self._cancel_prefetch()
            await self._settle_ack()

    async def _run(self, stop: asyncio.Event) -> None:
        name = self.sink.name
        wake = self.spool.subscribe()
        while True:
            pending = self._pending()
            metrics.SINK_LAG_EVENTS.labels(name).set(pending)
            if stop.is_set() and (not self.draining or pending == 0):
                return
            if pending == 0:
                wake.clear()
                await wait_or_stop(wake, 1.0)
                continue
            if self.spec is not None and (self._prefetch is not None or self._backlog(pending)):
                prepared = await self._take_prepared()
                if prepared is not None:
                    self._prefetch_after(prepared)  # built while this one is on the wire
                    await self._deliver(Outgoing.of_prepared(prepared), stop)
                    continue
            batch, first_added = await self.spool.read(name, self.sink.max_batch_bytes, after=self._cursor())
            if not batch:
                wake.clear()
                await wait_or_stop(wake, 0.2)
                continue
            size = sum(len(e.raw) for e in batch)
            full = size >= self.sink.max_batch_bytes * 0.9 or len(batch) < self._pending()
            if not full and not stop.is_set() and time.time() - first_added < self.sink.max_wait:
                # Wait for the batch's deadline. An append only wakes us to check, from the pending
                # count, whether a full batch is there: re-reading every row on each append was
                # O(n^2) and half the agent's CPU at 1,000 lines/s (bench/agent_bench.py).
                per_event = size / len(batch)
                deadline = first_added + self.sink.max_wait
                while (not stop.is_set() and time.time() < deadline
                       and self._pending() * per_event < self.sink.max_batch_bytes * 0.9):
                    wake.clear()
                    await wait_or_stop(wake, deadline - time.time())
                continue
            await self._deliver(Outgoing.of_batch(batch, size), stop)

    async def _deliver(self, out: Outgoing, stop: asyncio.Event) -> None:
        name = self.sink.name
        try:
            delivery = await self._send(out, stop)
        except TooLarge as e:  # _send retries everything else
            out, delivery = await self._deliver_split(out, e, stop)
        if delivery is None:  # stopping (not draining): nothing acknowledged, sent again next start
            return
        if delivery.rejected:
            batch = out.batch if out.batch is not None else await self.spool.read_rows(out.first_seq, out.last_seq)
            items = [(batch[i], reason) for i, reason in delivery.rejected if 0 <= i < len(batch)]
            path = self.dead.write(name, items)
            metrics.SINK_DEAD_LETTERED.labels(name).inc(len(items))
            first = min(s.seq for s, _ in items)
            last = max(s.seq for s, _ in items)
            log.error("sink %s refused %d events for good (%s); written to %s", name, len(items),
                      items[0][1][:200], path)
            await self.record_agent(agent_event(
                "dead_lettered", f"sink {name} refused {len(items)} events; they are in {path}",
                level="warning", sink=name, events=len(items), reason=items[0][1][:500],
                ids=[s.event.get("id") for s, _ in items][:1000], first_spool_row=first, last_spool_row=last,
                seqs=seq_ranges_field((s.event.get("stream"), s.event.get("seq")) for s, _ in items),
                deadletter_file=str(path),
            ))
        if delivery.duplicates:
            metrics.SINK_DUPLICATES.labels(name).inc(delivery.duplicates)
        ok = out.count - len(delivery.rejected)
        metrics.SINK_SENT.labels(name).inc(ok)
        metrics.SINK_SENT_BYTES.labels(name).inc(out.size)
        metrics.SINK_LAST_SUCCESS.labels(name).set(time.time())
        if self.sink.idempotent:
            # one acknowledgement in flight: the next batch goes out while SQLite commits this one
            # (the spool thread is shared with the sources; waiting for it throttled the sink)
            await self._settle_ack()
            self._sent_upto = out.last_seq
            self._ack_inflight = asyncio.ensure_future(self.spool.ack(name, out.last_seq))
        else:
            await self.spool.ack(name, out.last_seq)
        metrics.SINK_LAG_EVENTS.labels(name).set(self._pending())

    async def _send(self, out: Outgoing, stop: asyncio.Event) -> Delivery | None:
        """Send ``out`` until the sink accepts it: the Delivery, or None when stopping.

        Retries with backoff on RetryableError (and on unexpected errors: never lose the batch).
        A 413 (:class:`shipper.api.TooLarge`) is raised to the caller, which splits the
        batch: the same bytes would be refused again however often they are sent.
        """
        name = self.sink.name
        while True:
            t0 = time.monotonic()
            try:
                if out.batch is not None:
                    delivery = await self.sink.send(out.batch)
                else:
                    assert out.encoded is not None
                    delivery = await self.sink.send_encoded(out.encoded, out.count)
            except RetryableError as e:
                metrics.SINK_FAILED.labels(name).inc()
                metrics.SINK_RETRIED.labels(name).inc()
                delay = self.backoff.next(e.retry_after)
                if self.healthy:
                    self.healthy = False
                    self.failing_since = time.time()
                    log.warning("sink %s: delivery failed, retrying with backoff: %s", name, e,
                                extra={"sink": name, "status": e.status})
                else:
                    log.debug("sink %s: retry in %.2fs: %s", name, delay, e)
                if stop.is_set() and not self.draining:
                    return None
                if stop.is_set():
                    await asyncio.sleep(delay)  # draining: keep trying until shutdown_timeout
                else:
                    await wait_or_stop(stop, delay)
                if stop.is_set() and not self.draining:
                    return None
                continue
            except TooLarge:
                metrics.SINK_FAILED.labels(name).inc()
                raise
            except Exception as e:  # a bug or an unexpected client error: never lose the batch
                metrics.SINK_FAILED.labels(name).inc()
                log.error("sink %s: unexpected error, will retry: %s\n%s", name, e, traceback.format_exc())
                await asyncio.sleep(self.backoff.next())
                if stop.is_set() and not self.draining:
                    return None
                continue
            metrics.SINK_LATENCY.labels(name).observe(time.monotonic() - t0)
            break
        if not self.healthy:
            log.info("sink %s: delivering again after %.1fs of failures", name,
                     time.time() - (self.failing_since or time.time()))
        self.healthy = True
        self.failing_since = None
        self.backoff.reset()
        return delivery

    async def _deliver_split(self, out: Outgoing, err: TooLarge,
                             stop: asyncio.Event) -> tuple[Outgoing, Delivery | None]:
        """``out`` was refused with 413: deliver it in parts, then lower ``max_batch_bytes``.

        Returns the batch as events (an offloaded body is replaced by its spool rows, so that the
        rejected indices and the dead letters refer to them) and the combined Delivery, or None
        when stopping before every part was accepted (nothing is acknowledged then: the parts
        already accepted are sent again at the next start, and the receiver drops them).
        """
        name = self.sink.name
        if out.batch is None:
            rows = await self.spool.read_rows(out.first_seq, out.last_seq)
            out = Outgoing(out.first_seq, out.last_seq, len(rows), out.size, batch=rows)
        assert out.batch is not None
        # info until the warning below has said it all; then debug (a limit under the 16 KiB floor
        # splits every batch: the metric counts those, the log need not repeat them)
        log.log(logging.DEBUG if self._size_warned else logging.INFO,
                "sink %s: HTTP 413 (request too large) for a batch of %d events (%d bytes): sending it in parts",
                name, out.count, out.size)
        stats = _SplitStats()
        metrics.SINK_SPLIT_BATCHES.labels(name).inc()
        delivery = await self._split(out.batch, err, stop, stats)
        if delivery is not None:
            self._lower_batch_bytes(stats, out.size, err)
        return out, delivery

    async def _split(self, rows: list[SpooledEvent], err: TooLarge, stop: asyncio.Event,
                     stats: _SplitStats) -> Delivery | None:
        """``rows``, just refused with 413 as one request: send them as two halves (of about equal
        bytes), each split again while still refused; indices in the Delivery are into ``rows``."""
        if not rows:  # an offloaded batch whose rows drop_oldest deleted meanwhile: nothing to send
            return Delivery()
        if len(rows) == 1:
            size = len(rows[0].raw)
            stats.lone_refusals += 1
            body = " ".join(err.body.split())[:200]
            reason = (f"HTTP 413 (request too large) for this event alone: {size} bytes of JSON; "
                      f"the receiver's or its proxy's request size limit is lower. {body}").strip()
            return Delivery(rejected=[(0, reason)])
        lone_before = stats.lone_refusals
        cut = self._halfway(rows)
        combined = Delivery()
        for offset, part in ((0, rows[:cut]), (cut, rows[cut:])):
            size = sum(len(e.raw) for e in part)
            try:
                got = await self._send(Outgoing.of_batch(part, size), stop)
            except TooLarge as e:  # _send retries everything else
                got = await self._split(part, e, stop, stats)
            else:
                stats.largest_accepted = max(stats.largest_accepted, size)
            if got is None:
                return None
            combined.rejected.extend((offset + i, reason) for i, reason in got.rejected)
            combined.duplicates += got.duplicates
        if stats.lone_refusals == lone_before:
            # every event of ``rows`` went through in smaller requests: the size of the request
            # was the problem, not one oversized event in it
            stats.size_refused = True
        return combined

    @staticmethod
    def _halfway(rows: list[SpooledEvent]) -> int:
        """Where to cut ``rows`` into two non-empty parts of about equal bytes (one large event
        among small ones ends up alone sooner than with a cut by count)."""
        half = sum(len(e.raw) for e in rows) / 2
        acc = 0
        for i, e in enumerate(rows):
            acc += len(e.raw)
            if acc >= half:
                # the event that crosses the middle goes to the side that keeps the halves closer
                cut = i + 1 if acc - half <= half - (acc - len(e.raw)) else i
                return min(max(cut, 1), len(rows) - 1)
        return len(rows) - 1  # pragma: no cover - acc reaches the total

    def _lower_batch_bytes(self, stats: _SplitStats, refused: int, err: TooLarge) -> None:
        """After a split: batches of this sink are at most the largest part that was accepted.

        Only when a request was refused for its size (all of its events went through in smaller
        ones): one oversized event says nothing about the batch size. Never raised again while
        the process lives, never below MIN_ADAPTED_BATCH_BYTES.
        """
        name = self.sink.name
        if not stats.size_refused or stats.largest_accepted <= 0:
            return
        old = self.sink.max_batch_bytes
        new = min(old, max(self.MIN_ADAPTED_BATCH_BYTES, stats.largest_accepted))
        if new >= old:
            return
        self.sink.max_batch_bytes = new
        metrics.SINK_MAX_BATCH_BYTES.labels(name).set(new)
        if self._size_warned:
            log.info("sink %s: HTTP 413 again; batches now at most %d bytes", name, new)
            return
        self._size_warned = True
        log.warning(
            "sink %s: the receiver (or a proxy in front of it) answered HTTP 413 (request too large) to a "
            "batch of %d bytes; it was sent in smaller parts, nothing lost. Batches for this sink are now at "
            "most %d bytes until the agent restarts: set this sink's batch.max_bytes to %d or less (or raise "
            "the limit: nginx client_max_body_size, Elasticsearch http.max_content_length). The answer: %s",
            name, refused, new, new, " ".join(str(err).split())[:200], extra={"sink": name, "status": 413},
        )


class Emitter:
    """A source's ``emit``: labels a batch and appends it to the spool, with one batch in flight.

    ``await emit(batch)`` returns once the batch is captured and queued and the batch before it
    is durable. So the source reads and parses its next batch while SQLite commits this one
    (the INSERTs and the fsync release the GIL; docs/performance-agent.md). At-least-once does
    not change: each batch's positions commit in the same transaction as its events, in the
    order emitted, so what is durable is always a prefix of what was emitted, and a restart
    resumes from it. :meth:`settle` waits for the batch in flight: the supervisor calls it
    before re-reading positions, the shutdown before closing the spool.
    """

    def __init__(self, agent: Agent, stream: str, source_index: int | None,
                 extra_labels: dict[str, str] | None = None) -> None:
        self.agent = agent
        self.stream = stream
        self.source_index = source_index
        #: labels of a source added at run time (a discovered pod's), over the agent's own
        self.extra_labels = extra_labels or None
        #: when the source last emitted (monotonic): a drain waits for it to go quiet
        self.last_emit = time.monotonic()
        self._inflight: asyncio.Future[None] | None = None
        sources = agent.cfg.sources
        rules = getattr(sources[source_index], "drop", []) if source_index is not None and \
            source_index < len(sources) else []
        self.dropper = Dropper(stream.rsplit("/", 1)[-1], rules)  # the source's name, without the host

    async def __call__(self, batch: Batch) -> None:
        self.last_emit = time.monotonic()
        kept = self.dropper.filter(batch.events)  # drop: rules, before labelling (shipper/pipeline/drop.py)
        self.agent._label(kept, self.source_index)
        extra = self.extra_labels
        for ev in kept:
            path_labels = ev.pop("_labels", None)  # a container log's path (kubelet / Docker layout)
            if path_labels:
                ev["labels"].update(path_labels)
            if extra:
                ev["labels"].update(extra)
        # captured now: the source may reuse its objects once emit returns
        events = list(kept)
        positions = {k: orjson.loads(orjson.dumps(v)) if v is not None else None
                     for k, v in batch.positions.items()}
        await self.settle()  # the previous batch is durable (or its error surfaces here)
        self._inflight = asyncio.ensure_future(self.agent.spool.append(self.stream, events, positions))

    async def settle(self, *, quiet: bool = False) -> None:
        """Wait until the batch in flight is durable; ``quiet`` swallows its error (it was not
        committed, and the source resumes from what was)."""
        fut, self._inflight = self._inflight, None
        if fut is None:
            return
        if quiet:
            await asyncio.gather(fut, return_exceptions=True)
        else:
            await fut


class Agent:
    """Wires sources, the labeler, the spool and the sink workers for one config."""

    def __init__(self, cfg: AgentConfig, *, sources: list[Source] | None = None,
                 sinks: list[Sink] | None = None) -> None:
        self.cfg = cfg
        self.tz = resolve_timezone(cfg.timezone)
        self.host = socket.gethostname()
        self.sources = sources if sources is not None else build_sources(cfg, self.tz)
        self.sinks = sinks if sinks is not None else build_sinks(cfg)
        self.spool = Spool(cfg.state_dir, max_bytes=cfg.spool.max_bytes, when_full=cfg.spool.when_full,
                           host=self.host, max_event_bytes=limits.spool_limit(cfg.sinks))
        self.dead = DeadLetters(cfg.state_dir)
        self.stop_sources = asyncio.Event()
        #: set after the sources stopped and their last batches committed: the final anchor covers them
        self.stop_anchor = asyncio.Event()
        self.stop_sinks = asyncio.Event()
        self.labeler: Any = None
        self.workers: list[SinkWorker] = []
        self.started = asyncio.Event()
        self.source_tasks: list[asyncio.Task[None]] = []
        self.sink_tasks: list[asyncio.Task[None]] = []
        self._agent_stream = f"{self.host}/agent"
        self.anchor_task: asyncio.Task[None] | None = None
        self.trim_task: asyncio.Task[None] | None = None
        self.emitters: list[Emitter] = []
        #: what the supervisor reports for /ready (sources in crash backoff): shipper/observe/health.py
        self.health = Health()
        #: sources added and stopped while running (pod discovery): shipper/pipeline/dynamic.py
        self.dynamic = DynamicSources(self)
        self.offloader: Offloader | None = None
        if cfg.offload.mode == "auto":
            self.offloader = Offloader(str(self.spool.path), idle_stop=cfg.offload.idle_stop)

    # ---- the labels stage ------------------------------------------------------------------
    def _label(self, events: list[Event], source_index: int | None = None) -> None:
        counts: Counter[tuple[str, str]] = Counter()
        for ev in events:
            if self.labeler is not None:
                self.labeler.apply(ev, source_index)
            elif "labels" not in ev:
                ev["labels"] = dict(self.cfg.labels)
            counts[(ev.get("source", "?"), ev.get("category", "?"))] += 1
        for (source, category), n in counts.items():  # one metric update per kind, not per event
            metrics.EVENTS.labels(source, category).inc(n)

    def _emitter(self, stream: str, source_index: int | None,
                 extra_labels: dict[str, str] | None = None) -> Emitter:
        emitter = Emitter(self, stream, source_index, extra_labels)
        self.emitters.append(emitter)
        return emitter

    async def _record_anchor(self, ev: Event) -> None:
        """A chain_anchor carries the events each source's drop: rules dropped since the previous
        anchor (``fields.dropped``), so verify accounts for them (shipper/pipeline/drop.py)."""
        dropped = {e.stream: d for e in self.emitters if (d := e.dropper.take())}
        if dropped:
            ev.setdefault("fields", {})["dropped"] = dropped
        await self.record_agent(ev)

    async def record_agent(self, ev: Event) -> None:
        self._label([ev])
        await self.spool.append(self._agent_stream, [ev], {})

    # ---- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        Path(self.cfg.state_dir).mkdir(parents=True, exist_ok=True)
        await self.spool.open()
        try:
            from .labels import Labeler

            self.labeler = Labeler(self.cfg)
            await self.labeler.start()
        except ImportError:
            self.labeler = None
        for sink in self.sinks:
            await self.spool.register_sink(sink.name)
        await self.spool.forget_sinks(s.name for s in self.sinks)
        for sink in self.sinks:
            await sink.start()
            w = SinkWorker(sink, self.spool, self.dead, self.record_agent, offloader=self.offloader)
            self.workers.append(w)
            self.sink_tasks.append(asyncio.create_task(w.run(self.stop_sinks), name=f"sink:{sink.name}"))
        for i, src in enumerate(self.sources):
            sc = self.cfg.sources[i] if i < len(self.cfg.sources) else None
            task = await self.dynamic.start(src, index=i if sc is not None else None,
                                            labels=getattr(sc, "labels", None), spec=sc)
            self.source_tasks.append(task)
        self.trim_task = asyncio.create_task(self._release_memory_when_idle(), name="memory-trim")
        if self.cfg.audit.anchor_interval > 0:
            timer = AnchorTimer(self.spool.chain_heads, self._record_anchor,
                                interval=self.cfg.audit.anchor_interval, agent_stream=self._agent_stream)
            self.anchor_task = asyncio.create_task(timer.run(self.stop_anchor), name="audit-anchor")
        self.started.set()

    async def _release_memory_when_idle(self, every: float = 60.0) -> None:
        """After a burst, give the freed heap back to the kernel once nothing moved for ``every``
        seconds (the allocator keeps freed memory for the next batch while busy: shipper/util/memory.py)."""
        from ..util.memory import release_free_memory

        last, released = self.spool.newest_seq, True
        while not self.stop_sources.is_set():
            await wait_or_stop(self.stop_sources, every)
            top = self.spool.newest_seq
            if top != last:
                last, released = top, False
            elif not released:
                release_free_memory()
                released = True

    async def _supervise(self, src: Source, ctx: SourceContext, emitter: Emitter) -> None:
        """Run a source; if it crashes (a bug), log it and restart it from its committed positions."""
        delay = 1.0
        while not ctx.stop.is_set():
            try:
                await src.run(ctx)
                await emitter.settle()
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.error("source %s crashed (restarting in %.0fs): %s\n%s", src.name, delay, e,
                          traceback.format_exc())
                self.health.source_crashed(src.name, e, delay)
                try:
                    await self.record_agent(agent_event("source_crashed", f"source {src.name} crashed: {e}",
                                                        source_name=src.name, error=str(e)[:500]))
                except Exception:
                    pass
                await wait_or_stop(ctx.stop, delay)
                delay = min(delay * 2, 60.0)
                await emitter.settle(quiet=True)  # positions are read after the last commit
                ctx.positions = await self.spool.positions(src.key_prefix)
                self.health.source_restarted(src.name)

    async def shutdown(self) -> None:
        """Stop reading, flush the spool within ``shutdown_timeout``, commit, close."""
        self.stop_sources.set()
        self.dynamic.stop_all()
        if self.trim_task is not None:
            self.trim_task.cancel()
            await asyncio.gather(self.trim_task, return_exceptions=True)
        tasks = self.source_tasks + self.dynamic.tasks()
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=max(1.0, self.cfg.shutdown_timeout / 2))
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        # the batches still in flight commit before the sinks drain (one may wait for room in a full
        # spool: give up on it after a bound; it was not committed, the next start re-reads it)
        settling = [asyncio.ensure_future(e.settle(quiet=True)) for e in self.emitters]
        if settling:
            _, late = await asyncio.wait(settling, timeout=max(1.0, self.cfg.shutdown_timeout / 2))
            for t in late:
                t.cancel()  # cancels the append it waits for (gather passes the cancellation on)
            await asyncio.gather(*settling, return_exceptions=True)
        self.stop_anchor.set()
        if self.anchor_task is not None:  # the final anchor covers every committed batch, and is
            try:                          # sealed before the sinks drain
                await asyncio.wait_for(self.anchor_task, 5.0)
            except (TimeoutError, Exception) as e:
                log.warning("audit anchor at shutdown: %s", e)
        for w in self.workers:
            w.draining = True
        self.stop_sinks.set()
        self.spool.notify()
        if self.sink_tasks:
            done, pending = await asyncio.wait(self.sink_tasks, timeout=self.cfg.shutdown_timeout)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if pending:
                log.warning("shutdown: %d sink(s) did not finish within %.0fs; the rest stays in the spool",
                            len(pending), self.cfg.shutdown_timeout)
        if self.offloader is not None:
            await self.offloader.close()
        for sink in self.sinks:
            try:
                await sink.close()
            except Exception as e:
                log.warning("closing sink %s: %s", sink.name, e)
        if self.labeler is not None:
            try:
                await self.labeler.close()
            except Exception:
                pass
        await self.spool.close()

    async def run_until(self, stop: asyncio.Event) -> None:
        await self.start()
        await stop.wait()
        await self.shutdown()
