"""Lost spool state: what the spool does and says when its file is gone, empty, unreadable or older.

The spool (shipper/pipeline/spool.py) is the agent's memory of what it read and shipped. When that
memory is lost, the agent must neither stop (a broken file would keep it down until an operator
came) nor go on as if nothing happened (it would re-ship or lose data without a word). So:

* a spool SQLite cannot read, an empty one, or one missing although the last run wrote rows
  (``spool_stamp.missing_or_empty``) is **set aside** (``spool.sqlite.corrupt-<UTC time>``, kept
  for a post-mortem) and a fresh one started, resuming from ``positions.json`` when it is valid;
* a spool that opened fine but ends before the row the last run's stamp recorded (its WAL was
  deleted, an older copy restored) is **kept**: its older positions make the sources read again
  what they had read since;
* a spool file deleted or replaced while the agent runs is reported once (the agent goes on in
  the unlinked file, and loses it at exit).

Each case is a :class:`Reset`: logged at error level and shipped as a ``state_reset`` agent event,
saying what was lost and how much the stamp (shipper/pipeline/spool_stamp.py) says no sink had.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from parsers.events import Event

from ..agent_events import agent_event
from .spool_stamp import Stamp

#: the agent event every reset is shipped as
EVENT = "state_reset"


@dataclass(frozen=True)
class Reset:
    """Spool state that was lost: the sentence an operator reads and the event's fields."""

    message: str
    fields: dict[str, Any]

    def event(self) -> Event:
        """The ``state_reset`` agent event (level error: data may be lost or shipped twice)."""
        return agent_event(EVENT, self.message, level="error", **self.fields)


def set_aside(spool: Path) -> Path | None:
    """Move ``spool`` and its ``-wal``/``-shm`` files to ``<name>.corrupt-<UTC time>``; the new name of
    the database file, or None when there was none (only a WAL left, or nothing)."""
    when = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = spool.with_name(f"{spool.name}.corrupt-{when}")
    moved = aside if spool.exists() else None
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(spool) + suffix)
        if src.exists():
            os.replace(src, str(aside) + suffix)
    return moved


def fresh_start(spool: Path, reason: str, *, moved: Path | None, positions_restored: int,
                stamp: Stamp | None) -> Reset:
    """The reset of a spool set aside and started again (from ``positions_restored`` positions of
    ``positions.json``, 0: the sources start over)."""
    resumed = "positions.json" if positions_restored else "nothing (sources start over)"
    lost = stamp.unshipped_after(0) if stamp is not None else None
    counted = (f"up to {lost} event(s) it held had not reached every sink and cannot be recovered"
               if lost is not None
               else "what it held and had not shipped cannot be recovered (no spool.stamp to count it)")
    return Reset(
        f"{reason}: " + (f"moved to {moved.name}, " if moved else "")
        + f"started a fresh spool resuming from {resumed}; {counted}",
        {"reason": reason, "file": str(spool), "moved_to": str(moved) if moved else None,
         "resumed_from": resumed, "positions_restored": positions_restored, "unrecoverable_events": lost})


def rows_lost(spool: Path, top: int, stamp: Stamp | None) -> Reset | None:
    """The reset of a spool that opened fine but ends at row ``top``, before the stamp's newest row;
    None when it holds all the stamp recorded (or there is no stamp)."""
    if stamp is None or stamp.top <= top:
        return None
    wal = Path(str(spool) + "-wal")
    reason = (f"{spool.name} ends at row {top} but had written up to row {stamp.top}: its "
              f"write-ahead log ({wal.name}) was deleted, or an older copy was restored")
    lost = stamp.unshipped_after(top)
    return Reset(
        f"{reason}; resuming from the positions the spool still holds (older: what the sources read "
        f"since is read and shipped again); up to {lost} event(s) had not reached every sink: those a file "
        "source wrote are read again, the others cannot be recovered",
        {"reason": reason, "file": str(spool), "moved_to": None, "resumed_from": "the spool's own (older) positions",
         "rows_lost": stamp.top - top, "unrecoverable_events": lost})


def vanished(spool: Path, reason: str, *, unshipped: int) -> Reset:
    """The reset of a spool file deleted or replaced under the running agent (``reason``, from
    ``spool_stamp.StampWriter.vanished``), holding ``unshipped`` events."""
    return Reset(
        f"{reason}: the agent goes on with the file it has open, but everything in it (positions, "
        f"{unshipped} unshipped event(s)) is lost when it exits; restart it once the sinks caught up "
        "to start a new spool",
        {"reason": reason, "file": str(spool), "moved_to": None, "resumed_from": "the open file",
         "unrecoverable_events": unshipped})

