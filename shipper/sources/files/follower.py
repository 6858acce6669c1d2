"""One followed byte stream: an open file descriptor, a line splitter, a parser, an offset.

A *stream* is the content of one log file from its first byte, wherever that content lives:
``redis.log`` until a rename rotation, then ``redis.log.1`` through the same descriptor; or,
after a copytruncate, the copy ``redis.log.1`` (another inode, the same bytes), which the
source switches the stream to. Event ids are ``event_id(origin, offset)``: the same for a
replayed line, whichever file it is re-read from.

:meth:`Stream.read_batch` does the blocking work (``pread`` in big chunks, line splitting,
parsing) and runs in a worker thread via ``asyncio.to_thread``; only one call per stream
runs at a time, so the stream needs no lock. It never moves a checkpoint: it returns events
and the offset that becomes safe once those events are durable, and the source emits both
together.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from parsers.events import Event

from .checkpoint import Record
from .fingerprint import Head, make_origin, read_head
from .reader import LineSplitter


class LineParser(Protocol):
    """The part of ``parsers.logfile.LogParser`` the follower uses."""

    pending_offset: int | None

    def feed(self, line: bytes, offset: int, *, cut_bytes: int = 0, partial: bool = False) -> list[Event]: ...

    def flush(self) -> list[Event]: ...


ParserFactory = Callable[[float | None], LineParser]
"""Builds a parser for a new stream; the argument is the file's mtime (year inference)."""


@dataclass
class ReadResult:
    events: list[Event] = field(default_factory=list)
    bytes: int = 0
    lines: int = 0
    #: the batch filled up or a chunk boundary was hit: call again without waiting
    more: bool = False
    #: the file shrank below what we read, or its first bytes changed: the source must act
    truncated: bool = False
    #: file size seen by fstat during this read
    size: int = 0


