"""A second process that builds sink request bodies while there is a backlog.

Why: the agent is one Python process, and the GIL lets it use one core. With a backlog (the
catch-up after a sink outage, a backfill, a burst) half of its CPU per event is the sink side:
reading the batch back from the spool, ``orjson.loads`` of every row, grouping into streams,
encoding the body, compressing it (docs/performance-agent.md). That work is a pure function
of rows that are already committed, so it can run elsewhere: this process opens the spool
(SQLite WAL lets a reader work beside the writer), reads the rows after the sink's cursor and
returns the encoded body. The agent still sends, retries, acknowledges and moves the cursor, so
the at-least-once argument does not change: a body built here is the same bytes the agent
would have built (the same encoder class, tested byte for byte).

Why a plain child process on pipes and not ``multiprocessing``: no semaphores in /dev/shm, no
resource-tracker process, no pickling of live objects; the child dies with its stdin (the
agent exiting or killed closes it), and one request in flight is all the pipelining needed
(the body of batch k+1 is built while batch k is on the wire).

When: a full batch is waiting for a sink AND the sources are appending at least
``offload.min_input_rate`` events/s (:meth:`Offloader.wanted`): the agent is then reading a
backlog of logs and sending one, and parsing and encoding compete for its one core. A sink that
catches up alone (after an outage, at an ordinary input rate) is served in the agent, from the
stored rows without an object per event (``Spool.encode_rows``): one core is enough for that
(docs/performance.md: the outage catch-up), and the child's interpreter would be ~30 MB more at
the peak of the catch-up. Stopped after ``offload.idle_stop`` without work: an idle or lightly
loaded agent stays one small process. If the child cannot start or dies, the worker builds the
body itself (logged and counted), so the offload can only make things faster.

The child is shipper/pipeline/offload_child.py: it imports neither asyncio nor the agent's
metrics (prometheus_client), so that it starts in a fraction of the agent's time. This side
imports ``shipper.observe.metrics`` inside the methods that count.

Wire protocol (parent -> child, child -> parent), one exchange at a time:
``<request JSON>\\n`` then ``<reply JSON>\\n<body bytes, reply["body_len"] long>``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

import orjson

from ..api import Encoded

log = logging.getLogger("redis_shipper.offload")

#: after the child failed to start or died, wait this long before trying another one
RESTART_PAUSE = 30.0
#: a reply must come within this long (a 1 MiB batch takes ~50 ms); else the child is killed
REPLY_TIMEOUT = 60.0
#: the input rate is measured over at least this long
RATE_WINDOW = 0.5


@dataclass
class Prepared:
    """A batch read from the spool and encoded, as the offload process returns it."""

    first_seq: int
    last_seq: int
    count: int
    size: int
    first_added: float
    encoded: Encoded


class OffloadUnavailable(Exception):
    """The child could not do the work; the caller builds the body itself."""


class Offloader:
    """The agent's handle on the offload process (one per agent, shared by the sink workers)."""

    def __init__(self, db_path: str, *, idle_stop: float = 30.0, min_input_rate: float = 0.0) -> None:
        self.db_path = db_path
        self.idle_stop = idle_stop
        self.min_input_rate = min_input_rate
        #: (monotonic time, spool top) at the start of the current rate window, and the last rate
        self._rate_mark: tuple[float, int] | None = None
        self.input_rate = 0.0
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()
        self._last_used = 0.0
        self._down_until = 0.0
        self._idle_task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def wanted(self, top: int, now: float | None = None) -> bool:
        """Whether the batch waiting should be built in this process rather than in the agent:
        the child is running already (it stops by itself when idle), or the sources appended at
        least ``min_input_rate`` events/s over the last ``RATE_WINDOW`` s or more. ``top`` is the
        spool's last row number (rows are numbered by event, so its growth is the input rate)."""
        now = time.monotonic() if now is None else now
        mark = self._rate_mark
        if mark is None:
            self._rate_mark = (now, top)
        elif now - mark[0] >= RATE_WINDOW:
            self.input_rate = max(0, top - mark[1]) / (now - mark[0])
            self._rate_mark = (now, top)
        if self._closed or now < self._down_until:
            return False
        return self.running or self.input_rate >= self.min_input_rate

    async def prepare(self, spec: tuple[str, dict[str, Any]], after: int, max_bytes: int,
                      max_events: int = 100_000, annexed: bool = False) -> Prepared | None:
        """Read the events after spool row ``after`` (up to ``max_bytes``; with their annexes when
        ``annexed``: the spool stores them for this sink) and encode them with the encoder named
        by ``spec``; None when there is no row. Raises OffloadUnavailable."""
        from ..observe import metrics

        if self._closed or time.monotonic() < self._down_until:
            raise OffloadUnavailable("offload process not available")
        req = orjson.dumps({"factory": spec[0], "kwargs": spec[1], "db": self.db_path, "after": after,
                            "max_bytes": max_bytes, "max_events": max_events, "annexed": annexed}) + b"\n"
        async with self._lock:
            try:
                proc = await self._ensure()
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(req)
                await proc.stdin.drain()
                async with asyncio.timeout(REPLY_TIMEOUT):
                    head = orjson.loads(await proc.stdout.readuntil(b"\n"))
                    body = await proc.stdout.readexactly(head.get("body_len", 0)) if head.get("body_len") else b""
            except BaseException as e:
                # a half-read reply would desynchronise the pipe: this child is done
                await self._kill()
                if isinstance(e, asyncio.CancelledError):
                    raise
                self._down_until = time.monotonic() + RESTART_PAUSE
                metrics.OFFLOAD_FAILURES.inc()
                log.warning("offload process failed (%s: %s); sink bodies are built in the agent for %.0fs",
                            type(e).__name__, e, RESTART_PAUSE)
                raise OffloadUnavailable(str(e)) from e
            finally:
                self._last_used = time.monotonic()
        if not head.get("ok"):
            # the child is fine but could not do this one (e.g. the encoder raised): say why once
            metrics.OFFLOAD_FAILURES.inc()
            log.warning("offload process could not build a batch: %s", head.get("error"))
            raise OffloadUnavailable(str(head.get("error")))
        if not head["count"]:
            return None
        self.batches += 1
        metrics.OFFLOAD_BATCHES.inc()
        enc = Encoded(body, head["headers"], [(int(i), str(r)) for i, r in head["rejected"]], head["entries"],
                      part_sizes=head.get("part_sizes"))
        return Prepared(head["first"], head["last"], head["count"], head["size"], head["first_added"], enc)

    async def _ensure(self) -> asyncio.subprocess.Process:
        from ..observe import metrics

        if self.running:
            assert self._proc is not None
            return self._proc
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shipper.pipeline.offload_child",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        metrics.OFFLOAD_RUNNING.set(1)
        log.info("offload process started (pid %d): a backlog is being sent while the sources append "
                 "%.0f events/s", self._proc.pid, self.input_rate)
        if self._idle_task is None or self._idle_task.done():
            self._idle_task = asyncio.create_task(self._stop_when_idle(), name="offload-idle")
        return self._proc

    async def _stop_when_idle(self) -> None:
        while self.running and not self._closed:
            await asyncio.sleep(max(0.5, min(self.idle_stop, 5.0)))
            if self._lock.locked():
                continue
            if time.monotonic() - self._last_used >= self.idle_stop:
                async with self._lock:
                    if time.monotonic() - self._last_used >= self.idle_stop:
                        log.info("offload process idle for %.0fs: stopping it", self.idle_stop)
                        await self._stop()
                return

    async def _stop(self) -> None:
        """Close the child's stdin (it exits at EOF); kill it if it does not."""
        from ..observe import metrics

        proc, self._proc = self._proc, None
        metrics.OFFLOAD_RUNNING.set(0)
        if proc is not None:
            await _reap(proc, kill=False)

    async def _kill(self) -> None:
        from ..observe import metrics

        proc, self._proc = self._proc, None
        metrics.OFFLOAD_RUNNING.set(0)
        if proc is not None:
            await _reap(proc, kill=True)

    async def close(self) -> None:
        self._closed = True
        if self._idle_task is not None:
            self._idle_task.cancel()
            await asyncio.gather(self._idle_task, return_exceptions=True)
        async with self._lock:
            await self._stop()


async def _reap(proc: asyncio.subprocess.Process, *, kill: bool) -> None:
    """End the child and read its pipes to the end, so nothing of it outlives the agent's loop."""
    try:
        if kill and proc.returncode is None:
            proc.kill()
        if proc.stdin is not None:
            proc.stdin.close()  # the child exits at EOF
        await asyncio.wait_for(proc.communicate(), 5.0)
    except (TimeoutError, ProcessLookupError, OSError, ValueError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass
