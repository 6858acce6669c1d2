"""Discovery while running: what happened to the files since the last look.

``stat()`` each live path: same inode, shrunk or rewritten -> :mod:`.truncation`; another
inode or none -> the old file was *renamed or deleted*: keep draining it through the open
descriptor, and start the new file at byte 0. Then list the rotated siblings: re-open a
closed rotated file that grew, adopt an unknown one (every byte of a file that appears while
we watch was written after we started, so it is read from its first byte).
"""

from __future__ import annotations

import logging
import os

from shipper.observe.metrics import FILE_LAG_BYTES, ROTATIONS

from . import paths
from .fingerprint import read_head
from .follower import Stream
from .handles import OpenedFile, close_fd, open_file
from .truncation import Truncation

log = logging.getLogger(__name__)


class Discovery(Truncation):
    """One discovery pass over the live paths and their rotated siblings (see module docstring)."""

    def discover(self, now: float) -> None:
        lives = paths.expand(self.cfg.path, self.src.patterns)
        present = set(lives)
        for live in sorted(present | set(self.live)):
            self._check_live(live, now, live in present)
        self.known_lives.update(present)
        for live in present:
            self._mark_live(live)
        # a rotated file we drain can be truncated too (copytruncate run on it, or a rename
        # rotation right after a copytruncate): find its copy before the copy looks like news
        for s in list(self.streams.values()):
            if s.rotated_at is None or s.key in self.sealed or s.fd < 0:
                continue
            try:
                fst = os.fstat(s.fd)
                changed = fst.st_size != s.last_size or fst.st_mtime_ns != s.last_mtime_ns
                s.last_mtime_ns = fst.st_mtime_ns
                if fst.st_size < s.splitter.end_offset or (
                    changed and s.head.length and not s.head.matches(read_head(s.fd, s.head.length))
                ):
                    self._truncated(s, now)
            except OSError:
                continue
        seen: set[str] = set(self.streams)
        by_ident = {(s.dev, s.ino): s for s in self.streams.values()}
        closed = {(r.dev, r.ino): k for k, r in self.records.items() if k not in self.streams}
        for live in sorted(self.known_lives):
            for path in paths.siblings(live, self.src.patterns):
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                ident = (st.st_dev, st.st_ino)
                s = by_ident.get(ident)
                if s is not None:
                    s.record.path = path  # a rename of a rotated file (.1 -> .2) while we drain it
                    continue
                key = closed.get(ident)
                if key is not None:
                    rec = self.records[key]
                    if st.st_size == rec.offset or self._reopen(key, path, live):
                        seen.add(key)
                        if rec.path != path:
                            rec.path = path
                            self.pending_positions[key] = rec.value()
                        continue
                    # not the file we knew: its inode number was reused by a new file
                if self.ignored.get(ident) == (st.st_size, st.st_mtime_ns):
                    continue
                got = open_file(path, self.nbytes)
                if got is None:
                    continue
                fd, fst, head = got
                if not head:
                    # nothing to read yet, and no identity: this is what logrotate's copytruncate
                    # copy looks like between its creation and its first write. Adopting it now
                    # would read the whole copy again as a new stream; look again once it has bytes.
                    self.ignored[ident] = (fst.st_size, fst.st_mtime_ns)
                    close_fd(fd)
                    continue
                if (fst.st_dev, fst.st_ino) != ident or self._shadowed(head):
                    log.debug("ignoring %s: a copy of a stream we follow", path)
                    self.ignored[ident] = (st.st_size, st.st_mtime_ns)
                    close_fd(fd)
                    continue
                cut = self._cut_stream_copied_to(head)
                if cut is not None:
                    # copytruncated after the checks above: continue that stream in its copy
                    close_fd(fd)
                    self._truncated(cut, now)
                    by_ident = {(o.dev, o.ino): o for o in self.streams.values()}
                    continue
                # a rotated file we never saw (created and rotated between two polls): read it all
                self._new_stream(OpenedFile(path, live, False, fd, fst, head), 0, draining=True)
        for key in list(self.records):
            if key in seen or key in self.streams:
                self.missing_since.pop(key, None)
                continue
            since = self.missing_since.setdefault(key, now)
            if now - since > self.src.stale_after:
                log.info("forgetting the checkpoint of %s: not seen for %.0fs", self.records[key].path, now - since)
                self._drop_record(key)

    def _reopen(self, key: str, path: str, live: str) -> bool:
        """A closed rotated file changed (a late write after we drained it): read the new
        bytes. False when the file is not the one the record describes (inode reused)."""
        rec = self.records[key]
        got = open_file(path, self.nbytes)
        if got is None:
            return False
        fd, st, head = got
        if (
            (st.st_dev, st.st_ino) != (rec.dev, rec.ino)
            or not rec.fingerprint.matches(head)
            or (not rec.head_len and self._shadowed(head))
        ):
            close_fd(fd)
            return False
        if st.st_size <= rec.offset:  # same file, nothing new (or shrunk: nothing we can use)
            close_fd(fd)
            return True
        self._new_stream(OpenedFile(path, live, False, fd, st, head), rec.offset, key=key, origin=rec.origin,
                         draining=True)
        return True

    def _check_live(self, live: str, now: float, present: bool) -> None:
        key = self.live.get(live)
        s = self.streams.get(key) if key else None
        try:
            st = os.stat(live) if present else None
        except OSError:
            st = None
        if s is not None:
            if st is not None and (st.st_dev, st.st_ino) == (s.dev, s.ino):
                changed = st.st_size != s.last_size or st.st_mtime_ns != s.last_mtime_ns
                s.last_mtime_ns = st.st_mtime_ns
                # shrunk, or rewritten (even to the same size: "x0" -> "n0"): its first bytes tell
                if st.st_size < s.splitter.end_offset or (
                    changed and s.head.length and not s.head.matches(read_head(s.fd, s.head.length))
                ):
                    self._truncated(s, now)
                else:
                    if st.st_size != s.last_size:
                        FILE_LAG_BYTES.labels(live).set(max(0, st.st_size - s.record.offset))
                    return
            else:
                self._rotated_away(s, now)
        elif key is not None:
            self.live.pop(live, None)
        if st is not None and live not in self.live:
            got = open_file(live, self.nbytes)
            if got is None:
                return
            fd, fst, head = got
            f = OpenedFile(live, live, True, fd, fst, head)
            for rkey, rec in self.records.items():  # a known file moved back into place
                if rkey not in self.streams and rec.head_len and (rec.dev, rec.ino) == f.ident and \
                        rec.fingerprint.matches(head):
                    self._new_stream(f, rec.offset, key=rkey, origin=rec.origin)
                    return
            self._new_stream(f, 0)

    def _rotated_away(self, s: Stream, now: float) -> None:
        """The live path names another file now: drain this one through its descriptor."""
        try:
            kind = "rename" if os.fstat(s.fd).st_nlink > 0 else "delete"
        except OSError:
            kind = "delete"
        ROTATIONS.labels(s.live, kind).inc()
        log.debug("%s was rotated away (%s); draining it", s.path, kind)
        s.rotated_at = now
        if self.live.get(s.live) == s.key:
            del self.live[s.live]
