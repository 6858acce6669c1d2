"""``FileSource``: follow Redis/Valkey/Sentinel log files without loss, with checkpoints.

The loop, once per wake-up (inotify hint) or ``poll_interval`` (the truth):

1. **discover**: ``stat()`` each live path. Same inode, shrunk or first bytes changed ->
   *truncation* (copytruncate: continue the stream in the copy; in place: ``data_gap`` for
   what we never read). Another inode or none -> the old file was *renamed or deleted*: keep
   draining it through the open descriptor, and start the new file at byte 0. Then list the
   rotated siblings: re-open a closed rotated file that grew, adopt an unknown one.
2. **read**: each stream in a worker thread (rotated ones first, so older lines go first),
   in chunks, through the line splitter and the parser, up to ``max_batch_events``.
3. **emit**: ``await ctx.emit(Batch(events, {key: checkpoint}))``; when it returns the events
   and the checkpoint are durable together, which is the acknowledgement. The checkpoint
   (``offset``) never passes a byte whose events are not in that batch or an earlier one,
   so a SIGKILL at any moment loses nothing and replays at most the batch in flight.

Each job has its module, after Vector's file source: :mod:`.startup` (match checkpoints to
files), :mod:`.discovery` (renames, deletes, new files), :mod:`.truncation` (copytruncate,
truncation in place), :mod:`.reading` (read, emit with the checkpoint), on the state of
:mod:`.state`; :mod:`.checkpoint` (what is stored), :mod:`.follower` (one stream),
:mod:`.reader` (bytes to lines), :mod:`.fingerprint` (identity), :mod:`.paths` (names),
:mod:`.watcher` (inotify hints). This module holds the configuration and the loop.

Files first seen at startup honour ``start_at``; everything that appears later (a new file
after a rotation, a new glob match, a rotated file we never saw) is read from its first
byte, because every byte of it was written after we started watching.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import datetime, tzinfo

from shipper.api import Source, SourceContext
from shipper.config import FileSourceConfig

from . import paths
from .checkpoint import Record
from .discovery import Discovery
from .follower import LineParser
from .reading import Reading
from .startup import Startup
from .watcher import Watcher

__all__ = ["FileSource", "Record"]

#: after a wake-up from inotify, wait this long so a burst of writes is read in one go. Redis
#: writes one line per write(): at 1,000 lines/s each read, parse and spool commit (an fsync)
#: serves 50 lines instead of 20, for ~20 % less CPU per line than 20 ms and ~30 ms more latency
#: (docs/performance.md, the freshness budget)
WAKE_COALESCE = 0.05


class FileSource(Source):
    """Follows the files of one ``type: file`` source (a path or a glob)."""

    def __init__(
        self,
        cfg: FileSourceConfig,
        *,
        tz: tzinfo,
        name: str | None = None,
        parser_factory: Callable[[float | None], LineParser] | None = None,
        rotate_wait: float = 5.0,
        idle_flush: float = 1.0,
        stale_after: float = 3600.0,
    ):
        self.cfg = cfg
        self.tz = tz
        self.name = name or f"file:{cfg.path}"
        digest = hashlib.blake2b(cfg.path.encode("utf-8", "surrogateescape"), digest_size=6).hexdigest()
        self.key_prefix = f"file:{digest}:"
        configured = "rotated_patterns" in cfg.model_fields_set
        self.patterns: tuple[str, ...] = (
            tuple(cfg.rotated_patterns) if configured else paths.DEFAULT_ROTATED_PATTERNS
        )
        self.parser_factory = parser_factory or self._default_parser_factory()
        self.parser_sees_head = parser_factory is None
        #: a renamed-away file is read until it has not grown for this long, then closed
        self.rotate_wait = rotate_wait
        #: a pending multi-line event is flushed after this long without new bytes
        self.idle_flush = idle_flush
        #: checkpoints of files not found anywhere for this long are deleted
        self.stale_after = stale_after

    def _default_parser_factory(self) -> Callable[[float | None], LineParser]:
        cfg, tz = self.cfg, self.tz

        def make(mtime: float | None, head: bytes = b"") -> LineParser:
            from parsers.envelope import ContainerLogParser, detect
            from parsers.logfile import LogParser

            ref = datetime.fromtimestamp(mtime, tz) if mtime else None
            parser = LogParser(
                kind=cfg.format, tz=tz, reference_time=ref, year=cfg.year, max_line_bytes=cfg.max_line_bytes
            )
            fmt = cfg.container_format
            if fmt == "auto" and head:  # decided from the file's first bytes: a host file costs nothing more
                fmt = detect(head.split(b"\n", 1)[0])
            if fmt == "plain":
                return parser  # type: ignore[return-value]
            return ContainerLogParser(parser, fmt, max_line_bytes=cfg.max_line_bytes)  # type: ignore[return-value]

        return make

    async def run(self, ctx: SourceContext) -> None:
        run = _Run(self, ctx)
        try:
            await run.main()
        finally:
            run.close()


class _Run(Startup, Discovery, Reading):
    """One ``run()``: startup, then discovery and reading until stopped."""

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        self.watcher = Watcher([paths.watch_dirs(self.cfg.path)], loop, enabled=self.cfg.inotify)
        self.watcher.start()
        await self.startup()
        stop = self.ctx.stop
        while not stop.is_set():
            if await self.step(self.clock()):
                await asyncio.sleep(0)
                continue
            if await self._wait(self.next_timeout(self.clock())):
                await asyncio.sleep(WAKE_COALESCE)

    async def step(self, now: float) -> bool:
        """One pass of the loop: discovery when due (or hinted by inotify), one read per
        stream, then what waits (``data_gap`` events, moved checkpoints). True when a stream
        has more ready at once."""
        w = self.watcher
        if (w is not None and w.structure.is_set()) or now - self.last_discovery >= self.cfg.poll_interval:
            if w is not None:
                w.structure.clear()
            self.discover(now)
            self.last_discovery = now
            if w is not None:
                w.retry()
        if w is not None:
            w.wake.clear()
        more = await self.read_all(now)
        if self.pending_events or self.pending_positions:
            await self.emit([], {})
        return more

    async def _wait(self, timeout: float) -> bool:
        """Wait for an inotify hint, stop, or the timeout; True when woken by inotify."""
        assert self.watcher is not None
        stop = self.ctx.stop
        if stop.is_set():
            return False
        waits = [asyncio.ensure_future(self.watcher.wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            done, _ = await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        return self.watcher.wake.is_set() and not stop.is_set()

    def next_timeout(self, now: float) -> float:
        deadline = self.last_discovery + self.cfg.poll_interval
        for s in self.streams.values():
            if s.partial_since is not None:
                deadline = min(deadline, s.partial_since + self.cfg.partial_line_timeout)
            if s.parser.pending_offset is not None:
                deadline = min(deadline, s.last_data + self.src.idle_flush)
            if s.rotated_at is not None:
                deadline = min(deadline, max(s.rotated_at, s.last_data) + self.src.rotate_wait)
        return max(0.005, deadline - now)
