"""Truncation: a followed file shrank or was rewritten under us.

Same inode, shrunk or first bytes changed: logrotate ``copytruncate`` (the stream goes on in
the copy, ``redis.log.1``: another inode, the same first bytes), or a truncation in place
(``data_gap`` for what we never read; a compressed copy can name where those bytes went).
"""

from __future__ import annotations

import logging
import os

from shipper.observe.metrics import ROTATIONS

from . import paths
from .fingerprint import Head, gzip_head_and_size, read_head
from .follower import Stream
from .handles import OpenedFile, close_fd, open_file
from .state import RunState, holds_start_of

log = logging.getLogger(__name__)


class Truncation(RunState):
    """Finds where a truncated stream's bytes went (see module docstring)."""

    def _truncated(self, s: Stream, now: float) -> None:
        """The stream's file shrank or was rewritten: find the rest of it, or report the loss."""
        live = s.live
        end = s.splitter.end_offset
        log.debug("%s was truncated or rewritten at offset %d", s.path, end)
        was_live = self.live.get(live) == s.key
        copy = None
        followed = {(o.dev, o.ino) for o in self.streams.values() if o.key not in self.sealed}
        for path in reversed(paths.siblings(live, self.src.patterns)):  # newest first
            got = open_file(path, self.nbytes)
            if got is None:
                continue
            fd, st, head = got
            if (st.st_dev, st.st_ino) not in followed and holds_start_of(s, head):
                copy = (path, fd, st, head)
                break
            close_fd(fd)
        if copy is not None:
            path, fd, st, head = copy
            ROTATIONS.labels(live, "copytruncate").inc()
            self._gap(origin=s.origin, live=live, path=s.path, start=max(st.st_size, end), end=s.last_size,
                      reason="copytruncate")
            os.close(s.fd)
            s.fd = fd
            rec = s.record
            rec.path, rec.dev, rec.ino = path, st.st_dev, st.st_ino
            s.last_size = st.st_size  # the rest of the live file is reported above
            s.rotated_at = now
            if len(head) < rec.head_len:  # a copy of less than our head: describe the file we now point at
                rec.set_head(head)
                s.head_bytes = head
            if st.st_size < end:  # we had read past the copy point: nothing more to take from it
                self.sealed.add(s.key)
        else:
            comp = self._compressed_copy(live, s.head)
            if comp is not None:
                ROTATIONS.labels(live, "copytruncate").inc()
                self._gap(origin=s.origin, live=live, path=comp[0], start=end, end=comp[1],
                          reason="rotated_compressed")
            else:
                ROTATIONS.labels(live, "truncate").inc()
                self._gap(origin=s.origin, live=live, path=s.path, start=end, end=s.last_size, reason="truncated")
            s.last_size = end  # what is beyond is reported (or never existed): not a gap to report again
            s.rotated_at = now
            self.sealed.add(s.key)
        if was_live:
            del self.live[live]
            got = open_file(live, self.nbytes)
            if got is not None:
                fd, st, head = got
                self._new_stream(OpenedFile(live, live, True, fd, st, head), 0)


    def _cut_stream_copied_to(self, head: bytes) -> Stream | None:
        """The stream a file starting with ``head`` is a copy of, when that stream's own file
        no longer holds what we read (shrank, or its first bytes changed): a copytruncate that
        happened after this pass checked the stream's file. Without this, the copy of a stream
        whose head is still short (its file was under ``fingerprint_bytes``) would be adopted
        as a new file and read again from byte 0."""
        for s in self.streams.values():
            if s.key in self.sealed or s.fd < 0 or not s.head.length or not holds_start_of(s, head):
                continue
            try:
                if os.fstat(s.fd).st_size < s.splitter.end_offset or not s.head.matches(
                    read_head(s.fd, s.head.length)
                ):
                    return s
            except OSError:
                continue
        return None

    def _compressed_copy(self, live: str, head: Head) -> tuple[str, int] | None:
        """A compressed sibling whose content starts like ``head``: (path, uncompressed size)."""
        if not head.length:
            return None
        for p in paths.siblings(live, self.src.patterns, compressed=True):
            if not p.endswith(".gz"):
                continue
            got = gzip_head_and_size(p, head.length)
            if got is not None and head.matches(got[0]):
                return p, got[1]
        return None
