"""The state one run of a :class:`~shipper.sources.files.source.FileSource` works on.

:class:`RunState` owns the checkpoint records, the open streams and the live path each one
is at, and what waits for the next batch (``data_gap`` events, checkpoints that changed
without events). Its methods are the only ones that create streams and records, so the
jobs built on it (:mod:`.startup`, :mod:`.discovery`, :mod:`.truncation`, :mod:`.reading`)
keep a record and its stream in step the same way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from parsers.events import Event, event_id
from shipper.agent_events import agent_event
from shipper.api import Batch, SourceContext
from shipper.observe.metrics import DATA_GAP_BYTES, DATA_GAPS

from .checkpoint import Record, live_marker_key, load_checkpoints
from .fingerprint import head_hash, make_origin, read_head
from .follower import LineParser, Stream
from .handles import OpenedFile, close_fd
from .layout import labels_from_path
from .watcher import Watcher

if TYPE_CHECKING:
    from .source import FileSource

log = logging.getLogger(__name__)


def holds_start_of(s: Stream, head: bytes) -> bool:
    """True when a file whose first bytes are ``head`` starts like stream ``s``: its head is
    ours, or the whole file (shorter than our head) is a prefix of the bytes we read. The
    second case is a copytruncate copy taken before lines we had already read: its bytes
    cannot be matched against our head's checksum, only against the bytes themselves."""
    if s.head.length and s.head.matches(head):
        return True
    hb = s.head_bytes
    return bool(head) and len(head) < s.head.length and hb is not None and hb.startswith(head)


