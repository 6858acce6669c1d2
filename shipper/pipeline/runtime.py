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
import socket
import time
import traceback
from collections import Counter
from datetime import tzinfo
from pathlib import Path
from typing import Any

from parsers.events import Event

from ..agent_events import agent_event
from ..api import Sink, Source, SourceContext
from ..audit.anchor import AnchorTimer
from ..config import AgentConfig, ConfigError
from ..observe import metrics
from ..observe.health import Health
from ..sinks import limits
from ..util.tz import host_timezone, parse_timezone
from ..util.waits import wait_or_stop
from .deadletters import DeadLetters
from .dynamic import DynamicSources
from .emitter import Emitter
from .factories import build_sinks, build_source, build_sources, source_name
from .offload import Offloader
from .sink_worker import Outgoing, SinkWorker
from .spool import Spool

#: the names other modules and tests import from here; each lives in the module named above
__all__ = ["Agent", "DeadLetters", "Emitter", "Outgoing", "SinkWorker", "agent_event", "build_sinks",
           "build_source", "build_sources", "resolve_timezone", "source_name"]

log = logging.getLogger("redis_shipper.runtime")


def resolve_timezone(name: str | None) -> tzinfo:
    """The zone of Redis's local timestamps: the configured name, else the host's zone."""
    if name:
        try:
            return parse_timezone(name)
        except ValueError as e:
            raise ConfigError([("timezone", str(e))]) from None
    return host_timezone()



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
            self.offloader = Offloader(str(self.spool.path), idle_stop=cfg.offload.idle_stop,
                                       min_input_rate=cfg.offload.min_input_rate)

    # ---- the labels stage ------------------------------------------------------------------
    def _label(self, events: list[Event], source_index: int | str | None = None, *,
               global_only: bool = False) -> None:
        """Label ``events`` as those of ``source_index`` (see :meth:`Labeler.apply`), or with the
        global labels only (``global_only``: a source of no polled Redis)."""
        counts: Counter[tuple[str, str]] = Counter()
        for ev in events:
            if self.labeler is not None:
                if global_only:
                    self.labeler.apply_global(ev)
                else:
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
        for sink in self.sinks:  # the first sink with an annex has it stored beside each event
            if (annexer := sink.annexer()) is not None:
                self.spool.use_annexer(sink.name, annexer)
                break
        await self.spool.open()
        from .labels import Labeler

        self.labeler = Labeler(self.cfg)
        await self.labeler.start()
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
        seconds (the allocator keeps freed memory for the next batch while busy: shipper/util/tuning.py)."""
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

    #: first and longest wait before a crashed source is restarted (doubling in between)
    source_restart_initial = 1.0
    source_restart_max = 60.0

    async def _supervise(self, src: Source, ctx: SourceContext, emitter: Emitter) -> None:
        """Run a source; if it crashes (a bug), log it and restart it from its committed positions.

        The wait doubles from one crash to the next, so a source that fails at once does not spin;
        a source that ran for ``source_restart_max`` or longer before crashing is not in a crash
        loop, and its next restart waits ``source_restart_initial`` again rather than the wait its
        crashes of hours ago had built up."""
        delay = self.source_restart_initial
        while not ctx.stop.is_set():
            started = time.monotonic()
            try:
                await src.run(ctx)
                await emitter.settle()
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if time.monotonic() - started >= self.source_restart_max:
                    delay = self.source_restart_initial
                log.error("source %s crashed (restarting in %.0fs): %s\n%s", src.name, delay, e,
                          traceback.format_exc())
                self.health.source_crashed(src.name, e, delay)
                try:
                    await self.record_agent(agent_event("source_crashed", f"source {src.name} crashed: {e}",
                                                        source_name=src.name, error=str(e)[:500]))
                except Exception:
                    pass
                await wait_or_stop(ctx.stop, delay)
                delay = min(delay * 2, self.source_restart_max)
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
