"""``type: local`` sink, the embedded default: rotated JSON Lines files under ``state_dir/events``.

With no Loki or Elasticsearch, the trail still has to be readable and bounded: files are named
``events-<UTC start time>.jsonl``, a new one starts at ``max_file_bytes``, and files older than
``retention`` or beyond ``max_total_bytes`` (oldest first) are deleted. ``redis-shipper
events`` reads them back with filters.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from ..api import Delivery, RetryableError, Sink, SpooledEvent
from ..config import LocalSinkConfig
from .file import append_durably, end_torn_line

PREFIX = "events-"
SUFFIX = ".jsonl"


def local_dir(cfg: LocalSinkConfig | None, state_dir: str) -> Path:
    if cfg is not None and cfg.dir:
        return Path(cfg.dir)
    return Path(state_dir) / "events"


def event_files(directory: Path) -> list[Path]:
    """The sink's files, oldest first (names sort by their start time)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX))


class LocalSink(Sink):
    def __init__(self, cfg: LocalSinkConfig, *, state_dir: str) -> None:
        self.cfg = cfg
        self.dir = local_dir(cfg, state_dir)
        self.name = "local"
        self.max_batch_bytes = 4 << 20
        self.max_wait = 0.2
        self._current: Path | None = None
        self._size = 0

    async def start(self) -> None:
        await asyncio.to_thread(self._open_current)

    def _open_current(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        files = event_files(self.dir)
        if files and files[-1].stat().st_size < self.cfg.max_file_bytes:
            self._current = files[-1]
            self._size = files[-1].stat().st_size
            self._size += end_torn_line(self._current)
        else:
            self._new_file()

    def _new_file(self) -> None:
        t = time.time()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(t)) + f"{int(t * 1e6) % 1_000_000:06d}Z"
        self._current = self.dir / f"{PREFIX}{stamp}{SUFFIX}"
        self._current.touch()
        self._size = 0

    async def send(self, batch: list[SpooledEvent]) -> Delivery:
        data = b"".join(e.raw + b"\n" for e in batch)
        try:
            await asyncio.to_thread(self._write, data)
        except OSError as e:
            raise RetryableError(f"cannot write under {self.dir}: {e.strerror}") from None
        return Delivery()

    def _write(self, data: bytes) -> None:
        if self._current is None or not self._current.exists():
            self._open_current()
        elif self._size and self._size + len(data) > self.cfg.max_file_bytes:
            self._new_file()
            self._apply_retention()
        assert self._current is not None
        append_durably(self._current, data)
        self._size += len(data)

    def _apply_retention(self) -> None:
        """Delete files past ``retention`` or beyond ``max_total_bytes``, never the current one."""
        files = [p for p in event_files(self.dir) if p != self._current]
        now = time.time()
        sizes = {p: p.stat().st_size for p in files}
        total = sum(sizes.values()) + self._size
        for p in files:  # oldest first
            too_old = now - p.stat().st_mtime > self.cfg.retention
            too_big = total > self.cfg.max_total_bytes
            if too_old or too_big:
                p.unlink(missing_ok=True)
                total -= sizes[p]
