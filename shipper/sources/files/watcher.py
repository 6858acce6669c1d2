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

Two backends. On Linux, directories watched non-recursively (the usual ``/var/log/redis/*.log``)
use one inotify descriptor read by the event loop itself (``loop.add_reader``, through the
``inotify_simple`` library): no thread, the kernel queues and merges events until the loop
reads them all at once, and only modify/create/move/delete are subscribed, so Redis's
open/close per line never reach us. watchdog serves recursive trees (it adds watches for new
subdirectories) and other platforms. Why not watchdog everywhere: its observer runs three
threads that take every inotify event through Python; at 1,000 Redis lines/s they were 43 %
of the agent's CPU (2.8 of 6.5 CPU-seconds over 22 s, ~6,800 thread switches a second;
docs/performance-agent.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
from typing import Any

log = logging.getLogger(__name__)

#: after reading inotify, the loop stops listening this long: the kernel merges the repeated
#: modify events of the file meanwhile, so 1,000 lines/s cost at most 1/INOTIFY_PAUSE wake-ups
INOTIFY_PAUSE = 0.02


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
        #: the inotify backend (see the module docstring): the descriptor and wd -> directory
        self._inotify: Any = None
        self._wds: dict[int, str] = {}
        self._resume: asyncio.TimerHandle | None = None
        self.backend = "none"

    def start(self) -> None:
        if not self.enabled:
            return
        if sys.platform.startswith("linux") and not any(recursive for _, recursive in self._dirs) \
                and self._start_inotify():
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
        self.backend = "watchdog"
        self.retry()

    # ------------------------------------------------------------------ inotify on the loop
    def _start_inotify(self) -> bool:
        """The thread-less backend; False (watchdog is tried) if it cannot start."""
        try:
            from inotify_simple import INotify, flags
        except ImportError:
            return False
        try:
            self._inotify = INotify(nonblocking=True)
            self._loop.add_reader(self._inotify.fileno(), self._on_inotify)
        except OSError as e:  # the per-user instance limit reached: watchdog will say so too
            log.debug("inotify descriptor unavailable (%s); trying watchdog", e)
            if self._inotify is not None:
                self._inotify.close()
                self._inotify = None
            return False
        self._mask = flags.MODIFY | flags.CREATE | flags.DELETE | flags.MOVED_FROM | flags.MOVED_TO \
            | flags.DELETE_SELF | flags.MOVE_SELF | flags.ONLYDIR
        self._structural = flags.CREATE | flags.DELETE | flags.MOVED_FROM | flags.MOVED_TO \
            | flags.DELETE_SELF | flags.MOVE_SELF | flags.Q_OVERFLOW | flags.IGNORED
        self._ignored = flags.IGNORED
        self.backend = "inotify"
        self.retry()
        return True

    def _on_inotify(self) -> None:
        """On the loop, when the descriptor is readable: take every queued event in one read."""
        try:
            events = self._inotify.read(timeout=0)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as e:  # never fatal: polling still finds everything
            log.warning("reading inotify failed, polling only from now on: %s", e)
            self._stop_inotify()
            self.wake.set()
            self.structure.set()
            return
        # pause listening (see INOTIFY_PAUSE); the events are all taken, so nothing is missed
        self._loop.remove_reader(self._inotify.fileno())
        self._resume = self._loop.call_later(INOTIFY_PAUSE, self._listen)
        if not events:
            return
        structural = False
        for ev in events:
            if ev.mask & self._structural:
                structural = True
            if ev.mask & self._ignored:  # the directory went away: watch it again when it is back
                d = self._wds.pop(ev.wd, None)
                if d is not None:
                    self._scheduled.discard(d)
        self.wake.set()
        if structural:
            self.structure.set()

    def _listen(self) -> None:
        self._resume = None
        if self._inotify is not None:
            self._loop.add_reader(self._inotify.fileno(), self._on_inotify)

    def _stop_inotify(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if self._inotify is None:
            return
        try:
            self._loop.remove_reader(self._inotify.fileno())
        except (RuntimeError, ValueError, OSError):  # loop closed during shutdown
            pass
        try:
            self._inotify.close()
        except OSError:
            pass
        self._inotify = None
        self._wds.clear()

    def retry(self) -> None:
        """Schedule directories not watched yet (they may appear later). Cheap when all are."""
        if self._inotify is not None:
            for d, _ in self._dirs:
                if d in self._scheduled or not os.path.isdir(d):
                    continue
                try:
                    self._wds[self._inotify.add_watch(d, self._mask)] = d
                    self.active = True
                except OSError as e:  # the per-user watch limit, permissions: polling covers it
                    log.warning("cannot watch %s, polling it: %s", d, e)
                self._scheduled.add(d)  # do not retry every poll; stat() covers it
            return
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
        self._stop_inotify()
        if self._observer is not None:
            try:
                self._observer.stop()
                self._observer.join(timeout=2)
            except Exception:
                pass
            self._observer = None
