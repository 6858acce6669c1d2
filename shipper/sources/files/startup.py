"""Startup: match the committed checkpoints to the files on disk, once per run.

Records are matched first *exactly* (same inode and first bytes: the file, wherever it was
renamed), then by *content* (same first bytes on another inode: the copytruncate copy), and
what cannot be matched but held unread bytes becomes a ``data_gap`` event (compressed away,
deleted, truncated). Live files first seen at startup honour ``start_at``; a rotated file
present at the very first start is history from before the agent and is not read.
"""

from __future__ import annotations

import logging

from shipper.observe.metrics import ROTATIONS

from . import paths
from .handles import OpenedFile, close_fd, last_line_start, open_file
from .truncation import Truncation

log = logging.getLogger(__name__)


class Startup(Truncation):
    """Rebuilds the streams of a run from its checkpoints (see module docstring)."""

    def _scan(self, lives: list[str]) -> list[OpenedFile]:
        """Open every live file and rotated sibling (rotated first, oldest first)."""
        files: list[OpenedFile] = []
        seen: set[tuple[int, int]] = set()
        all_lives = list(lives) + sorted(self.known_lives - set(lives))
        for live in all_lives:
            candidates = [(p, False) for p in paths.siblings(live, self.src.patterns)]
            if live in lives:
                candidates.append((live, True))
            for path, is_live in candidates:
                got = open_file(path, self.nbytes)
                if got is None:
                    continue
                fd, st, head = got
                ident = (st.st_dev, st.st_ino)
                if ident in seen:  # a hard link seen twice
                    close_fd(fd)
                    continue
                seen.add(ident)
                files.append(OpenedFile(path, live, is_live, fd, st, head))
        return files

    async def startup(self) -> None:
        now = self.clock()
        first_start = not self.records and not self.marked
        lives = paths.expand(self.cfg.path, self.src.patterns)
        files = self._scan(lives)
        log.debug("startup: %d checkpoints, files %s", len(self.records),
                  [(f.path, f.st.st_ino, f.st.st_size) for f in files])
        by_ident = {f.ident: f for f in files}
        matched: dict[str, OpenedFile] = {}
        used: set[tuple[int, int]] = set()
        # 1. exact: same inode, same first bytes, not shorter than our offset
        for key, rec in self.records.items():
            f = by_ident.get((rec.dev, rec.ino))
            if (f is not None and rec.head_len and f.ident not in used and rec.fingerprint.matches(f.head)
                    and f.st.st_size >= rec.offset):
                matched[key] = f
                used.add(f.ident)
        # 2. content: the same first bytes on another inode (a copytruncate copy). A copy shorter
        # than the offset was taken before lines we had read: it is ours, with nothing left to
        # read (step 4 moves the record to it), as `Truncation._truncated` decides while running.
        for key, rec in self.records.items():
            if key in matched or not rec.head_len:
                continue
            for f in files:
                if f.ident in used or f.is_live:
                    continue
                if rec.holds_start_of(f.head):
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
        # A record whose file moved while we were down (renamed, or continued in its copytruncate
        # copy) says where it is now at once, in the first batch: a gap found later is then
        # reported under the file's present name, and the next start matches it exactly.
        for key, f in matched.items():
            rec = self.records[key]
            moved = (rec.path, rec.dev, rec.ino) != (f.path, f.st.st_dev, f.st.st_ino)
            if not f.is_live and f.st.st_size <= rec.offset:
                if moved:
                    rec.path, rec.dev, rec.ino = f.path, f.st.st_dev, f.st.st_ino
                    self.pending_positions[key] = rec.value()
                close_fd(f.fd)
                continue
            self._new_stream(f, rec.offset, key=key, origin=rec.origin, draining=not f.is_live)
            if moved:
                self.pending_positions[key] = rec.value()
        for f in files:
            if f.ident in used:
                continue
            known = f.live in self.known_lives
            if f.is_live:
                if known or self.cfg.start_at == "beginning":
                    offset = 0
                else:
                    offset = last_line_start(f.fd, f.st.st_size)
                s = self._new_stream(f, offset)
                # durable at once: start_at: end must survive a restart before the first batch,
                # and a restart must know this file was seen (rotated siblings are then new data)
                self.pending_positions[s.key] = self._sync_record(s).value()
            elif not f.head or self._shadowed(f.head):
                close_fd(f.fd)  # empty (maybe a copy being written: see discover) or a copy of a stream
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
