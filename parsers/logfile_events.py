"""The events of a log file: the blocks and pending lines the assembler completes, made into events.

A :class:`parsers.logfile.LogParser` has two ways to a finished line (the fast path of whole
legacy lines, which keeps it as a tuple, and the general path, which goes through
:class:`parsers.multiline.Block`); both end here, so that one set of rules decides an event's
source, category, level, role and timestamp whichever way the line came. The failover
correlators sit at the end of it (:meth:`EventBuilder._after`): a Sentinel or cluster event may
complete a failover, whose summary follows it.

Which source a line belongs to is state: with ``kind="auto"``, a Sentinel line (role ``X``, a
Sentinel logo, a ``+sdown`` event on a role-less line) marks the whole file as Sentinel's, so
its role-less lines (the 2.x format, raw lines) are Sentinel's too.
"""

from __future__ import annotations

from typing import Any

from parsers.catalogue import classify
from parsers.cluster_failover import ClusterFailoverCorrelator
from parsers.events import LEVEL_BY_CHAR, LEVEL_BY_NAME, ROLE_BY_CHAR, ROLE_BY_NAME, Event
from parsers.failover import FailoverCorrelator
from parsers.line import FMT_LEGACY, FMT_LOGFMT, Header
from parsers.multiline import (
    KIND_BLANK,
    KIND_CRASH,
    KIND_LINE,
    KIND_LOGO,
    Block,
    PendingLine,
    crash_fields,
    logo_fields,
)
from parsers.sentinel import is_sentinel_event, parse_event

#: timestamp of an event when the input never gave one (a file of raw lines, no reference time)
NO_TIME = "1970-01-01T00:00:00.000000Z"

#: the first characters of a Sentinel event (``+sdown``, ``-odown``)
SENTINEL_SIGNS = ("+", "-")
_ROLE_BY_NAME = dict(ROLE_BY_NAME, master="master", slave="replica", child="child")


class EventBuilder:
    """The event-making part of :class:`parsers.logfile.LogParser`, which sets these attributes."""

    #: ``auto``, ``redis`` or ``sentinel`` (``parsers.logfile.KINDS``)
    kind: str
    #: set once a line shows the file is Sentinel's (``kind="auto"`` only)
    _sentinel_file: bool
    #: the reference time as event timestamp text, for a block no line dates
    _reference_ts: str | None
    _failover: FailoverCorrelator
    _cluster_failover: ClusterFailoverCorrelator

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
        if first[:1] in SENTINEL_SIGNS:
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
