"""Turning a file's bytes into lines: big binary chunks in, ``(line, offset, cut)`` out.

Why binary: the file is a byte stream and offsets are byte offsets; decoding is the parser's
job (with replacement), so an invalid UTF-8 byte can never stop the follower (pygtail opens
the file in text mode with strict errors and stops forever on one, see docs/follower.md).

Why the partial last line is held back: Redis writes a line with one ``fprintf`` + ``fflush``,
but long ``LL_RAW`` output (crash reports, the INFO dump) and other writers can land in
several ``write()`` calls, and we may read between two of them. Shipping the first half as a
line would split the line in two events. The partial tail waits (bounded by
``max_line_bytes``) until its newline arrives or the follower decides it never will
(``partial_line_timeout``, or the file was rotated away and drained).

Over-long lines: the first ``max_line_bytes`` are kept and the rest is counted and dropped,
so memory stays bounded whatever the file holds, and the event says how much was cut.

This module does no I/O: :class:`LineSplitter` is fed chunks by the follower.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any


class LineSplitter:
    """Splits a byte stream into lines, tracking each line's byte offset in the file.

    ``offset`` is the file offset of the first byte not yet handed out as (part of) a line:
    the start of the held partial line, or of the next complete line after :meth:`lines`
    stopped early. It is what a checkpoint may safely record (together with the parser's
    ``pending_offset``).
    """

    __slots__ = (
        "max_line_bytes", "_lines", "_idx", "_off", "_carry_cut", "_partial", "_partial_off", "_partial_cut",
    )

    def __init__(self, offset: int, max_line_bytes: int):
        self.max_line_bytes = max_line_bytes
        self._lines: list[bytes] = []  # complete lines not yet handed out
        self._idx = 0
        self._off = offset  # offset of _lines[_idx] (or of the partial when no complete line is left)
        self._carry_cut = 0  # bytes already cut from _lines[0] (a long line assembled across chunks)
        self._partial = b""  # the incomplete last line (at most max_line_bytes kept)
        self._partial_off = offset
        self._partial_cut = 0  # bytes dropped from the partial line beyond max_line_bytes

    @property
    def offset(self) -> int:
        """File offset of the first byte not yet handed out as a line."""
        return self._off

    @property
    def has_lines(self) -> bool:
        """Complete lines are buffered (the caller stopped early: no need to read more yet)."""
        return self._idx < len(self._lines)

    @property
    def has_partial(self) -> bool:
        return bool(self._partial) or self._partial_cut > 0

    @property
    def partial_offset(self) -> int:
        """File offset where the held partial line starts."""
        return self._partial_off

    @property
    def end_offset(self) -> int:
        """Offset just past every byte given to :meth:`push` so far."""
        return self._partial_off + len(self._partial) + self._partial_cut

    def push(self, data: bytes) -> None:
        """Append a chunk read from the file (must continue exactly at :attr:`end_offset`).

        Must only be called when no complete line is buffered (``not has_lines``).
        """
        if not data:
            return
        assert not self.has_lines, "push() while complete lines are still buffered"
        nl = data.find(b"\n")
        if nl < 0:
            # still no end to the held line: grow it up to the limit, count the rest
            room = self.max_line_bytes - len(self._partial)
            if len(data) <= room:
                self._partial += data
            else:
                self._partial += data[: max(room, 0)]
                self._partial_cut += len(data) - max(room, 0)
            return
        head = self._partial
        parts = (head + data).split(b"\n") if head else data.split(b"\n")
        tail = parts.pop()
        self._lines = parts
        self._idx = 0
        self._off = self._partial_off
        self._carry_cut = self._partial_cut
        # the new partial starts right after the last newline of this chunk
        self._partial_off += len(head) + self._partial_cut + len(data) - len(tail)
        self._partial_cut = 0
        if len(tail) > self.max_line_bytes:
            self._partial_cut = len(tail) - self.max_line_bytes
            tail = tail[: self.max_line_bytes]
        self._partial = tail

    def lines(self) -> Iterator[tuple[bytes, int, int]]:
        """Yield buffered complete lines as ``(line without \\n, offset, cut_bytes)``.

        The caller may stop iterating at any point (a full batch); :attr:`offset` then
        names the first line not yet yielded, and the next call resumes there.
        """
        maxb = self.max_line_bytes
        lines = self._lines
        while self._idx < len(lines):
            line = lines[self._idx]
            off = self._off
            n = len(line)
            carry = self._carry_cut  # bytes of this line dropped while it was a partial
            self._carry_cut = 0
            self._idx += 1
            # the line's length in the file: the bytes we hold plus those dropped earlier
            self._off = off + n + carry + 1
            if n > maxb:
                yield line[:maxb], off, carry + n - maxb
            else:
                yield line, off, carry
        self._lines = []
        self._idx = 0
        self._off = self._partial_off

    def feed_lines(self, feed: Callable[..., list[Any]], events: list[Any], max_events: int) -> int:
        """The hot loop: hand buffered complete lines to ``feed(line, offset[, cut_bytes=])``
        and collect what it returns into ``events`` until there are ``max_events``. Same
        contract as :meth:`lines` (stops early, resumes at the next line); returns the number
        of lines fed.

        Written for speed, because it runs once per line of a backfill (measured in
        docs/performance-follower.md): locals instead of attributes (about twice as fast as
        driving :meth:`lines` from outside), a ``for`` over the list instead of indexing, the
        rare line that carries bytes cut while it was a partial handled before the loop, and a
        countdown of the room left instead of ``len(events)`` per line.
        """
        lines = self._lines
        first = i = self._idx
        end = len(lines)
        if i >= end:
            self._lines, self._idx, self._off = [], 0, self._partial_off
            return 0
        off = self._off
        maxb = self.max_line_bytes
        extend = events.extend
        room = max_events - len(events)
        try:
            carry = self._carry_cut
            if carry:  # the first line was assembled across chunks and already lost bytes
                line = lines[i]
                ln = len(line)
                i += 1
                self._carry_cut = 0
                start = off
                off += ln + carry + 1
                evs = feed(line[:maxb], start, cut_bytes=carry + max(0, ln - maxb))
                if evs:
                    extend(evs)
                    room -= len(evs)
                    if room <= 0:
                        return i - first
            for line in lines if i == 0 else lines[i:]:
                ln = len(line)
                i += 1
                start = off
                off += ln + 1
                if ln > maxb:
                    evs = feed(line[:maxb], start, cut_bytes=ln - maxb)
                else:
                    evs = feed(line, start)
                if evs:
                    extend(evs)
                    room -= len(evs)
                    if room <= 0:
                        break
        finally:
            # also when feed raised: the lines before the failing one stay consumed
            self._idx, self._off = i, off
            if i >= end:
                self._lines = []
                self._idx = 0
                self._off = self._partial_off
        return i - first

    def take_partial(self) -> tuple[bytes, int, int] | None:
        """Hand out the held partial line (timeout, or its file is finished) as a line."""
        if self.has_lines or not self.has_partial:
            return None
        line, off, cut = self._partial, self._partial_off, self._partial_cut
        self._partial_off = off + len(line) + cut
        self._partial = b""
        self._partial_cut = 0
        self._off = self._partial_off
        return line, off, cut