class Stream:
    """State of one followed byte stream (see module docstring)."""

    def __init__(
        self,
        *,
        key: str,
        record: Record,
        fd: int,
        parser: LineParser,
        max_line_bytes: int,
        read_chunk: int,
        fingerprint_bytes: int,
        head_bytes: bytes | None = None,
    ):
        self.key = key
        #: the checkpoint record, owner of the stream's identity and place (origin, live, path,
        #: dev, ino, head); reading starts at its ``offset``
        self.record = record
        self.fd = fd
        #: the first bytes of the stream as we read them (``head``'s bytes), grown from the very
        #: bytes read; None when unknown (then the head is never extended)
        self.head_bytes: bytes | None = head_bytes if head_bytes is not None else (
            b"" if not record.head_len else None)
        self.parser = parser
        offset = record.offset
        self.splitter = LineSplitter(offset, max_line_bytes)
        self.read_chunk = read_chunk
        self.fingerprint_bytes = fingerprint_bytes
        self.last_size = offset  # file size last seen by stat/fstat
        self.last_mtime_ns = 0  # modification time last seen by the source's stat
        self.rotated_at: float | None = None  # monotonic time it was renamed/copied away
        self.last_data: float = 0.0  # monotonic time bytes last arrived
        self.partial_since: float | None = None
        self._partial_at: int = -1  # offset of the partial line partial_since refers to
        #: ``record.progress()`` when the record was last brought up to date: a difference
        #: is a checkpoint to emit even without events
        self.synced = record.progress()
        #: labels the file's path gives (kubelet / Docker layout: shipper/sources/files/layout.py)
        self.labels: dict[str, str] | None = None
        self._id_origin: str | None = None
        self._id_base = b""

    # the stream's identity and place, as its record holds them
    @property
    def origin(self) -> str:
        return self.record.origin

    @property
    def live(self) -> str:
        return self.record.live

    @property
    def path(self) -> str:
        return self.record.path

    @property
    def dev(self) -> int:
        return self.record.dev

    @property
    def ino(self) -> int:
        return self.record.ino

    @property
    def head(self) -> Head:
        return self.record.fingerprint

    def position(self) -> int:
        """Offset before which every byte's events have been returned by read_batch: the
        checkpoint value once those events are durable. Never past the parser's pending
        multi-line event."""
        off = self.splitter.offset
        pending = self.parser.pending_offset
        return off if pending is None or pending > off else pending

    def _decorate(self, events: list[Event]) -> None:
        """Set ``file``, ``origin`` and ``id`` (= ``parsers.events.event_id(origin, position)``:
        one hash call on the origin's cached bytes and the position)."""
        origin, path = self.origin, self.path
        if self._id_origin != origin:
            self._id_base, self._id_origin = origin.encode("utf-8", "surrogatepass") + b"\0", origin
        base = self._id_base
        blake2b = hashlib.blake2b
        labels = self.labels
        for ev in events:
            if labels:
                ev["_labels"] = labels
            off = ev.get("offset")
            pos = str(off) if ev.get("lines", 1) else f"{off}:{ev.get('event')}"
            ev["file"] = path
            ev["origin"] = origin
            ev["id"] = blake2b(base + pos.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()

    def read_batch(
        self,
        max_events: int,
        *,
        now: float,
        partial_timeout: float,
        idle_flush: float,
        finishing: bool = False,
    ) -> ReadResult:
        """Read and parse until ``max_events`` events are ready or the file has no more bytes.

        ``finishing``: the file will not grow any more (rotated away and drained): ship a held
        partial line and every pending multi-line event now.
        """
        res = ReadResult()
        events = res.events
        sp = self.splitter
        feed = self.parser.feed
        fd = self.fd
        nlines = 0
        eof = False
        try:
            size = os.fstat(fd).st_size
        except OSError:
            size = sp.end_offset
        res.size = size
        if size < sp.end_offset:
            res.truncated = True
            return res
        while len(events) < max_events:
            if not sp.has_lines:
                want = min(self.read_chunk, size - sp.end_offset)
                if want <= 0:
                    size = os.fstat(fd).st_size  # it may have grown meanwhile
                    want = min(self.read_chunk, size - sp.end_offset)
                    if want <= 0:
                        res.truncated = size < sp.end_offset
                        eof = True
                        break
                data = os.pread(fd, want, sp.end_offset)
                if not data:
                    eof = True
                    break
                if self.record.head_len and not self._head_unchanged():
                    # rewritten under us (truncated and regrown): these bytes are not our stream
                    res.truncated = True
                    break
                res.bytes += len(data)
                self.last_data = now
                hb = self.head_bytes
                if hb is not None and len(hb) < self.fingerprint_bytes and 0 <= len(hb) - sp.end_offset < len(data):
                    self.head_bytes = hb + data[len(hb) - sp.end_offset : self.fingerprint_bytes - sp.end_offset]
                sp.push(data)
            nlines += sp.feed_lines(feed, events, max_events)
        res.size = max(size, sp.end_offset)
        self.last_size = res.size
        if sp.has_partial:
            if self._partial_at != sp.partial_offset:  # a new partial line: its wait starts now
                self._partial_at = sp.partial_offset
                self.partial_since = now
        else:
            self.partial_since = None
            self._partial_at = -1
        if eof and not res.truncated:
            if sp.has_partial and (
                finishing or (self.partial_since is not None and now - self.partial_since >= partial_timeout)
            ):
                taken = sp.take_partial()
                if taken is not None:
                    line, off, cut = taken
                    nlines += 1
                    events.extend(feed(line, off, cut_bytes=cut, partial=True))
                self.partial_since = None
                self._partial_at = -1
            if self.parser.pending_offset is not None and (finishing or now - self.last_data >= idle_flush):
                events.extend(self.parser.flush())
        if not res.truncated:
            self._extend_head()
        res.lines = nlines
        res.more = not eof and not res.truncated
        if events:
            self._decorate(events)
        return res

    def _head_unchanged(self) -> bool:
        head = self.record.fingerprint
        return head.matches(read_head(self.fd, head.length))

    def _extend_head(self) -> None:
        """Grow the remembered head (up to fingerprint_bytes) as the file grows, so a later
        copy of this stream is recognised with the full fingerprint; name a stream that was
        born empty after its first bytes.

        The head grows from the bytes this stream read and shipped, never from a fresh read of
        the file: a copytruncate landing between our read and such a re-read would give the
        stream the head of the file's *new* content, hide the truncation, and make its copy
        look like a new file (read again from byte 0: every line twice)."""
        head = self.head_bytes
        if head is None:
            return
        rec = self.record
        if not rec.origin and head:
            rec.origin = make_origin(rec.dev, rec.ino, head)
        if len(head) > rec.head_len:
            rec.set_head(head)

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1
