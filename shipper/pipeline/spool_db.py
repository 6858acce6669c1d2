"""The spool's SQLite file: its tables, how every connection is set up, and the migration of older layouts.

shipper/pipeline/spool.py holds the queue and its transactions; this module holds what SQLite
needs before the first of them. The event rows' own layout is shipper/pipeline/spool_rows.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from . import spool_rows

#: SQLite's page cache per connection, KiB (SQLite's default: 2,000 KiB). The spool's reads and
#: deletes walk the rows in order, each page once, so a bigger cache holds pages that are not
#: read again: at the catch-up after a 10-minute outage, 256 KiB on every connection (the agent's
#: two and the offload process's one) took 8 MB off the peak RSS of the agent's process tree
#: (docs/performance-footprint.md)
CACHE_KIB = 256

SCHEMA = spool_rows.TABLE + """
CREATE TABLE IF NOT EXISTS positions (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sink_cursors (sink TEXT PRIMARY KEY, acked INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chain (stream TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def connect(path: Path, synchronous: str) -> sqlite3.Connection:
    """A connection in autocommit mode (the spool opens its transactions itself), WAL journal,
    ``synchronous`` (``FULL`` for appends, ``NORMAL`` for cursor moves: see ``Spool.ack``)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("PRAGMA busy_timeout=5000")
    # Freed pages are not overwritten with zeros. Some builds (Debian's libsqlite3) turn
    # secure_delete on, and then every DELETE of acknowledged rows writes the whole deleted
    # volume again (to the WAL, then to the file): +7-8 % end to end when off
    # (measured in interleaved pairs). The deleted events are copies of what the sinks
    # already hold, in a file only the agent's user can read (state_dir).
    db.execute("PRAGMA secure_delete=OFF")
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    return db


def connect_reader(path: str) -> sqlite3.Connection:
    """A read-only connection (the offload process: it never changes the spool; WAL lets it read
    beside the writer), with the spool's busy timeout and page cache."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    db.execute("PRAGMA busy_timeout=5000")
    db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    return db


def migrate_event_rows(db: sqlite3.Connection) -> None:
    """Move a spool written by an agent before rows of many events (table ``events``, one
    row per event) to ``batches``: same row numbers, nothing re-sent, nothing lost."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone():
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("INSERT INTO batches (last, n, added, size, raw) "
                   "SELECT seq, 1, added, size, raw FROM events ORDER BY seq")
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        old_top = int(row[0]) if row else 0
        if old_top > spool_rows.top_of(db):  # the newest rows were already collected
            if db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'batches'", (old_top,)).rowcount == 0:
                db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('batches', ?)", (old_top,))
        db.execute("DROP TABLE events")
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        raise


def migrate_annex_column(db: sqlite3.Connection) -> None:
    """Add ``batches.annex`` to a spool written by an agent without it: its rows have none (NULL),
    and their batches are built from the events, as they were when written."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(batches)")}
    if "annex" not in columns:
        db.execute("ALTER TABLE batches ADD COLUMN annex BLOB")


def migrate_codec_column(db: sqlite3.Connection) -> None:
    """Add ``batches.codec`` to a spool written by an agent without it: its rows are plain
    (shipper/pipeline/spool_rows.py ``PLAIN``, the column's default)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(batches)")}
    if "codec" not in columns:
        db.execute("ALTER TABLE batches ADD COLUMN codec INTEGER NOT NULL DEFAULT 0")


def keep_annexes_of(db: sqlite3.Connection, owner: str) -> None:
    """Record whose annexes the spool stores (``owner``: the sink's name and the annexer's
    fingerprint, "" for none); when that changed since the rows were written (another sink, a
    setting the annex depends on), the stored annexes are dropped: those rows take the sink's
    ordinary path, so an annex is only ever read under the settings it was made with."""
    row = db.execute("SELECT value FROM meta WHERE key = 'annex_owner'").fetchone()
    if (row[0] if row else "") == owner:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("UPDATE batches SET annex = NULL WHERE annex IS NOT NULL")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('annex_owner', ?)", (owner,))
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        raise


def rollback(db: sqlite3.Connection) -> None:
    """ROLLBACK unless SQLite already did: a COMMIT that failed on a full disk rolls back by
    itself, and a second ROLLBACK raises "cannot rollback - no transaction is active"."""
    if db.in_transaction:
        db.execute("ROLLBACK")
