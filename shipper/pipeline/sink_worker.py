"""One sink's worker: reads the spool through the sink's cursor, batches, sends, retries,
splits a batch refused as too large, dead-letters what is refused for good, acknowledges."""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

from parsers.events import Event

from ..agent_events import agent_event
from ..api import Delivery, Encoded, RetryableError, Sink, SpooledEvent, TooLarge
from ..observe import metrics
from ..util.backoff import Backoff
from ..util.waits import wait_or_stop
from .deadletters import DeadLetters, note_fields
from .offload import Offloader, OffloadUnavailable, Prepared
from .spool import Spool

log = logging.getLogger("redis_shipper.runtime")


class Outgoing:
    """One batch on its way to a sink: either the events (built and sent here) or a body built
    ahead (by the offload process or from the stored rows) from the spool rows ``first_seq..last_seq``."""

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
    #: a batch that is not full leaves before ``max_wait`` once no event has been appended for this
    #: long: the input has gone quiet, and waiting longer would add latency and no events. Costs
    #: at most one request per quiet spell; a steady input (appends every few ms) never triggers it
    QUIET = 0.1

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
        #: why the last delivery failed (shown by /ready; the sinks' messages carry no secret and
        #: name URLs without credentials), None once a delivery succeeds
        self.last_error: str | None = None
        self.offloader = offloader
        self.spec = sink.encoder_spec() if offloader is not None else None
        annexer = sink.annexer()
        #: a backlog's bodies straight from the stored rows, in this process (Spool.encode_rows)
        self._encode_rows = annexer.encode_rows if annexer is not None else None
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
        """The next batch built ahead from the spool rows (the prefetched one if it is still the
        next), or None: then the worker reads it as events and builds it."""
        cursor = self._cursor()
        if self._prefetch is not None:
            task, after = self._prefetch
            self._prefetch = None
            prepared = await task
            # rows after the cursor never change: the body is still right, unless it was built
            # for a max_batch_bytes that a 413 has lowered since (it would be refused again)
            if after == cursor and not (prepared is not None and prepared.count > 1
                                        and prepared.size > self.sink.max_batch_bytes):
                return prepared
            # the cursor moved meanwhile (drop_oldest): build again from where it is now
        return await self._prepare(cursor)

    async def _prepare(self, after: int) -> Prepared | None:
        """The next batch after spool row ``after``, built by the offload process when a second
        process is worth it (:meth:`Offloader.wanted`: the sources are busy too), else here from
        the stored rows; None when neither can (no annexes: the batch is read as events)."""
        if self.offloader is not None and self.spec is not None and self.offloader.wanted(self.spool.top):
            try:
                return await self.offloader.prepare(self.spec, after, self.sink.max_batch_bytes,
                                                    annexed=self._annexed())
            except OffloadUnavailable:
                pass  # built here
        if self._encode_rows is not None and self._annexed():
            built = await self.spool.encode_rows(self.sink.name, self._encode_rows, after, self.sink.max_batch_bytes)
            if built is not None:
                e, taken = built
                return Prepared(taken.first, taken.last, taken.count, taken.size, taken.first_added, e)
        return None

    def _annexed(self) -> bool:
        """Whether the spool stores this sink's annexes (the runtime renames sinks after building them)."""
        return self.spool.annex_sink == self.sink.name

    def _prepares(self) -> bool:
        """Whether this worker builds a backlog's bodies ahead (offload process or stored rows)."""
        return self.spec is not None or (self._encode_rows is not None and self._annexed())

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

        A batch leaves when it is full (``max_batch_bytes``), when its oldest event has waited
        ``max_wait`` in the spool (the latency bound that freshness depends on), or when no event
        was appended for ``QUIET`` s (the input has gone quiet: a lone line does not wait
        ``max_wait``).
        """
        try:
            await self._run(stop)
        finally:
            await self._cancel_prefetch()
            await self._settle_ack()

    async def _run(self, stop: asyncio.Event) -> None:
        name = self.sink.name
        wake = self.spool.subscribe()
        quiet = False  # the input went quiet while a batch waited: send it without waiting more
        while True:
            pending = self._pending()
            metrics.SINK_LAG_EVENTS.labels(name).set(pending)
            if stop.is_set() and (not self.draining or pending == 0):
                return
            if pending == 0:
                wake.clear()
                await wait_or_stop(wake, 1.0)
                continue
            if self._prepares() and (self._prefetch is not None or self._backlog(pending)):
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
            if not full and not quiet and not stop.is_set() and time.time() - first_added < self.sink.max_wait:
                quiet = await self._wait_for_batch(wake, stop, first_added, size / len(batch))
                continue
            quiet = False
            await self._deliver(Outgoing.of_batch(batch, size), stop)

    async def _wait_for_batch(self, wake: asyncio.Event, stop: asyncio.Event, first_added: float,
                              per_event: float) -> bool:
        """Wait until the batch is full, its oldest event has waited ``max_wait``, or the input
        has gone quiet (no append for ``QUIET`` s); True for the last: send what is there now.

        An append only wakes the worker to check, from the pending count, whether a full batch is
        there: re-reading every row on each append was O(n^2) and half the agent's CPU at 1,000
        lines/s (bench/agent_bench.py)."""
        deadline = first_added + self.sink.max_wait
        limit = self.sink.max_batch_bytes * 0.9
        while not stop.is_set() and self._pending() * per_event < limit:
            left = deadline - time.time()
            if left <= 0:
                return False
            wake.clear()
            if not await wait_or_stop(wake, min(left, self.QUIET)) and left > self.QUIET:
                return True  # QUIET s without an append, before the deadline
        return False

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
            log.error("sink %s refused %d events for good (%s); written to %s", name, len(items),
                      items[0][1][:200], path)
            notes = note_fields(name, items, path)
            if not notes:
                log.error("sink %s refused the events declaring refused dead_lettered events: they are in %s, "
                          "and not declared again (that could go on for ever)", name, path)
            for fields in notes:
                await self.record_agent(agent_event(
                    "dead_lettered", f"sink {name} refused {fields['events']} events; they are in {path}",
                    level="warning", **fields))
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
                self.last_error = " ".join(str(e).split())[:300]
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
                self.last_error = f"{type(e).__name__}: {' '.join(str(e).split())[:300]}"
                if self.healthy:
                    self.healthy = False
                    self.failing_since = time.time()
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
        self.last_error = None
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
