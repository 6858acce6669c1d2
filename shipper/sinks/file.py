"""``type: file`` sink: every event as one JSON line appended to a file.

The line is the spooled canonical JSON, byte for byte (the ``parse`` event schema plus
``labels``, ``id``, ``seq`` ...). A batch is acknowledged after ``fsync``, so an
acknowledged event is on disk. After a crash between the write and the spool's cursor
commit, the last batch is appended again: at-least-once, duplicates bounded by one batch,
recognisable by their ``id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

from ..api import Delivery, RetryableError, Sink, SpooledEvent
from ..config import FileSinkConfig


class FileSink(Sink):
    def __init__(self, cfg: FileSinkConfig) -> None:
        self.cfg = cfg
        self.path = Path(cfg.path)
        self.name = "file"
        self.max_batch_bytes = 4 << 20
        self.max_wait = 0.2

    async def start(self) -> None:
        await asyncio.to_thread(end_torn_line, self.path)

    async def send(self, batch: list[SpooledEvent]) -> Delivery:
        # one join with a trailing empty item: no per-event ``raw + b"\n"`` copy (a quarter of
        # a microsecond per event of a backfill, docs/performance-follower.md)
        data = b"\n".join([e.raw for e in batch] + [b""])
        try:
            await asyncio.to_thread(self._write, data)
        except OSError as e:
            raise RetryableError(f"cannot write {self.path}: {e.strerror}") from None
        return Delivery()

    def _write(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        append_durably(self.path, data)


def end_torn_line(path: Path) -> int:
    """A crash mid-write can leave a last line without its newline: end it, so the next event
    starts on its own line (verify reports the torn line; the spool re-sends the event whole).
    Returns the bytes added (0 or 1)."""
    try:
        with open(path, "rb+") as f:
            if f.seek(0, os.SEEK_END) == 0:
                return 0
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return 0
            f.write(b"\n")
            return 1
    except FileNotFoundError:
        return 0


def append_durably(path: Path, data: bytes) -> None:
    """Append ``data`` and fsync before returning: an acknowledged batch is on disk.

    When the write fails part-way (a full disk writes what fits, then ENOSPC), the file is
    truncated back to its size before the batch, so the retry appends the batch whole after
    the last complete line instead of after a fragment (which would glue one event to it)."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        start = os.fstat(fd).st_size
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
    finally:
        os.close(fd)
