"""Change notification: inotify (through watchdog) as a wake-up hint, never as the truth.

The follower's source of truth is ``stat()``/``fstat()``, done at least every
``poll_interval`` whatever happens here. inotify only shortens the wait: when the kernel
says something changed in a watched directory, the follower wakes at once instead of at
the next poll. So a missed, merged or overflowed event costs latency, never data, and where
inotify does not work (NFS, SMB, FUSE, Docker Desktop and gVisor bind mounts; the per-UID
instance limit reached) the follower works by polling alone. ``inotify: false`` forces that.

We watch *directories*, not files: a file watch dies with the inode at the first rename
rotation, and watchdog refuses to schedule a file that does not exist yet. Events are
filtered to modified/created/moved/deleted (watchdog 7's ``event_filter``): open/close
events would wake us four times per Redis log line (Redis reopens its log for every line).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Any

log = logging.getLogger(__name__)


class Watcher:
    """Sets ``wake`` (an asyncio.Event) from watchdog's thread when a watched dir changes.

    ``structure`` is set too when files were created, moved or deleted: the follower then
    re-lists directories at once instead of waiting for the next poll.
    """

    def __init__(self, dirs: list[tuple[str, bool]], loop: asyncio.AbstractEventLoop, enabled: bool = True):
        self.wake = asyncio.Event()
        self.structure = asyncio.Event()
        self._loop = loop
        self._dirs = dirs
        self._scheduled: set[str] = set()
        self._observer: Any = None
        self.enabled = enabled
        self.active = False  # True once at least one directory is watched
        self._lock = threading.Lock()
        self._pending = False  # a wake-up is scheduled on the loop and has not run yet
        self._pending_structural = False

    def start(self) -> None:
        if not self.enabled:
            return
        try:
            from watchdog.events import (
                FileCreatedEvent,
                FileDeletedEvent,
                FileModifiedEvent,
                FileMovedEvent,
                FileSystemEventHandler,
            )
            from watchdog.observers import Observer
        except Exception as e:  # pragma: no cover - watchdog is a dependency
            log.warning("watchdog unavailable, polling only: %s", e)
            self.enabled = False
            return
        watcher = self
        structural = (FileCreatedEvent, FileDeletedEvent, FileMovedEvent)

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                watcher._notify(isinstance(event, structural))

        self._handler = Handler()
        self._filter = [FileModifiedEvent, FileCreatedEvent, FileMovedEvent, FileDeletedEvent]
        try:
            self._observer = Observer()
            self._observer.daemon = True
            self._observer.start()
        except Exception as e:
            log.warning("inotify unavailable, polling only: %s", e)
            self._observer = None
            self.enabled = False
            return
        self.retry()

    def retry(self) -> None:
        """Schedule directories not watched yet (they may appear later). Cheap when all are."""
        if self._observer is None:
            return
        for d, recursive in self._dirs:
            if d in self._scheduled or not os.path.isdir(d):
                continue
            try:
                self._observer.schedule(self._handler, d, recursive=recursive, event_filter=self._filter)
                self._scheduled.add(d)
                self.active = True
            except Exception as e:  # inotify limits, permissions: polling covers it
                log.warning("cannot watch %s, polling it: %s", d, e)
                self._scheduled.add(d)  # do not retry every poll; stat() covers it

    def _notify(self, structural: bool) -> None:
        """On watchdog's thread, per inotify event. Redis writes its log one ``write()`` per line,
        so at 1,000 lines/s this runs 1,000 times a second: only the first event after the loop
        took the last wake-up schedules one (each ``call_soon_threadsafe`` wakes the loop)."""
        with self._lock:
            if self._pending and (self._pending_structural or not structural):
                return  # a wake-up that says as much is already on its way
            first = not self._pending
            self._pending = True
            self._pending_structural = self._pending_structural or structural
        if first:
            try:
                self._loop.call_soon_threadsafe(self._set)
            except RuntimeError:  # loop closed during shutdown
                pass

    def _set(self) -> None:
        with self._lock:
            structural = self._pending_structural
            self._pending = self._pending_structural = False
        self.wake.set()
        if structural:
            self.structure.set()

    def stop(self) -> None:
        if self._observer is not None:
            try:
                self._observer.stop()
                self._observer.join(timeout=2)
            except Exception:
                pass
            self._observer = None