class RunState:
    """Everything one ``run()`` holds, rebuilt from the committed checkpoints on each run: the
    records, the open streams, and the events and checkpoints waiting for the next batch."""

    def __init__(self, src: FileSource, ctx: SourceContext):
        self.src = src
        self.ctx = ctx
        self.cfg = src.cfg
        self.prefix = src.key_prefix
        self.nbytes = src.cfg.fingerprint_bytes
        #: live paths this source has followed (persisted as ``<prefix>live:<hash>`` markers):
        #: after a restart, a rotated sibling of one of them that we do not know is new data,
        #: while at the very first start it is history from before the agent
        self.records, self.marked = load_checkpoints(ctx.positions, self.prefix)
        self.streams: dict[str, Stream] = {}
        self.live: dict[str, str] = {}  # live path -> key of the stream currently at that path
        self.known_lives: set[str] = {r.live for r in self.records.values()} | self.marked
        self.missing_since: dict[str, float] = {}
        self.pending_events: list[Event] = []
        self.pending_positions: dict[str, Any] = {}
        #: streams whose file lost its bytes: flush what we hold, close
        self.sealed: set[str] = set()
        #: rotated files found to be copies of a stream, with (size, mtime) when checked
        self.ignored: dict[tuple[int, int], tuple[int, int]] = {}
        self.last_discovery = float("-inf")
        self.watcher: Watcher | None = None
        #: the monotonic clock of this run (a model test drives the run with its own)
        self.clock: Callable[[], float] = time.monotonic

    def close(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
        for s in self.streams.values():
            s.close()
        self.streams.clear()

    async def emit(self, events: list[Event], positions: dict[str, Any]) -> None:
        """Hand events and checkpoints to the runtime; returns once both are durable."""
        if self.pending_events or self.pending_positions:
            events = self.pending_events + events
            merged = dict(self.pending_positions)
            merged.update(positions)
            positions = merged
            self.pending_events, self.pending_positions = [], {}
        await self.ctx.emit(Batch(events, positions))


    # ------------------------------------------------------------------ streams and records
    def _new_stream(
        self, f: OpenedFile, offset: int, *, key: str | None = None, origin: str | None = None, draining: bool = False
    ) -> Stream:
        """Open a stream on ``f`` from ``offset``: under ``key`` (its record then moves to ``f``),
        or under a fresh key with a fresh record."""
        if key is None:
            key = self._fresh_key(f)
        if origin is None:
            origin = make_origin(f.st.st_dev, f.st.st_ino, f.head) if f.head else ""
        rec = self.records.get(key)
        if rec is None:
            rec = self.records[key] = Record(origin, f.live, f.path, f.st.st_dev, f.st.st_ino, 0, "", offset, 0)
        rec.origin, rec.live, rec.path, rec.dev, rec.ino = origin, f.live, f.path, f.st.st_dev, f.st.st_ino
        rec.set_head(f.head)
        rec.offset = offset
        rec.size = max(f.st.st_size, offset)
        s = Stream(
            key=key,
            record=rec,
            fd=f.fd,
            parser=self._parser(f),
            max_line_bytes=self.cfg.max_line_bytes,
            read_chunk=self.cfg.read_chunk,
            fingerprint_bytes=self.nbytes,
            head_bytes=f.head,
        )
        s.labels = labels_from_path(f.live) or None
        s.last_size = f.st.st_size
        s.last_data = self.clock()
        if draining:
            s.rotated_at = self.clock()
        self.streams[key] = s
        log.debug("following %s (%s) from offset %d", f.path, key, offset)
        self.missing_since.pop(key, None)
        if f.is_live:
            self.live[f.live] = key
        return s

    def _parser(self, f: OpenedFile) -> LineParser:
        """The parser of a new stream; the default factory also sees the file's first bytes (its
        container envelope); a factory given by a test or a bench gets the mtime only."""
        if self.src.parser_sees_head:
            return self.src.parser_factory(f.st.st_mtime, f.head)  # type: ignore[call-arg]
        return self.src.parser_factory(f.st.st_mtime)

    def _mark_live(self, live: str) -> None:
        if live not in self.marked:
            self.marked.add(live)
            self.pending_positions[live_marker_key(self.prefix, live)] = {"live": live}

    def _fresh_key(self, f: OpenedFile) -> str:
        """A checkpoint key for a new stream: dev, inode and head, made unique (an inode reused
        by a file that starts the same, or a file that was empty each time we met it)."""
        base = f"{self.prefix}{f.st.st_dev}:{f.st.st_ino}:{head_hash(f.head)}"
        key, n = base, 1
        while key in self.records or key in self.streams:
            n += 1
            key = f"{base}:{n}"
        return key

    def _sync_record(self, s: Stream) -> Record:
        """Write the stream's reading position into its record (the rest of the record is the
        stream's own identity and place, kept there as they change)."""
        rec = s.record
        rec.offset = s.position()
        rec.size = max(s.last_size, rec.offset)
        return rec

    def _record_only(self, f: OpenedFile, offset: int) -> None:
        """Remember a file we will not read (history present at first start) as read to ``offset``."""
        key = self._fresh_key(f)
        origin = make_origin(f.st.st_dev, f.st.st_ino, f.head) if f.head else ""
        rec = Record(
            origin, f.live, f.path, f.st.st_dev, f.st.st_ino, len(f.head), head_hash(f.head), offset, f.st.st_size,
            f.head.hex(),
        )
        self.records[key] = rec
        self.pending_positions[key] = rec.value()
        close_fd(f.fd)

    def _drop_record(self, key: str) -> None:
        self.records.pop(key, None)
        self.missing_since.pop(key, None)
        self.pending_positions[key] = None

    def _gap(self, *, origin: str, live: str, path: str, start: int, end: int, reason: str) -> None:
        """Record an unrecoverable range as an ``agent`` event (and a metric, and a log line)."""
        nbytes = end - start
        if nbytes <= 0:
            return
        ev = agent_event(
            "data_gap", f"{nbytes} bytes of {path} (offsets {start}..{end}) were lost before they were read: {reason}",
            level="warning", file=path, start=start, end=end, bytes=nbytes, reason=reason)
        ev["file"] = path
        ev["origin"] = origin
        ev["id"] = event_id(origin or f"{path}", f"gap:{start}")
        self.pending_events.append(ev)
        DATA_GAPS.labels(live).inc()
        DATA_GAP_BYTES.labels(live).inc(nbytes)
        log.warning("data gap: %s bytes of %s at %s..%s lost (%s)", nbytes, path, start, end, reason)

    def _shadowed(self, head: bytes) -> bool:
        """True when a file starting with ``head`` is a copy of (a prefix of) a stream we know:
        logrotate ``copy``, or copytruncate before its truncate. Such a file holds no new data.

        The file's whole head must equal the first bytes of the stream's *current* content:
        a stream's head being a prefix of the file's is not enough (a stream that holds only
        ``"L0"`` says nothing about a file starting ``"L042 ..."``). The other way round is a
        copy: a file whose whole content is the start of what a stream read (copytruncate's
        copy when we had read lines written after the copy, before the truncate).
        """
        if not head:
            return False
        n = len(head)
        for s in self.streams.values():
            if n < s.head.length and s.head_bytes is not None and s.head_bytes.startswith(head):
                return True  # the whole file is the start of what this stream read
            if s.fd >= 0:
                try:
                    if read_head(s.fd, n) == head:
                        return True
                except OSError:
                    pass
        digest = head_hash(head)
        return any(
            (r.head_len == n and r.head == digest) or (n < r.head_len and r.holds_start_of(head))
            for r in self.records.values()
        )
