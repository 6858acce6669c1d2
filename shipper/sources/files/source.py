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

Checkpoint keys are ``file:<source hash>:<dev>:<ino>:<head checksum at birth>``, one per
byte stream; the value (:class:`Record`) says where the stream is now (dev, ino, path) and
how far it is durable. After a restart, records are matched to files on disk first *exactly*
(same inode and first bytes: the file, wherever it was renamed), then by *content* (same
first bytes on another inode: the copytruncate copy), and what cannot be matched but held
unread bytes becomes a ``data_gap`` event (compressed away, deleted, truncated).

Files first seen at startup honour ``start_at``; everything that appears later (a new file
after a rotation, a new glob match, a rotated file we never saw) is read from its first
byte, because every byte of it was written after we started watching.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, tzinfo
from typing import Any

from parsers.events import Event, event_id, format_epoch, make_event
from shipper.api import Batch, Source, SourceContext
from shipper.config import FileSourceConfig
from shipper.observe.metrics import (
    BYTES_READ,
    DATA_GAP_BYTES,
    DATA_GAPS,
    FILE_LAG_BYTES,
    LINES_READ,
    ROTATIONS,
)

from .fingerprint import Head, gzip_head_and_size, head_hash, make_origin, read_head
from .follower import LineParser, ReadResult, Stream
from .layout import labels_from_path
from .paths import DEFAULT_ROTATED_PATTERNS, expand, siblings, watch_dirs
from .watcher import Watcher

log = logging.getLogger(__name__)

#: after a wake-up from inotify, wait this long so a burst of writes is read in one go
WAKE_COALESCE = 0.02


