"""Retry a state write (spool, positions mirror, sink file) through a full or failing disk.

A full ``state_dir`` (ENOSPC), an I/O error (EIO) or a read-only remount (EROFS) is an
episode an operator ends by freeing space, not a bug: the write is retried with the agent's
one :class:`~shipper.util.backoff.Backoff` inside the component, so neither a sink worker nor
a source dies of it, and resumes by itself when the disk accepts writes again. The real error
(which component, which path, what the kernel or SQLite said) is logged once when the episode
starts and once when it ends, counted in ``redis_shipper_state_write_errors_total`` and listed
by :func:`failing` for ``/ready``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ..observe import metrics
from ..util.backoff import Backoff

log = logging.getLogger("shipper.state")
T = TypeVar("T")

_DISK_ERRNOS = {errno.ENOSPC, errno.EIO, errno.EROFS, errno.EDQUOT}
_SQLITE_DISK_WORDS = ("disk is full", "disk i/o error", "readonly database", "unable to open database file")

#: component -> the message of its current episode
_episodes: dict[str, str] = {}


def is_disk_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk refused a write (full, failing, read-only), not a bug."""
    if isinstance(exc, OSError):
        return exc.errno in _DISK_ERRNOS
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return any(w in text for w in _SQLITE_DISK_WORDS)
    return False


def describe(exc: BaseException, path: str = "") -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"{errno.errorcode.get(exc.errno, exc.errno)}: {exc.strerror}"
    if path and isinstance(exc, sqlite3.OperationalError) and "disk i/o error" in str(exc).lower():
        probe = _probe_write(path)
        if probe is not None and probe.errno in _DISK_ERRNOS:
            return f"{exc} ({describe(probe)})"
    return str(exc)


def _probe_write(path: str) -> OSError | None:
    """SQLite reports a read-only remount only as "disk I/O error"; the kernel's errno (EROFS)
    comes from setting the directory's times to their own values, a write that changes nothing."""
    directory = os.path.dirname(path) or "."
    try:
        st = os.stat(directory)
        os.utime(directory, ns=(st.st_atime_ns, st.st_mtime_ns))
    except OSError as e:
        return e
    return None


def record_failure(component: str, path: str, exc: BaseException) -> None:
    """Count a failed write; log it when it starts an episode (once, not per retry)."""
    metrics.STATE_WRITE_ERRORS.labels(component).inc()
    reason = describe(exc, path)
    if component not in _episodes:
        log.error("%s cannot write %s: %s; retrying until the disk accepts writes again",
                  component, path, reason)
    _episodes[component] = f"cannot write {path}: {reason}"


def record_success(component: str) -> None:
    """End ``component``'s episode, if any (logged once)."""
    if _episodes.pop(component, None) is not None:
        log.warning("%s writes again: the disk accepts writes", component)


def record_problem(component: str, message: str) -> None:
    """A state problem that no write ends (the spool file deleted under the agent): in ``/ready``
    until the process exits."""
    _episodes[component] = message


def failing() -> dict[str, str]:
    """Components in a write-failure episode now, with their error (for ``/ready``)."""
    return dict(_episodes)


def update_free_bytes(state_dir: str) -> None:
    try:
        metrics.STATE_DIR_FREE_BYTES.set(shutil.disk_usage(state_dir).free)
    except OSError:
        pass


async def retry_disk_errors(component: str, path: str, attempt: Callable[[], Awaitable[T]],
                            backoff: Backoff | None = None) -> T:
    """Run ``attempt`` until it succeeds; disk errors are retried with backoff, others raised."""
    backoff = backoff or Backoff(initial=0.2, maximum=10.0)
    while True:
        try:
            result = await attempt()
        except Exception as exc:
            if not is_disk_error(exc):
                raise
            record_failure(component, path, exc)
            await asyncio.sleep(backoff.next())
            continue
        record_success(component)
        return result
