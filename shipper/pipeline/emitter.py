"""A source's ``emit``: drop rules, labels, then the spool, with one batch in flight."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import orjson

from ..api import Batch
from .drop import Dropper

if TYPE_CHECKING:
    from .runtime import Agent


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
        #: the labeler target whose labels this source's events carry (a discovered pod's Redis:
        #: its base holds ``extra_labels``, discovery goes over them); None: by ``source_index``
        self.labels_target: str | None = None
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
        labeler, target = self.agent.labeler, self.labels_target
        if target is not None and labeler is not None and labeler.has_target(target):
            # the pod's labels as discovery left them: a path label only adds what they lack
            self.agent._label(kept, target)  # type: ignore[arg-type]
            for ev in kept:
                path_labels = ev.pop("_labels", None)
                if path_labels:
                    labels = ev["labels"]
                    for k, v in path_labels.items():
                        labels.setdefault(k, v)
        else:
            # a pod's sources without a poller (target set, never registered) are of no configured
            # Redis: the global labels and the pod's, not the default Redis source's discoveries
            self.agent._label(kept, self.source_index, global_only=target is not None)
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

