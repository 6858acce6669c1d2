"""Sources added and stopped while the agent runs: the one mechanism pod discovery uses.

A source added here is the same object a config file would give (validated by the same schema,
built by the same factory), supervised the same way, and appends to the spool through its own
:class:`~shipper.pipeline.runtime.Emitter`. What makes it dynamic:

* it is known by a **name** that is also its audit stream (``<host>/<name>``): a source stopped and
  added again under the same name continues its hash chain and resumes from its checkpoints (the
  spool keeps both; only the agent's process state goes);
* **stopping drains it**: the source runs on until it has been quiet (nothing emitted) for longer
  than it holds a pending event (``idle_flush``) or waits for a half-written line
  (``partial_line_timeout``), at most ``drain_timeout``; then it is stopped, and what it emitted is
  committed before :meth:`stop` returns. A pod's log files are complete once the pod is gone, so
  the drain reads them to their end;
* its events carry the agent's labels **updated with its own** (a pod's namespace, pod, container,
  instance);
* a Redis poller added here is also a **label target** of the labeler (``Labeler.add_target``): its
  run_id selects redis_exporter's series in Prometheus, and the events of every source added with
  the same ``target`` (a pod's log files and its poller) carry that series' labels. The target goes
  when the poller stops, after its drain.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from ..api import Source, SourceContext
from ..config import ConfigError, RedisSourceConfig, SourceConfig
from .drop import Dropper

if TYPE_CHECKING:
    from .runtime import Agent, Emitter

log = logging.getLogger("redis_shipper.runtime")


@cache
def _source_adapter() -> TypeAdapter[SourceConfig]:
    """The validator of one ``sources:`` entry, built on first use (not at import): only a source
    added at run time (SIGHUP reload, pod discovery) needs it, and every import would pay for it."""
    return TypeAdapter(SourceConfig)


@dataclass
class _Running:
    source: Source
    stop: asyncio.Event
    task: asyncio.Task[None]
    emitter: Emitter
    #: the validated ``sources:`` entry it was built from (None: built in code), for a reload's diff
    spec: Any = None
    #: the labeler target this source registered (a run-time Redis poller), removed when it stops
    owned_target: str | None = None


class DynamicSources:
    """The agent's run-time sources, and the ``ctx.sources`` control handed to every source."""

    def __init__(self, agent: Agent, *, drain_timeout: float = 30.0) -> None:
        self.agent = agent
        self.drain_timeout = drain_timeout
        self.running: dict[str, _Running] = {}
        #: stopped sources' emitters kept until an anchor has recorded what their drop: rules dropped
        self._retired: list[Emitter] = []
        self._stopping = False

    def tasks(self) -> list[asyncio.Task[None]]:
        return [r.task for r in self.running.values()]

    async def add(self, name: str, config: dict[str, Any], labels: dict[str, str] | None = None, *,
                  target: str | None = None) -> None:
        """Start the source ``config`` (a ``sources:`` entry) as ``name``; a no-op when it runs."""
        if name in self.running or self._stopping:
            return
        try:
            sc = _source_adapter().validate_python(config)
        except ValidationError as e:
            # loc[0] is the union's tag (the type): the key path starts after it
            raise ConfigError([(".".join(map(str, err["loc"][1:])) or "type", err["msg"]) for err in e.errors()],
                              f"source {name}") from None
        from .runtime import build_source

        await self.start(build_source(sc, self.agent.tz, name=name), labels=labels, spec=sc, target=target)

    async def start(self, src: Source, *, index: int | None = None, labels: dict[str, str] | None = None,
                    spec: Any = None, target: str | None = None) -> asyncio.Task[None]:
        """Run a built source under its ``name``: its own stop, its own emitter, the supervisor.
        ``index`` is its place in the config's ``sources`` (the labeler keys Redis sources by it).
        ``target`` names the Redis whose discovered labels its events carry (shared by the sources
        of one pod container); a Redis poller started at run time registers it with the labeler
        (its own name when no ``target`` is given)."""
        agent = self.agent
        positions = await agent.spool.positions(src.key_prefix)
        emitter = agent._emitter(f"{agent.host}/{src.name}", index, dict(labels or {}))
        owned: str | None = None
        if index is None and isinstance(spec, RedisSourceConfig):
            target = target or src.name
            if agent.labeler is not None and not agent.labeler.has_target(target):
                agent.labeler.add_target(target, spec, dict(labels or {}))
                owned = target
        emitter.labels_target = target
        if index is None and getattr(spec, "drop", None):
            # the emitter finds a config-file source's rules by its index; a source added at run
            # time (a discovered pod's, or one a reload started) brings its own
            emitter.dropper = Dropper(src.name, spec.drop)
        retired = next((e for e in self._retired if e.stream == emitter.stream), None)
        if retired is not None:  # back under the same name: its unrecorded drops go on in the new one
            self._retired.remove(retired)
            if retired in agent.emitters:
                agent.emitters.remove(retired)
            if retired.dropper.rules == emitter.dropper.rules:
                emitter.dropper = retired.dropper
        stop = asyncio.Event()
        ctx = SourceContext(emit=emitter, positions=positions, stop=stop, state_dir=agent.cfg.state_dir,
                            emit_agent=agent.record_agent, sources=self)
        task = asyncio.create_task(agent._supervise(src, ctx, emitter), name=f"source:{src.name}")
        key, n = src.name, 1
        while key in self.running:  # two entries of one config with the same name (tests, or a typo)
            n += 1
            key = f"{src.name}#{n}"
        self.running[key] = _Running(src, stop, task, emitter, spec, owned)
        return task

    async def reload(self, sources: list[Any]) -> tuple[list[str], list[str]]:
        """Make the running config-built sources those of ``sources`` (validated entries): stop the
        ones gone or changed (drained), start the new ones. Returns (stopped, started) names."""
        from .runtime import build_source, source_name

        wanted = {source_name(sc): sc for sc in sources}
        stopped = [n for n, r in self.running.items() if r.spec is not None and wanted.get(n) != r.spec]
        await asyncio.gather(*(self.stop(n) for n in stopped))
        started = []
        for name, sc in wanted.items():
            if name not in self.running:
                await self.start(build_source(sc, self.agent.tz, name=name), labels=getattr(sc, "labels", None),
                                 spec=sc)
                started.append(name)
        return stopped, started

    async def stop(self, name: str, *, drain: bool = True) -> None:
        """Drain (unless ``drain`` is false), stop and forget ``name``; its checkpoints stay."""
        r = self.running.get(name)
        if r is None:
            return
        if drain and not self._stopping:
            await self._until_quiet(r)
        r.stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(r.task), self.drain_timeout)
        except TimeoutError:
            log.warning("source %s did not stop within %.0fs; cancelled (it resumes from its checkpoints)",
                        name, self.drain_timeout)
            r.task.cancel()
            await asyncio.gather(r.task, return_exceptions=True)
        await r.emitter.settle(quiet=True)
        self.running.pop(name, None)
        if r.owned_target is not None and self.agent.labeler is not None:
            await self.agent.labeler.remove_target(r.owned_target)
        # an emitter whose drops no audit anchor has recorded yet stays where the next anchor
        # takes them (verify counts them); the others, and those since recorded, go
        for e in [e for e in self._retired if not e.dropper.pending]:
            self._retired.remove(e)
            if e in self.agent.emitters:
                self.agent.emitters.remove(e)
        if r.emitter.dropper.pending:
            self._retired.append(r.emitter)
        elif r.emitter in self.agent.emitters:
            self.agent.emitters.remove(r.emitter)

    async def _until_quiet(self, r: _Running) -> None:
        cfg = getattr(r.source, "cfg", None)
        hold = max(float(getattr(cfg, "idle_flush", 0.0) or 0.0),
                   float(getattr(cfg, "partial_line_timeout", 0.0) or 0.0))
        quiet = hold + 1.0
        deadline = time.monotonic() + self.drain_timeout
        while time.monotonic() < deadline and not r.task.done() and not self._stopping:
            idle = time.monotonic() - r.emitter.last_emit
            if idle >= quiet:
                return
            await asyncio.sleep(min(quiet - idle, 0.25))

    def stop_all(self) -> None:
        """At the agent's shutdown: every run-time source stops with the others (no drain: what it has
        not read is read after the restart, from its checkpoints)."""
        self._stopping = True
        for r in self.running.values():
            r.stop.set()
