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
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any

from parsers.catalogue import _BUCKETS, classify
from parsers.cluster_failover import ClusterFailoverCorrelator
from parsers.events import LEVEL_BY_CHAR, LEVEL_BY_NAME, ROLE_BY_CHAR, ROLE_BY_NAME, Event
from parsers.failover import FailoverCorrelator
from parsers.line import (
    FMT_LEGACY,
    FMT_LOGFMT,
    FMT_SIGNAL,
    LOGFMT_FAST_RE,
    TS_EPOCH_MS,
    TS_EPOCH_S,
    TS_ISO,
    TS_LEGACY,
    Header,
    _feed_match,
    parse_header,
)
from parsers.multiline import (
    KIND_BLANK,
    KIND_CRASH,
    KIND_LINE,
    KIND_LOGO,
    Assembler,
    Block,
    PendingLine,
    crash_fields,
    is_crash_end,
    logo_fields,
)
from parsers.sentinel import is_sentinel_event, parse_event
from parsers.timestamps import TimestampResolver

KINDS = ("auto", "redis", "sentinel")
#: timestamp of an event when the input never gave one (a file of raw lines, no reference time)
NO_TIME = "1970-01-01T00:00:00.000000Z"

_SIGNS = ("+", "-")
_new = tuple.__new__
_logfmt_fast_match = LOGFMT_FAST_RE.match
_ROLE_BY_NAME = dict(ROLE_BY_NAME, master="master", slave="replica", child="child")


