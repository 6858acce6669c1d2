"""Reading: one read per stream per pass, and the checkpoint that goes with it.

Each stream is read in a worker thread (rotated ones first, so older lines go first), in
chunks, through the line splitter and the parser, up to ``max_batch_events``; its events
and its new checkpoint are emitted together, so the checkpoint never passes a byte whose
events are not durable. A drained rotated stream is closed; a sealed one (its remaining
bytes are gone) ships what it holds.
"""

from __future__ import annotations

import asyncio

from shipper.observe.metrics import BYTES_READ, FILE_LAG_BYTES, LINES_READ

from .follower import ReadResult, Stream
from .truncation import Truncation


class Reading(Truncation):
    """Reads every open stream once (see module docstring)."""

    async def read_all(self, now: float) -> bool:
        """One read per stream (rotated ones first); returns True when any has more ready."""
        more = False
        order = sorted(self.streams.values(), key=lambda s: (s.rotated_at is None, s.rotated_at or 0.0))
        for s in order:
            if self.ctx.stop.is_set():
                break
            if s.key not in self.streams:
                continue
            sealed = s.key in self.sealed
            finishing = sealed or (
                s.rotated_at is not None and now - max(s.rotated_at, s.last_data) >= self.src.rotate_wait
            )
            if sealed:
                res = await asyncio.to_thread(self._finish_sealed, s, now)
            else:
                res = await asyncio.to_thread(
                    s.read_batch,
                    self.cfg.max_batch_events,
                    now=now,
                    partial_timeout=self.cfg.partial_line_timeout,
                    idle_flush=self.src.idle_flush,
                    finishing=finishing,
                )
            if res.bytes:
                BYTES_READ.labels(s.live).inc(res.bytes)
            if res.lines:
                LINES_READ.labels(s.live).inc(res.lines)
            rec = self._sync_record(s)
            progress = rec.progress()
            changed = progress != s.synced
            s.synced = progress
            if res.events or changed:
                await self.emit(res.events, {s.key: rec.value()})
                if self.live.get(s.live) == s.key:
                    FILE_LAG_BYTES.labels(s.live).set(max(0, res.size - rec.offset))
            if res.truncated and not sealed:
                self._truncated(s, self.clock())
                more = True
                continue
            if finishing and not res.more:
                s.close()
                del self.streams[s.key]
                self.sealed.discard(s.key)
                if self.live.get(s.live) == s.key:
                    del self.live[s.live]
            more = more or res.more
        return more

    @staticmethod
    def _finish_sealed(s: Stream, now: float) -> ReadResult:
        """A stream whose remaining bytes are gone: ship what is held, as it is."""
        res = ReadResult()
        for line, off, cut in s.splitter.lines():
            res.lines += 1
            res.events.extend(s.parser.feed(line, off, cut_bytes=cut))
        taken = s.splitter.take_partial()
        if taken is not None:
            line, off, cut = taken
            res.lines += 1
            res.events.extend(s.parser.feed(line, off, cut_bytes=cut, partial=True))
        res.events.extend(s.parser.flush())
        if res.events:
            s._decorate(res.events)
        res.size = s.last_size
        return res
