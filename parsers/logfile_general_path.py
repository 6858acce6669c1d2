"""The general path of :meth:`parsers.logfile.LogParser.feed`: every line its fast path does not take.

The fast path in :mod:`parsers.logfile` decides only the common lines (a whole 5.0+ legacy line
of a second already seen, in the steady state, and a raw line inside a crash report). Everything
else comes here: lines cut at ``max_line_bytes``, left partial or not valid UTF-8 (each gets a
flag on its event), the other header forms (ISO 8601, milliseconds, year-less, 2.x, logfmt,
signal handler), a second not in the timestamp cache yet, and any line at the start of input,
inside a crash report or after blank lines. The line is made text, its header parsed and its
time resolved, and it goes to :class:`parsers.multiline.Assembler`.

Two shortcuts keep the other header forms nearly as cheap as the legacy one, and give the same
events as the way through the assembler (``tests/test_parse_equivalence.py`` checks it): a
Valkey logfmt line is matched by one regex (:meth:`GeneralPath._feed_logfmt`), and a whole,
flagless prefixed line in the steady state is held without a ``Block``
(:meth:`GeneralPath._pend_header`).
"""

from __future__ import annotations

from typing import Any

from parsers.events import Event
from parsers.line import (
    FMT_LOGFMT,
    FMT_SIGNAL,
    LOGFMT_FAST_RE,
    TS_EPOCH_MS,
    TS_EPOCH_S,
    TS_ISO,
    TS_LEGACY,
    Header,
    parse_header,
)
from parsers.logfile_events import EventBuilder
from parsers.multiline import KIND_LINE, Assembler
from parsers.timestamps import TimestampResolver

_new = tuple.__new__
_logfmt_fast_match = LOGFMT_FAST_RE.match


class GeneralPath(EventBuilder):
    """The general path of :class:`parsers.logfile.LogParser`, which sets these attributes."""

    max_line_bytes: int
    _ts: TimestampResolver
    #: ``TimestampResolver.cache``: "dd Mon yyyy hh:mm:ss" -> UTC text, full (with-year) keys only
    _ts_cache: dict[str, str]
    _asm: Assembler

    def _feed_logfmt(self, text: str, offset: int) -> list[Event]:
        """A whole, flagless line that may be Valkey logfmt: one regex for header and timestamp
        (``LOGFMT_FAST_RE``) instead of two, then straight to the pending line. Anything unusual
        (unknown timestamp text, a year-less or invalid time, another state) goes to
        :meth:`_feed_text`, which reaches the same result the long way."""
        m = _logfmt_fast_match(text)
        if m is not None:
            pid, role, lts, lms, iso, ems, level, msg = m.groups()
            if msg.endswith('"'):
                msg = msg[:-1]
            ts: str | None
            if lts is not None:
                base = self._ts_cache.get(lts)
                ts = None if base is None else base + (lms or "000") + "000Z"
                header = _new(Header, (FMT_LOGFMT, int(pid), role, TS_LEGACY, lts, lms, None, level, msg))
            elif iso is not None:
                ts = self._ts.iso(iso)
                header = _new(Header, (FMT_LOGFMT, int(pid), role, TS_ISO, iso, "", None, level, msg))
            else:
                ts = self._ts.epoch_millis(ems)
                header = _new(Header, (FMT_LOGFMT, int(pid), role, TS_EPOCH_MS, ems, "", None, level, msg))
            if ts is not None:
                out = self._pend_header(text, header, ts, offset)
                if out is not None:
                    return out
        return self._feed_text(text, offset, None)

    def _pend_header(self, text: str, header: Header, ts: str, offset: int) -> list[Event] | None:
        """What ``Assembler.push`` does with a whole, flagless, non-signal prefixed line when the
        open block is a plain line (or nothing is open after one), without a Block: the line
        becomes ``Assembler.hline`` and the event of the line before is returned. ``None`` when
        the assembler is in another state (crash report, blank lines, start of input)."""
        asm = self._asm
        pend = asm.line
        hp = asm.hline
        if pend is None and hp is None and (asm.cur is None or asm.in_crash or asm.lead_blanks):
            return None
        prev = asm.last_ts
        asm.last_ts = ts
        asm.hline = (offset, header, ts, prev, None if header[8] else text)
        if pend is not None:
            asm.line = None
            ev = self._pending_event(pend)
        elif hp is not None:
            ev = self._prefixed_event(hp[1], hp[2], hp[3], hp[0], None, 1)
        else:
            done = asm.cur
            asm.cur = None
            if done.kind != KIND_LINE or done.flags is not None:  # type: ignore[union-attr]
                return self._emit(done, ts)  # type: ignore[arg-type]
            ev = self._line_event(done)  # type: ignore[arg-type]
        if ev["source"] != "sentinel" and ev["category"] != "cluster":
            return [ev]
        return self._after(ev)

    def _feed(self, line: bytes, offset: int, cut_bytes: int, partial: bool) -> list[Event]:
        """The general path of :meth:`feed`: flags for cut, partial and undecodable lines."""
        if line[-1:] == b"\r":
            line = line[:-1]
        flags: dict[str, Any] | None = None
        if len(line) > self.max_line_bytes:
            cut_bytes += len(line) - self.max_line_bytes
            line = line[: self.max_line_bytes]
        try:
            text = line.decode()
        except UnicodeDecodeError as e:
            if cut_bytes and e.start >= len(line) - 3 and e.reason == "unexpected end of data":
                text = line[: e.start].decode("utf-8", "replace")  # our own cut split a character
                cut_bytes += len(line) - e.start
            else:
                text = line.decode("utf-8", "replace")
                flags = {"invalid_utf8": True}
        if cut_bytes > 0:
            flags = flags or {}
            flags["truncated_bytes"] = cut_bytes
        if partial:
            flags = flags or {}
            flags["partial"] = True
        return self._feed_text(text, offset, flags)

    def _feed_text(self, text: str, offset: int, flags: dict[str, Any] | None) -> list[Event]:
        """The general path of :meth:`feed` once the line is text: any header, any state."""
        header = parse_header(text)
        ts: str | None = None
        if header is not None:
            k = header[3]  # ts_kind (tuple indexing: this runs once per line)
            hts = header[4]
            if k == TS_LEGACY:
                base = self._ts_cache.get(hts)  # seen this second before: no call at all
                if base is not None:
                    ts = base + (header[5] or "000") + "000Z"
                else:
                    resolver = self._ts
                    ts = resolver.legacy(hts, header[5])
                    if len(hts) == 15 and resolver.year_unknown:
                        flags = flags or {}
                        flags["year_unknown"] = True
            elif k == TS_EPOCH_S:
                ts = self._ts.epoch_seconds(hts)
            elif k == TS_ISO:
                ts = self._ts.iso(hts)
            elif k == TS_EPOCH_MS:
                ts = self._ts.epoch_millis(hts)
            if ts is None:
                flags = flags or {}
                flags["timestamp_invalid"] = hts
            elif flags is None and header[0] != FMT_SIGNAL:
                # a whole prefixed line of another form (iso8601, ms, year-less, 2.x, logfmt) in the
                # steady state: what Assembler.push would do, without a Block (Assembler.hline)
                out = self._pend_header(text, header, ts, offset)
                if out is not None:
                    return out
        done = self._asm.push(text, header, ts, offset, flags)
        if done is None:
            return []
        if done.kind == KIND_LINE and done.flags is None:
            ev = self._line_event(done)  # the common case, without the detour through _emit
            if ev["source"] != "sentinel" and ev["category"] != "cluster":
                return [ev]
            return self._after(ev)
        return self._emit(done, ts)
