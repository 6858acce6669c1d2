"""The public parser of one log file: bytes of lines in, events out, every line accounted for.

``LogParser`` is what the file follower and ``redis-shipper parse`` call. It ties the rooms of
``parsers/`` together: :mod:`parsers.line` takes the header apart, :mod:`parsers.timestamps`
turns its time into UTC, :mod:`parsers.multiline` groups lines into blocks (continuations,
logo, crash reports), :mod:`parsers.sentinel` and :mod:`parsers.catalogue` say what a message
is, :mod:`parsers.failover` adds the failover summaries.

Contract (the follower relies on each point):

* ``feed`` gets one line without its ``\\n`` and the byte offset where it starts. It returns
  the events *completed* by that line, usually the previous line's event (the next line
  might have been its continuation). ``flush`` returns whatever is pending.
* every event has ``offset`` (its first line) and ``lines`` (how many input lines it covers);
  the ``lines`` of all events add up to the number of lines fed. Failover summaries are extra
  events with ``lines: 0``. Events come out in offset order.
* ``pending_offset`` is the offset of the first line not yet inside a returned event: the
  follower's checkpoint never passes it, so a restart re-reads an open crash report whole.
* it never raises on any input, never drops a line, never reads a clock or a file.

This module holds ``LogParser``'s state and its fast path (the steady state of a log, where
nearly all the time goes). The rest of the class is in two modules by job:
:mod:`parsers.logfile_general_path` (every other line: flags, any header form, the assembler)
and :mod:`parsers.logfile_events` (blocks and pending lines made into events, failover summaries).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from parsers.catalogue import BUCKETS as _BUCKETS
from parsers.catalogue import classify
from parsers.cluster_failover import ClusterFailoverCorrelator
from parsers.events import LEVEL_BY_CHAR, ROLE_BY_CHAR, Event
from parsers.failover import FailoverCorrelator
from parsers.line import _feed_match
from parsers.logfile_events import NO_TIME, SENTINEL_SIGNS
from parsers.logfile_general_path import GeneralPath
from parsers.multiline import KIND_LINE, Assembler, is_crash_end
from parsers.sentinel import is_sentinel_event, parse_event
from parsers.timestamps import TimestampResolver

__all__ = ["KINDS", "NO_TIME", "LogParser", "parse_lines"]

KINDS = ("auto", "redis", "sentinel")


class LogParser(GeneralPath):
    """Parser of one Redis / Valkey / Sentinel log file (or stream). Not thread-safe."""

    def __init__(
        self,
        *,
        kind: str = "auto",
        tz: tzinfo,
        reference_time: datetime | None = None,
        year: int | None = None,
        max_line_bytes: int = 1 << 20,
    ):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        self.kind = kind
        self.max_line_bytes = max(1, int(max_line_bytes))
        self._ts = TimestampResolver(tz, reference_time, year)
        #: the resolver's cache of "dd Mon yyyy hh:mm:ss" -> UTC text; only full (with-year) keys
        #: are in it, so a year-less timestamp never hits it and always goes through year inference
        self._ts_cache = self._ts.cache
        self._asm = Assembler()
        self._failover = FailoverCorrelator()
        self._cluster_failover = ClusterFailoverCorrelator()
        self._sentinel_file = kind == "sentinel"
        #: "pid:R" text -> (pid, role char, source, role), see _proc
        self._procs: dict[str, tuple[int, str, str, str]] = {}
        #: (source, role) of a legacy line by its role char (fast path): Sentinel's X, else the server
        self._who = {
            c: (("sentinel" if c == "X" else "redis") if kind == "auto" else kind, ROLE_BY_CHAR[c]) for c in "XMSC"
        }
        self._reference_ts: str | None = None
        if reference_time is not None:
            ref = reference_time if reference_time.tzinfo is not None else reference_time.replace(tzinfo=UTC)
            self._reference_ts = ref.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    # ------------------------------------------------------------------ public API
    @property
    def pending_offset(self) -> int | None:
        return self._asm.pending_offset

    @property
    def pending_since_lines(self) -> int:
        return self._asm.pending_lines

    def feed(self, line: bytes, offset: int, *, cut_bytes: int = 0, partial: bool = False) -> list[Event]:
        """Add one line (no trailing ``\\n``; a trailing ``\\r`` is stripped) starting at ``offset``.

        Most lines of a real log are whole 5.0+ legacy lines (``pid:R dd Mon yyyy hh:mm:ss.mmm L
        msg``) of a second already seen, following another prefixed line: that case is handled
        here inline, without a Header, a Block or a call to the assembler (the pending line is a
        tuple, see ``Assembler.line``), and the event of the line before is built straight from its
        tuple. Anything else (cut, partial, ``\\r``, invalid UTF-8, another header form, a second
        not cached yet, a crash report or blank lines in progress) takes :meth:`_feed`, the general
        path. Both give the same events: the fast path is the general one with its branches
        already decided.

        The header regex of the fast path also hands over the message and its first word (the
        catalogue's key), and refuses a line that ends in ``\\r``, so the common line pays for
        neither a ``\\r`` test nor a search for the first space; a message whose first word has
        rules in the catalogue goes straight to them (such a word never starts with ``+`` or
        ``-``, so it is never a Sentinel event), anything else through :meth:`_classify_pending`.

        Two more cases are decided here because a crash report is hundreds of them: a whole line
        ending in ``\r`` (its INFO dump is CRLF) is stripped as :meth:`_feed` would, and a line no
        header can start, inside a crash report, joins the report as ``Assembler.push`` would."""
        if not cut_bytes and not partial and len(line) <= self.max_line_bytes:
            try:
                text = line.decode()
            except UnicodeDecodeError:
                return self._feed(line, offset, cut_bytes, partial)
            m = _feed_match(text)
            if m is not None:
                asm = self._asm
                pend = asm.line
                if (
                    pend is not None
                    or asm.hline is not None
                    or (asm.cur is not None and not asm.in_crash and not asm.lead_blanks)
                ):
                    proc_text, ts_text, ms, level, message, word = m.groups()
                    base = self._ts_cache.get(ts_text)
                    if base is not None:
                        ts = f"{base}{ms}000Z"
                        prev = asm.last_ts
                        asm.last_ts = ts
                        proc = self._procs.get(proc_text)
                        if proc is None:
                            proc = self._proc(proc_text)
                        asm.line = (
                            offset,
                            proc,
                            ts_text,
                            ms,
                            level,
                            message,
                            ts,
                            prev,
                            None if message else text,
                            word,
                        )
                        if pend is not None:
                            # the event of the pending line: _pending_event, inlined (once per line)
                            p_offset, p_proc, _t, _ms, p_level, first, p_ts, _p, _x, p_word = pend
                            p_pid, p_role, source, role_name = p_proc
                            rules = _BUCKETS.get(p_word)
                            if rules is not None:
                                res = rules(first)  # = classify(first), the word already known
                                if p_role == "X":
                                    self._sentinel_file = True
                            else:
                                res = self._classify_pending(first, source, p_role)
                            fields: dict[str, Any]  # (no code: an annotation, for the type checker)
                            if res is None:
                                category, event, fields = "other", "unrecognized", {}
                            else:
                                category, event, fields = res
                            ev = {
                                "timestamp": p_ts,
                                "source": source,
                                "category": category,
                                "event": event,
                                "level": LEVEL_BY_CHAR[p_level],
                                "pid": p_pid,
                                "role": role_name,
                                "message": first,
                                "fields": fields,
                                "offset": p_offset,
                                "lines": 1,
                            }
                            if source != "sentinel" and category != "cluster":
                                return [ev]
                            return self._after(ev)
                        hp = asm.hline
                        if hp is not None:
                            asm.hline = None
                            ev = self._prefixed_event(hp[1], hp[2], hp[3], hp[0], None, 1)
                            if ev["source"] != "sentinel" and ev["category"] != "cluster":
                                return [ev]
                            return self._after(ev)
                        done = asm.cur
                        asm.cur = None
                        if done.kind == KIND_LINE and done.flags is None:  # type: ignore[union-attr]
                            ev = self._line_event(done)  # type: ignore[arg-type]
                            if ev["source"] != "sentinel" and ev["category"] != "cluster":
                                return [ev]
                            return self._after(ev)
                        return self._emit(done, ts)  # type: ignore[arg-type]
            else:
                if line[-1:] == b"\r":
                    # what _feed does with a whole valid line ending in CR (the INFO dump inside a
                    # crash report is CRLF): strip it; the line decoded already, its length is fine
                    text = text[:-1]
                asm = self._asm
                if asm.in_crash:
                    c = text[:1]
                    if not ("0" <= c <= "9" or c == "[" or (c == "p" and text[:4] == "pid=")):
                        # a line no header can start (parse_header: None; its logfmt form starts
                        # with "pid=") inside a crash report: Assembler.push's first branch, without
                        # the calls
                        cur = asm.cur
                        if cur is not None:
                            cur.more.append(text)  # type: ignore[union-attr]
                            cur.lines += 1
                            cur.chars += len(text)
                            if text[:4] == "=== " and is_crash_end(text):
                                cur.complete = True
                                asm.in_crash = False
                            if cur.lines < asm.max_lines and cur.chars < asm.max_chars:
                                return []
                            return self._emit(asm.split(cur), None)
            if text[:1] == "p":
                return self._feed_logfmt(text, offset)
            return self._feed_text(text, offset, None)
        return self._feed(line, offset, cut_bytes, partial)

    def _classify_pending(self, first: str, source: str, role_char: str) -> tuple[str, str, dict[str, Any]] | None:
        """What the fast path of :meth:`feed` does with a message whose first word has no rules of
        its own: a Sentinel event (``+sdown ...``), an empty message, a leading number, or a
        message no keyed rule knows (:meth:`_pending_event`'s steps)."""
        if role_char == "X":
            self._sentinel_file = True
        if first[:1] in SENTINEL_SIGNS and (source == "sentinel" or is_sentinel_event(first)):
            return parse_event(first) or classify(first)
        return classify(first) if first else None

    def _proc(self, text: str) -> tuple[int, str, str, str]:
        """(pid, role char, source, role) of the ``pid:R`` text of a legacy line, remembered: a log
        has a handful of processes, each on thousands of lines, and this saves the fast path an
        ``int()`` and a lookup of the role per line."""
        if len(self._procs) >= 1024:
            self._procs.clear()
        role = text[-1]
        proc = self._procs[text] = (int(text[:-2]), role, *self._who[role])
        return proc

    def flush(self) -> list[Event]:
        """End of input or idle timeout: return every pending event."""
        done = self._asm.flush()
        if done is None:
            return []
        return self._emit(done, None)


def parse_lines(data: bytes, **kw: Any) -> list[Event]:
    """Parse a whole buffer (e.g. a file's content) and flush. A last line without ``\\n`` is
    parsed as a partial line. Keyword arguments go to :class:`LogParser`."""
    p = LogParser(**kw)
    out: list[Event] = []
    pos = 0
    n = len(data)
    feed = p.feed
    while pos < n:
        nl = data.find(b"\n", pos)
        if nl < 0:
            out.extend(feed(data[pos:], pos, partial=True))
            break
        out.extend(feed(data[pos:nl], pos))
        pos = nl + 1
    out.extend(p.flush())
    return out