@dataclass
class Record:
    """The checkpoint of one byte stream (the JSON value stored under its key)."""

    origin: str
    live: str  # the live path this stream belongs to (redis.log for redis.log.1)
    path: str  # where the stream's bytes were last seen
    dev: int
    ino: int
    head_len: int
    head: str
    offset: int  # every byte before this is durable (in the spool) as events
    size: int  # file size last seen: what a data_gap can name as lost
    #: the ``head_len`` first bytes themselves, hex ("" when unknown: older checkpoints). The
    #: checksum cannot recognise a copytruncate copy shorter than the head (we had read lines
    #: written after the copy); these bytes can, after a restart too.
    start: str = ""

    def start_bytes(self) -> bytes | None:
        if len(self.start) != 2 * self.head_len:
            return None
        try:
            return bytes.fromhex(self.start)
        except ValueError:
            return None

    def holds_start_of(self, head: bytes) -> bool:
        """A file whose first bytes are ``head`` starts like this stream (see ``_holds_start_of``)."""
        if self.head_len and self.fingerprint.matches(head):
            return True
        if not head or len(head) >= self.head_len:
            return False
        start = self.start_bytes()
        return start is not None and start.startswith(head)

    def value(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_value(cls, value: Any) -> Record | None:
        try:
            return cls(
                origin=str(value["origin"]),
                live=str(value["live"]),
                path=str(value["path"]),
                dev=int(value["dev"]),
                ino=int(value["ino"]),
                head_len=int(value["head_len"]),
                head=str(value["head"]),
                offset=int(value["offset"]),
                size=int(value["size"]),
                start=str(value.get("start", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    @property
    def fingerprint(self) -> Head:
        return Head(self.head_len, self.head)


@dataclass
class _File:
    """A file found on disk during a scan, opened so its identity cannot change under us."""

    path: str
    live: str
    is_live: bool
    fd: int
    st: os.stat_result
    head: bytes

    @property
    def ident(self) -> tuple[int, int]:
        return (self.st.st_dev, self.st.st_ino)


def _open(path: str, n: int) -> tuple[int, os.stat_result, bytes] | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        head = read_head(fd, min(n, st.st_size)) if st.st_size else b""
    except OSError:
        os.close(fd)
        return None
    return fd, st, head


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _holds_start_of(s: Stream, head: bytes) -> bool:
    """True when a file whose first bytes are ``head`` starts like stream ``s``: its head is
    ours, or the whole file (shorter than our head) is a prefix of the bytes we read. The
    second case is a copytruncate copy taken before lines we had already read: its bytes
    cannot be matched against our head's checksum, only against the bytes themselves."""
    if s.head.length and s.head.matches(head):
        return True
    hb = s.head_bytes
    return bool(head) and len(head) < s.head.length and hb is not None and hb.startswith(head)


def _last_line_start(fd: int, size: int) -> int:
    """Offset just after the last newline before ``size`` (``start_at: end`` must not begin
    in the middle of a half-written line)."""
    window = min(size, 1 << 16)
    if window <= 0:
        return 0
    tail = os.pread(fd, window, size - window)
    nl = tail.rfind(b"\n")
    return size - window + nl + 1 if nl >= 0 else size


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
        self.patterns: tuple[str, ...] = (
            tuple(cfg.rotated_patterns) if "rotated_patterns" in cfg.model_fields_set else DEFAULT_ROTATED_PATTERNS
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


class _Run:
    """Everything one ``run()`` holds; rebuilt from the committed checkpoints on each run."""

    def __init__(self, src: FileSource, ctx: SourceContext):
        self.src = src
        self.ctx = ctx
        self.cfg = src.cfg
        self.prefix = src.key_prefix
        self.nbytes = src.cfg.fingerprint_bytes
        self.records: dict[str, Record] = {}
        #: live paths this source has followed (persisted as ``<prefix>live:<hash>`` markers):
        #: after a restart, a rotated sibling of one of them that we do not know is new data,
        #: while at the very first start it is history from before the agent
        self.marked: set[str] = set()
        for key, value in ctx.positions.items():
            if not key.startswith(self.prefix):
                continue
            if key.startswith(self.prefix + "live:"):
                if isinstance(value, dict) and isinstance(value.get("live"), str):
                    self.marked.add(value["live"])
                continue
            rec = Record.from_value(value)
            if rec is None:
                log.warning("ignoring unreadable checkpoint %s: %r", key, value)
                continue
            self.records[key] = rec
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

    # ------------------------------------------------------------------ main loop
    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        self.watcher = Watcher([watch_dirs(self.cfg.path)], loop, enabled=self.cfg.inotify)
        self.watcher.start()
        await self.startup()
        stop = self.ctx.stop
        while not stop.is_set():
            now = time.monotonic()
            if self.watcher.structure.is_set() or now - self.last_discovery >= self.cfg.poll_interval:
                self.watcher.structure.clear()
                self.discover(now)
                self.last_discovery = now
                self.watcher.retry()
            self.watcher.wake.clear()
            more = await self.read_all(now)
            if self.pending_events or self.pending_positions:
                await self.emit([], {})
            if more:
                await asyncio.sleep(0)
                continue
            if await self._wait(self.next_timeout(time.monotonic())):
                await asyncio.sleep(WAKE_COALESCE)

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
        self, f: _File, offset: int, *, key: str | None = None, origin: str | None = None, draining: bool = False
    ) -> Stream:
        if key is None:
            key = self._fresh_key(f)
        if origin is None:
            origin = make_origin(f.st.st_dev, f.st.st_ino, f.head) if f.head else ""
        s = Stream(
            key=key,
            origin=origin,
            live=f.live,
            path=f.path,
            fd=f.fd,
            dev=f.st.st_dev,
            ino=f.st.st_ino,
            head=Head.of(f.head),
            offset=offset,
            parser=self._parser(f),
            max_line_bytes=self.cfg.max_line_bytes,
            read_chunk=self.cfg.read_chunk,
            fingerprint_bytes=self.nbytes,
            head_bytes=f.head,
        )
        s.labels = labels_from_path(f.live) or None
        s.last_size = f.st.st_size
        s.last_data = time.monotonic()
        if draining:
            s.rotated_at = time.monotonic()
        self.streams[key] = s
        log.debug("following %s (%s) from offset %d", f.path, key, offset)
        rec = self.records.get(key)
        if rec is None:
            self.records[key] = Record(
                origin, f.live, f.path, f.st.st_dev, f.st.st_ino, len(f.head), s.head.digest, offset, f.st.st_size,
                f.head.hex(),
            )
        self._sync_record(s)
        self.missing_since.pop(key, None)
        if f.is_live:
            self.live[f.live] = key
        return s

    def _parser(self, f: _File) -> LineParser:
        """The parser of a new stream; the default factory also sees the file's first bytes (its
        container envelope); a factory given by a test or a bench gets the mtime only."""
        if self.src.parser_sees_head:
            return self.src.parser_factory(f.st.st_mtime, f.head)  # type: ignore[call-arg]
        return self.src.parser_factory(f.st.st_mtime)

    def _mark_live(self, live: str) -> None:
        if live not in self.marked:
            self.marked.add(live)
            digest = hashlib.blake2b(live.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
            self.pending_positions[f"{self.prefix}live:{digest}"] = {"live": live}

    def _fresh_key(self, f: _File) -> str:
        """A checkpoint key for a new stream: dev, inode and head, made unique (an inode reused
        by a file that starts the same, or a file that was empty each time we met it)."""
        base = f"{self.prefix}{f.st.st_dev}:{f.st.st_ino}:{head_hash(f.head)}"
        key, n = base, 1
        while key in self.records or key in self.streams:
            n += 1
            key = f"{base}:{n}"
        return key

    def _sync_record(self, s: Stream) -> Record:
        rec = self.records[s.key]
        rec.origin, rec.live, rec.path = s.origin, s.live, s.path
        rec.dev, rec.ino = s.dev, s.ino
        rec.head_len, rec.head = s.head.length, s.head.digest
        if s.head_bytes is not None and len(s.head_bytes) == s.head.length:
            rec.start = s.head_bytes.hex()
        rec.offset = s.position()
        rec.size = max(s.last_size, rec.offset)
        return rec

    def _record_only(self, f: _File, offset: int) -> None:
        """Remember a file we will not read (history present at first start) as read to ``offset``."""
        key = self._fresh_key(f)
        origin = make_origin(f.st.st_dev, f.st.st_ino, f.head) if f.head else ""
        rec = Record(
            origin, f.live, f.path, f.st.st_dev, f.st.st_ino, len(f.head), head_hash(f.head), offset, f.st.st_size,
            f.head.hex(),
        )
        self.records[key] = rec
        self.pending_positions[key] = rec.value()
        _close(f.fd)

    def _drop_record(self, key: str) -> None:
        self.records.pop(key, None)
        self.missing_since.pop(key, None)
        self.pending_positions[key] = None

    def _gap(self, *, origin: str, live: str, path: str, start: int, end: int, reason: str) -> None:
        """Record an unrecoverable range as an ``agent`` event (and a metric, and a log line)."""
        nbytes = end - start
        if nbytes <= 0:
            return
        ev = make_event(
            timestamp=format_epoch(time.time()),
            source="agent",
            category="other",
            event="data_gap",
            level="warning",
            message=f"{nbytes} bytes of {path} (offsets {start}..{end}) were lost before they were read: {reason}",
            fields={"file": path, "start": start, "end": end, "bytes": nbytes, "reason": reason},
        )
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

    def _cut_stream_copied_to(self, head: bytes) -> Stream | None:
        """The stream a file starting with ``head`` is a copy of, when that stream's own file
        no longer holds what we read (shrank, or its first bytes changed): a copytruncate that
        happened after this pass checked the stream's file. Without this, the copy of a stream
        whose head is still short (its file was under ``fingerprint_bytes``) would be adopted
        as a new file and read again from byte 0."""
        for s in self.streams.values():
            if s.key in self.sealed or s.fd < 0 or not s.head.length or not _holds_start_of(s, head):
                continue
            try:
                if os.fstat(s.fd).st_size < s.splitter.end_offset or not s.head.matches(
                    read_head(s.fd, s.head.length)
                ):
                    return s
            except OSError:
                continue
        return None

    def _compressed_copy(self, live: str, head: Head) -> tuple[str, int] | None:
        """A compressed sibling whose content starts like ``head``: (path, uncompressed size)."""
        if not head.length:
            return None
        for p in siblings(live, self.src.patterns, compressed=True):
            if not p.endswith(".gz"):
                continue
            got = gzip_head_and_size(p, head.length)
            if got is not None and head.matches(got[0]):
                return p, got[1]
        return None

    # ------------------------------------------------------------------ startup
    def _scan(self, lives: list[str]) -> list[_File]:
        """Open every live file and rotated sibling (rotated first, oldest first)."""
        files: list[_File] = []
        seen: set[tuple[int, int]] = set()
        all_lives = list(lives) + sorted(self.known_lives - set(lives))
        for live in all_lives:
            candidates = [(p, False) for p in siblings(live, self.src.patterns)]
            if live in lives:
                candidates.append((live, True))
            for path, is_live in candidates:
                got = _open(path, self.nbytes)
                if got is None:
                    continue
                fd, st, head = got
                ident = (st.st_dev, st.st_ino)
                if ident in seen:  # a hard link seen twice
                    _close(fd)
                    continue
                seen.add(ident)
                files.append(_File(path, live, is_live, fd, st, head))
        return files

    async def startup(self) -> None:
        now = time.monotonic()
        first_start = not self.records and not self.marked
        lives = expand(self.cfg.path, self.src.patterns)
        files = self._scan(lives)
        log.debug("startup: %d checkpoints, files %s", len(self.records),
                  [(f.path, f.st.st_ino, f.st.st_size) for f in files])
        by_ident = {f.ident: f for f in files}
        matched: dict[str, _File] = {}
        used: set[tuple[int, int]] = set()
        # 1. exact: same inode, same first bytes, not shorter than our offset
        for key, rec in self.records.items():
            f = by_ident.get((rec.dev, rec.ino))
            if (f is not None and rec.head_len and f.ident not in used and rec.fingerprint.matches(f.head)
                    and f.st.st_size >= rec.offset):
                matched[key] = f
                used.add(f.ident)
        # 2. content: the same first bytes on another inode (a copytruncate copy)
        for key, rec in self.records.items():
            if key in matched or not rec.head_len:
                continue
            for f in files:
                if f.ident in used or f.is_live:
                    continue
                if rec.holds_start_of(f.head) and f.st.st_size >= rec.offset:
                    matched[key] = f
                    used.add(f.ident)
                    ROTATIONS.labels(rec.live, "copytruncate").inc()
                    # bytes the live file had beyond the copy: written between copy and truncate
                    self._gap(origin=rec.origin, live=rec.live, path=rec.path,
                              start=max(f.st.st_size, rec.offset), end=rec.size, reason="copytruncate")
                    break
        # 2b. streams we only ever saw empty: any content matches their (empty) head, so they
        # come last and never claim a file that is a copy of a known stream
        for key, rec in self.records.items():
            f = by_ident.get((rec.dev, rec.ino))
            if key in matched or rec.head_len or f is None or f.ident in used or self._shadowed(f.head):
                continue
            matched[key] = f
            used.add(f.ident)
        # 3. records with no file: lost or finished
        for key, rec in list(self.records.items()):
            if key in matched:
                continue
            comp = self._compressed_copy(rec.live, rec.fingerprint)
            present = (rec.dev, rec.ino) in by_ident
            if comp is not None and comp[1] > rec.offset:
                self._gap(origin=rec.origin, live=rec.live, path=comp[0], start=rec.offset, end=comp[1],
                          reason="rotated_compressed")
                self._drop_record(key)
            elif comp is None and rec.size > rec.offset:
                self._gap(origin=rec.origin, live=rec.live, path=rec.path, start=rec.offset, end=rec.size,
                          reason="truncated" if present else "deleted")
                self._drop_record(key)
            else:
                self.missing_since[key] = now
        # 4. open streams for what we know, decide for what we do not
        for key, f in matched.items():
            rec = self.records[key]
            if not f.is_live and f.st.st_size <= rec.offset:
                if (rec.path, rec.dev, rec.ino) != (f.path, f.st.st_dev, f.st.st_ino):
                    rec.path, rec.dev, rec.ino = f.path, f.st.st_dev, f.st.st_ino
                    self.pending_positions[key] = rec.value()
                _close(f.fd)
                continue
            s = self._new_stream(f, rec.offset, key=key, origin=rec.origin, draining=not f.is_live)
            if (rec.path, rec.dev, rec.ino) != (s.path, s.dev, s.ino):
                self.pending_positions[key] = self._sync_record(s).value()
        for f in files:
            if f.ident in used:
                continue
            known = f.live in self.known_lives
            if f.is_live:
                if known or self.cfg.start_at == "beginning":
                    offset = 0
                else:
                    offset = _last_line_start(f.fd, f.st.st_size)
                s = self._new_stream(f, offset)
                # durable at once: start_at: end must survive a restart before the first batch,
                # and a restart must know this file was seen (rotated siblings are then new data)
                self.pending_positions[s.key] = self._sync_record(s).value()
            elif not f.head or self._shadowed(f.head):
                _close(f.fd)  # empty (maybe a copy being written: see discover) or a copy of a stream
            elif known and not first_start:
                self._new_stream(f, 0, draining=True)  # rotated while we were down: all new to us
            else:
                self._record_only(f, f.st.st_size)  # history from before our first start
        self.known_lives.update(lives)
        for live in lives:
            self._mark_live(live)
        self.last_discovery = now
        if self.pending_events or self.pending_positions:
            await self.emit([], {})

    # ------------------------------------------------------------------ discovery while running
    def discover(self, now: float) -> None:
        lives = expand(self.cfg.path, self.src.patterns)
        present = set(lives)
        for live in sorted(present | set(self.live)):
            self._check_live(live, now, live in present)
        self.known_lives.update(present)
        for live in present:
            self._mark_live(live)
        # a rotated file we drain can be truncated too (copytruncate run on it, or a rename
        # rotation right after a copytruncate): find its copy before the copy looks like news
        for s in list(self.streams.values()):
            if s.rotated_at is None or s.key in self.sealed or s.fd < 0:
                continue
            try:
                fst = os.fstat(s.fd)
                changed = fst.st_size != s.last_size or fst.st_mtime_ns != s.last_mtime_ns
                s.last_mtime_ns = fst.st_mtime_ns
                if fst.st_size < s.splitter.end_offset or (
                    changed and s.head.length and not s.head.matches(read_head(s.fd, s.head.length))
                ):
                    self._truncated(s, now)
            except OSError:
                continue
        seen: set[str] = set(self.streams)
        by_ident = {(s.dev, s.ino): s for s in self.streams.values()}
        closed = {(r.dev, r.ino): k for k, r in self.records.items() if k not in self.streams}
        for live in sorted(self.known_lives):
            for path in siblings(live, self.src.patterns):
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                ident = (st.st_dev, st.st_ino)
                s = by_ident.get(ident)
                if s is not None:
                    s.path = path  # a rename of a rotated file (.1 -> .2) while we drain it
                    continue
                key = closed.get(ident)
                if key is not None:
                    rec = self.records[key]
                    if st.st_size == rec.offset or self._reopen(key, path, live):
                        seen.add(key)
                        if rec.path != path:
                            rec.path = path
                            self.pending_positions[key] = rec.value()
                        continue
                    # not the file we knew: its inode number was reused by a new file
                if self.ignored.get(ident) == (st.st_size, st.st_mtime_ns):
                    continue
                got = _open(path, self.nbytes)
                if got is None:
                    continue
                fd, fst, head = got
                if not head:
                    # nothing to read yet, and no identity: this is what logrotate's copytruncate
                    # copy looks like between its creation and its first write. Adopting it now
                    # would read the whole copy again as a new stream; look again once it has bytes.
                    self.ignored[ident] = (fst.st_size, fst.st_mtime_ns)
                    _close(fd)
                    continue
                if (fst.st_dev, fst.st_ino) != ident or self._shadowed(head):
                    log.debug("ignoring %s: a copy of a stream we follow", path)
                    self.ignored[ident] = (st.st_size, st.st_mtime_ns)
                    _close(fd)
                    continue
                cut = self._cut_stream_copied_to(head)
                if cut is not None:
                    # copytruncated after the checks above: continue that stream in its copy
                    _close(fd)
                    self._truncated(cut, now)
                    by_ident = {(o.dev, o.ino): o for o in self.streams.values()}
                    continue
                # a rotated file we never saw (created and rotated between two polls): read it all
                self._new_stream(_File(path, live, False, fd, fst, head), 0, draining=True)
        for key in list(self.records):
            if key in seen or key in self.streams:
                self.missing_since.pop(key, None)
                continue
            since = self.missing_since.setdefault(key, now)
            if now - since > self.src.stale_after:
                log.info("forgetting the checkpoint of %s: not seen for %.0fs", self.records[key].path, now - since)
                self._drop_record(key)

    def _reopen(self, key: str, path: str, live: str) -> bool:
        """A closed rotated file changed (a late write after we drained it): read the new
        bytes. False when the file is not the one the record describes (inode reused)."""
        rec = self.records[key]
        got = _open(path, self.nbytes)
        if got is None:
            return False
        fd, st, head = got
        if (
            (st.st_dev, st.st_ino) != (rec.dev, rec.ino)
            or not rec.fingerprint.matches(head)
            or (not rec.head_len and self._shadowed(head))
        ):
            _close(fd)
            return False
        if st.st_size <= rec.offset:  # same file, nothing new (or shrunk: nothing we can use)
            _close(fd)
            return True
        self._new_stream(_File(path, live, False, fd, st, head), rec.offset, key=key, origin=rec.origin,
                         draining=True)
        return True

    def _check_live(self, live: str, now: float, present: bool) -> None:
        key = self.live.get(live)
        s = self.streams.get(key) if key else None
        try:
            st = os.stat(live) if present else None
        except OSError:
            st = None
        if s is not None:
            if st is not None and (st.st_dev, st.st_ino) == (s.dev, s.ino):
                changed = st.st_size != s.last_size or st.st_mtime_ns != s.last_mtime_ns
                s.last_mtime_ns = st.st_mtime_ns
                # shrunk, or rewritten (even to the same size: "x0" -> "n0"): its first bytes tell
                if st.st_size < s.splitter.end_offset or (
                    changed and s.head.length and not s.head.matches(read_head(s.fd, s.head.length))
                ):
                    self._truncated(s, now)
                else:
                    if st.st_size != s.last_size:
                        FILE_LAG_BYTES.labels(live).set(max(0, st.st_size - s.committed))
                    return
            else:
                self._rotated_away(s, now)
        elif key is not None:
            self.live.pop(live, None)
        if st is not None and live not in self.live:
            got = _open(live, self.nbytes)
            if got is None:
                return
            fd, fst, head = got
            f = _File(live, live, True, fd, fst, head)
            for rkey, rec in self.records.items():  # a known file moved back into place
                if rkey not in self.streams and rec.head_len and (rec.dev, rec.ino) == f.ident and \
                        rec.fingerprint.matches(head):
                    self._new_stream(f, rec.offset, key=rkey, origin=rec.origin)
                    return
            self._new_stream(f, 0)

    def _rotated_away(self, s: Stream, now: float) -> None:
        """The live path names another file now: drain this one through its descriptor."""
        try:
            kind = "rename" if os.fstat(s.fd).st_nlink > 0 else "delete"
        except OSError:
            kind = "delete"
        ROTATIONS.labels(s.live, kind).inc()
        log.debug("%s was rotated away (%s); draining it", s.path, kind)
        s.rotated_at = now
        if self.live.get(s.live) == s.key:
            del self.live[s.live]

    def _truncated(self, s: Stream, now: float) -> None:
        """The stream's file shrank or was rewritten: find the rest of it, or report the loss."""
        live = s.live
        end = s.splitter.end_offset
        log.debug("%s was truncated or rewritten at offset %d", s.path, end)
        was_live = self.live.get(live) == s.key
        copy = None
        followed = {(o.dev, o.ino) for o in self.streams.values() if o.key not in self.sealed}
        for path in reversed(siblings(live, self.src.patterns)):  # newest first
            got = _open(path, self.nbytes)
            if got is None:
                continue
            fd, st, head = got
            if (st.st_dev, st.st_ino) not in followed and _holds_start_of(s, head):
                copy = (path, fd, st, head)
                break
            _close(fd)
        if copy is not None:
            path, fd, st, head = copy
            ROTATIONS.labels(live, "copytruncate").inc()
            self._gap(origin=s.origin, live=live, path=s.path, start=max(st.st_size, end), end=s.last_size,
                      reason="copytruncate")
            os.close(s.fd)
            s.fd, s.path, s.dev, s.ino = fd, path, st.st_dev, st.st_ino
            s.last_size = st.st_size  # the rest of the live file is reported above
            s.rotated_at = now
            if len(head) < s.head.length:  # a copy of less than our head: describe the file we now point at
                s.head, s.head_bytes = Head.of(head), head
            if st.st_size < end:  # we had read past the copy point: nothing more to take from it
                self.sealed.add(s.key)
        else:
            comp = self._compressed_copy(live, s.head)
            if comp is not None:
                ROTATIONS.labels(live, "copytruncate").inc()
                self._gap(origin=s.origin, live=live, path=comp[0], start=end, end=comp[1],
                          reason="rotated_compressed")
            else:
                ROTATIONS.labels(live, "truncate").inc()
                self._gap(origin=s.origin, live=live, path=s.path, start=end, end=s.last_size, reason="truncated")
            s.last_size = end  # what is beyond is reported (or never existed): not a gap to report again
            s.rotated_at = now
            self.sealed.add(s.key)
        if was_live:
            del self.live[live]
            got = _open(live, self.nbytes)
            if got is not None:
                fd, st, head = got
                self._new_stream(_File(live, live, True, fd, st, head), 0)

    # ------------------------------------------------------------------ reading
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
            rec = self.records[s.key]
            before = (rec.offset, rec.path, rec.dev, rec.ino, rec.head_len, rec.origin)
            self._sync_record(s)
            changed = before != (rec.offset, rec.path, rec.dev, rec.ino, rec.head_len, rec.origin)
            if res.events or changed:
                await self.emit(res.events, {s.key: rec.value()})
                s.committed = rec.offset
                if self.live.get(s.live) == s.key:
                    FILE_LAG_BYTES.labels(s.live).set(max(0, res.size - rec.offset))
            if res.truncated and not sealed:
                self._truncated(s, time.monotonic())
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
