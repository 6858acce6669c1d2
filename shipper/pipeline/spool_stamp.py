"""Tell lost spool state from a fresh start: ``state_dir/spool.stamp``.

SQLite opens a 0-byte file, a missing file, or a database whose WAL was deleted without a
complaint: each is a valid (empty or older) database. Without a record of what the spool held,
the agent would start over or go back in time silently and re-ship (or lose) what it had.
The stamp is that record: the newest row number the spool had given and each sink's cursor,
rewritten (temp + rename, at most once a second, no fsync: it is a witness, not the truth) after
appends and acknowledgements. At the next start, a spool that is missing, empty, or whose newest
row is older than the stamp's lost state, and the stamp says how much no sink had received.

The same writer notices the spool file itself deleted or replaced while the agent runs (SQLite
keeps writing to the unlinked inode, and everything in it is gone at exit).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

NAME = "spool.stamp"
#: rewritten at most this often (seconds)
INTERVAL = 1.0


@dataclass
class Stamp:
    #: the newest row number the spool had given
    top: int
    #: sink -> the last row it had acknowledged
    cursors: dict[str, int]

    def unshipped_after(self, row: int) -> int:
        """Events after row ``row`` that the stamp's spool held and not every sink had acknowledged:
        an upper bound (the stamp may have missed the last acknowledgement before a crash)."""
        low = min(self.cursors.values()) if self.cursors else self.top
        return max(0, self.top - max(row, low))


def read(state_dir: Path) -> Stamp | None:
    """The stamp of the last run, or None (none, or unreadable: then nothing can be compared)."""
    try:
        data = orjson.loads((state_dir / NAME).read_bytes())
        top = int(data["top"])
        cursors = {str(k): int(v) for k, v in dict(data["cursors"]).items()}
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    return Stamp(top, cursors)


def missing_or_empty(spool: Path, stamp: Stamp | None) -> str | None:
    """Why the spool file is lost before SQLite opens it (it would open it without a word): empty,
    or missing although a previous run wrote rows; else None."""
    try:
        size = spool.stat().st_size
    except FileNotFoundError:
        if stamp is not None and stamp.top > 0:
            return f"{spool.name} is missing (the last run had written {stamp.top} rows)"
        return None
    if size == 0:
        return f"{spool.name} is empty (0 bytes)"
    return None


class StampWriter:
    """Rewrites the stamp after the spool moved, and watches that the spool file stays the one open."""

    def __init__(self, state_dir: Path, spool: Path) -> None:
        self.path = state_dir / NAME
        self.spool = spool
        self._due = 0.0
        self._inode: int | None = None
        #: why the spool file is no longer the one the agent writes (deleted, replaced), once seen
        self.vanished: str | None = None

    def opened(self) -> None:
        """The spool file was (re)opened: the inode to watch."""
        with contextlib.suppress(OSError):
            self._inode = os.stat(self.spool).st_ino
        self.vanished = None

    def write(self, top: int, cursors: dict[str, int], *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._due:
            return
        self._due = now + INTERVAL
        self._watch()
        tmp = self.path.with_name(NAME + ".tmp")
        try:
            tmp.write_bytes(orjson.dumps({"top": top, "cursors": cursors}))
            os.replace(tmp, self.path)
        except OSError:
            # a full or read-only disk: the spool's own writes report it (state_guard); the stamp
            # catches up at the next write
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)

    def _watch(self) -> None:
        if self._inode is None or self.vanished is not None:
            return
        try:
            inode = os.stat(self.spool).st_ino
        except FileNotFoundError:
            self.vanished = f"{self.spool} was deleted while the agent runs"
            return
        except OSError:
            return
        if inode != self._inode:
            self.vanished = f"{self.spool} was replaced by another file while the agent runs"