class LogParser:
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
        if first[:1] in _SIGNS and (source == "sentinel" or is_sentinel_event(first)):
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

    def flush(self) -> list[Event]:
        """End of input or idle timeout: return every pending event."""
        done = self._asm.flush()
        if done is None:
            return []
        return self._emit(done, None)

    # ------------------------------------------------------------------ blocks -> events
    def _emit(self, b: Block, next_ts: str | None) -> list[Event]:
        kind = b.kind
        if kind == KIND_LINE:
            ev = self._line_event(b)
        else:
            ev = self._block_event(b, next_ts)
        if b.flags:
            ev["fields"].update(b.flags)
        return self._after(ev)

    def _after(self, ev: Event) -> list[Event]:
        """The event, followed by the failover summary it completes, if any."""
        if ev["source"] == "sentinel" and "sentinel_event" in ev["fields"]:
            summaries = self._failover.observe(ev)
            if summaries:
                return [ev, *summaries]
        elif ev["category"] == "cluster":
            summaries = self._cluster_failover.observe(ev)
            if summaries:
                return [ev, *summaries]
        return [ev]

    def _source(self, role: str | None) -> str:
        if self.kind == "auto":
            if role == "sentinel":
                self._sentinel_file = True
                return "sentinel"
            if role is None and self._sentinel_file:
                return "sentinel"
            return "redis"
        return self.kind

    def _pending_event(self, p: PendingLine) -> Event:
        """:meth:`_line_event` of a lone 5.0+ legacy line without flags, from its tuple: the same
        steps with the branches a legacy header decides already taken."""
        offset, proc, _t, _ms, level_char, first, ts, _prev, _text, _word = p
        pid, role_char = proc[0], proc[1]
        role = ROLE_BY_CHAR[role_char]
        kind = self.kind
        if kind == "auto":
            if role == "sentinel":
                self._sentinel_file = True
                source = "sentinel"
            else:
                source = "redis"
        else:
            source = kind
        res = None
        if first[:1] in _SIGNS:
            if source == "sentinel" or is_sentinel_event(first):
                res = parse_event(first)
        if res is None:
            res = classify(first) if first else None
        fields: dict[str, Any]
        if res is None:
            category, event, fields = "other", "unrecognized", {}
        else:
            category, event, fields = res
        return {
            "timestamp": ts,
            "source": source,
            "category": category,
            "event": event,
            "level": LEVEL_BY_CHAR[level_char],
            "pid": pid,
            "role": role,
            "message": first,
            "fields": fields,
            "offset": offset,
            "lines": 1,
        }

    def _line_event(self, b: Block) -> Event:
        return self._prefixed_event(b.header, b.ts, b.prev_ts, b.offset, b.more, b.lines)  # type: ignore[arg-type]

    def _prefixed_event(
        self, header: Header, ts: str | None, prev_ts: str | None, offset: int, more: list[str] | None, lines: int
    ) -> Event:
        """The event of a prefixed line and its continuation lines ``more``."""
        fmt, pid, role_char, _k, _ts, _ms, level_char, level_name, first = header
        if fmt == FMT_LEGACY:
            role: str | None = ROLE_BY_CHAR[role_char]  # type: ignore[index]
            level = LEVEL_BY_CHAR[level_char]  # type: ignore[index]
        elif fmt == FMT_LOGFMT:
            role = _ROLE_BY_NAME.get(role_char)  # type: ignore[arg-type]
            level = LEVEL_BY_NAME.get(level_name, "notice")  # type: ignore[arg-type]
        else:
            role = None
            level = LEVEL_BY_CHAR[level_char] if level_char else "warning"
        kind = self.kind
        if kind == "auto":
            if role == "sentinel":
                self._sentinel_file = True
                source = "sentinel"
            elif role is None and self._sentinel_file:
                source = "sentinel"
            else:
                source = "redis"
        else:
            source = kind
        message = first if more is None else first + "\n" + "\n".join(more)
        res = None
        if first[:1] in ("+", "-"):
            if source == "sentinel" or is_sentinel_event(first):
                res = parse_event(first)
                if res is not None and source != "sentinel" and role is None and self.kind == "auto":
                    source = "sentinel"
                    self._sentinel_file = True
        if res is None:
            res = classify(first) if first else _classify_empty(more)
        fields: dict[str, Any]
        if res is None:
            category, event, fields = "other", "unrecognized", {}
        else:
            category, event, fields = res
        if fmt == FMT_LOGFMT:
            if level_name not in LEVEL_BY_NAME:
                fields["level_raw"] = level_name
            if role is None:
                fields["role_raw"] = role_char
        if ts is None:  # an impossible date in the header (flagged timestamp_invalid)
            ts = prev_ts or self._reference_ts or NO_TIME
        return {
            "timestamp": ts,
            "source": source,
            "category": category,
            "event": event,
            "level": level,
            "pid": pid,
            "role": role,
            "message": message,
            "fields": fields,
            "offset": offset,
            "lines": lines,
        }

    def _block_event(self, b: Block, next_ts: str | None) -> Event:
        lines = b.more or []
        role: str | None = None
        pid = b.pid
        fields: dict[str, Any]
        if b.header is not None:
            h = b.header
            if h.fmt == FMT_LEGACY:
                role = ROLE_BY_CHAR.get(h.role_char)  # type: ignore[arg-type]
            elif h.fmt == FMT_LOGFMT:
                role = _ROLE_BY_NAME.get(h.role_char)  # type: ignore[arg-type]
        if b.kind == KIND_CRASH:
            message, fields = crash_fields(lines, b.complete)
            if not b.complete:
                fields["incomplete"] = True
            category, event, level = "crash", "crash_report", "warning"
        elif b.kind == KIND_LOGO:
            message = "\n".join(lines)
            fields = logo_fields(message)
            category, event, level = "startup", "logo", "notice"
            if pid is None:
                pid = fields.get("server_pid")
            if fields.get("mode") == "sentinel":
                role = "sentinel"
        elif b.kind == KIND_BLANK:
            message, fields = "", {}
            category, event, level = "other", "blank_lines", "notice"
        else:
            message = "\n".join(lines)
            fields = {"raw": True}
            category, event, level = "other", "unrecognized", "notice"
        ts = b.ts
        if ts is None:
            if b.prev_ts is not None:
                ts = b.prev_ts
                fields["timestamp_from"] = "previous_line"
            elif next_ts is not None:
                ts = next_ts
                fields["timestamp_from"] = "next_line"
            elif self._reference_ts is not None:
                ts = self._reference_ts
                fields["timestamp_from"] = "reference_time"
            else:
                ts = NO_TIME
                fields["timestamp_from"] = "none"
        return {
            "timestamp": ts,
            "source": self._source(role),
            "category": category,
            "event": event,
            "level": level,
            "pid": pid,
            "role": role,
            "message": message,
            "fields": fields,
            "offset": b.offset,
            "lines": b.lines,
        }


def _classify_empty(more: list[str] | None) -> tuple[str, str, dict[str, Any]] | None:
    """A prefixed line with an empty message whose text follows on raw lines: the watchdog and
    SIGALRM reports (``<pid>:signal-handler (<secs>) `` + ``\\n--- WATCHDOG TIMER EXPIRED ---``)."""
    if not more:
        return None
    first = next((ln.strip() for ln in more if ln.strip()), "")
    if first.startswith("--- WATCHDOG TIMER EXPIRED ---"):
        return "latency", "watchdog_timer_expired", {"stack_trace": "\n".join(more[1:]).strip("\n")}
    if first.startswith("Received SIGALRM"):
        return "crash", "sigalrm_received", {"stack_trace": "\n".join(more[1:]).strip("\n")}
    return None


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
