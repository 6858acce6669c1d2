"""Chain heads kept where the host cannot rewrite them: heads snapshots and ``chain_anchor`` events.

A hash chain proves that what a sink holds is internally consistent. It cannot, alone, show
that the *tail* was cut (delete the last N events of a stream and the rest still chains) or
that somebody with write access to the host re-chained a rewritten history. Both show as soon
as a (stream, seq, hash) taken earlier is kept somewhere else:

* ``redis-shipper verify --print-heads`` prints :func:`heads_snapshot` (JSON) -- store it off
  the host (a ticket, an object store with retention lock, another machine's cron job);
  ``verify --heads FILE`` later checks the trail against it.
* the agent can emit a ``chain_anchor`` event every few minutes (:func:`anchor_event`, wired
  by :class:`AnchorTimer`): the heads of every stream at that moment, in the agent stream.
  Once shipped to Loki/Elasticsearch (which the agent's credentials can append to but should
  not be able to delete from), each anchor pins every stream's history up to it; ``verify``
  checks every anchor it reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from parsers.events import Event, format_epoch

from ..agent_events import agent_event

Heads = dict[str, tuple[int, str]]

ANCHOR_EVENT = "chain_anchor"


def heads_json(heads: Heads) -> dict[str, dict[str, Any]]:
    """``{stream: {"seq": n, "hash": "<sha256 hex>"}}``, streams sorted."""
    return {s: {"seq": q, "hash": h} for s, (q, h) in sorted(heads.items())}


def anchor_event(heads: Heads, *, now: float | None = None) -> Event:
    """An ``agent`` event recording every stream's head (seq and hash of its last event).

    Appended to the agent stream like any agent event, so it is itself chained: deleting an
    anchor leaves a gap in the agent stream, and rewriting one breaks the chain.
    """
    return agent_event(ANCHOR_EVENT, f"audit chain heads of {len(heads)} stream(s)", level="notice", at=now,
                       heads=heads_json(heads))


def heads_snapshot(heads: Heads, *, host: str, now: float | None = None) -> dict[str, Any]:
    """What ``verify --print-heads`` prints and ``verify --heads FILE`` reads back."""
    t = time.time() if now is None else now
    return {"kind": "redis-shipper-chain-heads", "host": host, "taken_at": format_epoch(t),
            "heads": heads_json(heads)}


def parse_heads_file(data: bytes) -> Heads:
    """Heads from a snapshot (:func:`heads_snapshot`) or a bare ``{stream: {seq, hash}}`` map."""
    doc = orjson.loads(data)
    if isinstance(doc, dict) and isinstance(doc.get("heads"), dict):
        doc = doc["heads"]
    if not isinstance(doc, dict):
        raise ValueError("expected {\"heads\": {stream: {\"seq\": n, \"hash\": h}}}")
    out: Heads = {}
    for s, v in doc.items():
        seq = v.get("seq") if isinstance(v, dict) else v[0] if isinstance(v, list) and len(v) == 2 else None
        h = v.get("hash") if isinstance(v, dict) else v[1] if isinstance(v, list) and len(v) == 2 else None
        if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(h, str) or len(h) != 64:
            raise ValueError(f"bad head for stream {s!r}: {v!r}")
        out[str(s)] = (seq, h)
    return out


class AnchorTimer:
    """Emits a ``chain_anchor`` every ``interval`` seconds while the heads keep moving.

    Wiring (runtime, once the spool is open)::

        timer = AnchorTimer(self.spool.chain_heads, self.record_agent, interval=cfg.audit.anchor_interval)
        self.anchor_task = asyncio.create_task(timer.run(self.stop_anchor))  # set after the sources settled

    Nothing is emitted while no stream but the agent's own moved since the last anchor (an idle
    agent does not fill its trail with anchors anchoring anchors).
    """

    def __init__(self, get_heads: Callable[[], Awaitable[Heads]], record: Callable[[Event], Awaitable[None]],
                 *, interval: float = 300.0, agent_stream: str | None = None) -> None:
        self.get_heads = get_heads
        self.record = record
        self.interval = interval
        self.agent_stream = agent_stream
        self._last: Heads | None = None

    async def tick(self) -> bool:
        """Emit an anchor if any stream other than the agent stream moved; True if emitted."""
        heads = await self.get_heads()
        others = {s: v for s, v in heads.items() if s != self.agent_stream}
        last = {s: v for s, v in (self._last or {}).items() if s != self.agent_stream}
        if not others or others == last:
            return False
        await self.record(anchor_event(heads))
        self._last = heads
        return True

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), self.interval)
            except TimeoutError:
                pass
            # one last anchor at shutdown too: the final heads leave the host with the flush
            await self.tick()
