"""``state_dir/positions.json``: every source position, readable by humans (promtail-style).

The source of truth is the spool's ``positions`` table, committed with the events; this file
only lets an operator see where every file and cursor stands without opening SQLite, and lets a
spool that had to be started again resume from it (shipper/pipeline/spool_reset.py).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

import orjson

from ..api import Position
from . import state_guard

NAME = "positions.json"
#: rewritten at most this often (seconds)
INTERVAL = 1.0


class PositionsMirror:
    """Writes ``positions.json`` (temp, fsync, rename) from the spool's positions table."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / NAME
        self._due = 0.0

    def write(self, db: sqlite3.Connection, *, force: bool = False) -> None:
        """Write the mirror, unless it was written less than :data:`INTERVAL` ago (``force``: now)."""
        now = time.monotonic()
        if not force and now < self._due:
            return
        self._due = now + INTERVAL
        data = {k: orjson.loads(v) for k, v in db.execute("SELECT key, value FROM positions ORDER BY key")}
        tmp = self.path.with_name(NAME + ".tmp")
        try:
            with open(tmp, "wb") as f:
                f.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as e:
            # a mirror for humans: the positions table stays the truth, the next write catches up
            if not state_guard.is_disk_error(e):
                raise
            state_guard.record_failure("positions", str(self.path), e)
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            self._due = 0.0
            return
        state_guard.record_success("positions")


def read(path: Path) -> dict[str, Position]:
    """``positions.json`` when it is a valid mapping, else {} (garbage never stops a start)."""
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}
