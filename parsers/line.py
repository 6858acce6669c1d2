"""The header grammar of one Redis / Valkey / Sentinel log line.

Every prefixed line any version writes is one of (redis-log-formats.md §1.1, §1.3, §1.9, §1.10)::

    2.x          [pid] dd Mon hh:mm:ss[.mmm] L msg
    2.6-2.8 sig  [pid | signal handler] (epoch) msg
    3.0-4.0      pid:R dd Mon hh:mm:ss.mmm L msg                 (no year)
    5.0+         pid:R dd Mon yyyy hh:mm:ss.mmm L msg
    Valkey 8.1+  pid:R yyyy-mm-ddThh:mm:ss.mmm+hh:mm L msg       (log-timestamp-format iso8601)
                 pid:R 1729787792738 L msg                       (log-timestamp-format milliseconds)
                 pid=N role=R timestamp="..." level=L message="..."   (log-format logfmt, any timestamp)
    3.0+ sig     pid:signal-handler (epoch) msg

Anything else is a *raw* line (logo, crash report body, continuation of a message that
contained ``\\n``): :func:`parse_header` returns ``None`` and the assembler decides.

Why one function returning a tuple and not a class: this runs once per input line and the
parser must keep up with >= 300,000 lines/s on one core. The most common form (3.0+ legacy,
any timestamp kind) is tried first with ONE compiled regex; the others are tried only when
the first character says they can match.
"""

from __future__ import annotations

import re
from typing import NamedTuple

# Timestamp kinds carried in Header.ts_kind
TS_LEGACY = 1  # "dd Mon [yyyy ]hh:mm:ss" + optional ms (local time, no zone)
TS_ISO = 2  # "yyyy-mm-ddThh:mm:ss.mmm+hh:mm" (Valkey iso8601, carries its own offset)
TS_EPOCH_MS = 3  # "1729787792738" (Valkey milliseconds)
TS_EPOCH_S = 4  # "1729787792" (signal-handler lines)

# Line formats carried in Header.fmt (also exported as fields.format by the parser when useful)
FMT_LEGACY = "legacy"  # 3.0+ pid:role
FMT_LEGACY2 = "legacy2"  # 2.x [pid]
FMT_SIGNAL = "signal-handler"
FMT_LOGFMT = "logfmt"


class Header(NamedTuple):
    """One prefixed line taken apart. ``ts`` is the timestamp text without milliseconds for
    TS_LEGACY (e.g. ``25 Nov 2026 17:35:43`` or ``25 Nov 17:35:43``), the whole text otherwise;
    ``ms`` the 3-digit milliseconds of a legacy timestamp or ``""``."""

    fmt: str
    pid: int
    role_char: str | None  # "M" "S" "C" "X" for legacy; logfmt role name for logfmt; None
    ts_kind: int
    ts: str
    ms: str
    level_char: str | None  # ".-*#" for legacy formats; None otherwise
    level_name: str | None  # logfmt level name; None otherwise
    message: str


_TS_ALTERNATIVES = (
    r"(?:(\d\d [A-Z][a-z]{2} (?:\d{4} )?\d\d:\d\d:\d\d)\.(\d{3})"  # legacy, with or without year
    r"|(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:?\d\d|Z))"  # iso8601
    r"|(\d{10,16}))"  # epoch milliseconds
)

#: 3.0+ ``pid:role ts level msg``. The message may be empty (``... # `` with a trailing space)
#: and a lenient optional space accepts a line whose trailing space was stripped.
LEGACY_RE = re.compile(r"(\d{1,10}):([XCSM]) " + _TS_ALTERNATIVES + r" ([.\-*#])(?: (.*)|$)", re.S | re.A)
#: 3.0+ signal-handler lines (also written in Valkey logfmt mode).
SIGNAL_RE = re.compile(r"(\d{1,10}):signal-handler \((\d{1,12})\)(?: (.*)|$)", re.S | re.A)
#: 2.x ``[pid] dd Mon hh:mm:ss[.mmm] L msg`` (2.0-2.4 without milliseconds).
LEGACY2_RE = re.compile(
    r"\[(\d{1,10})\] (\d\d [A-Z][a-z]{2} \d\d:\d\d:\d\d)(?:\.(\d{3}))? ([.\-*#])(?: (.*)|$)", re.S
)
#: 2.6-2.8 signal handler ``[pid | signal handler] (epoch) msg``.
SIGNAL2_RE = re.compile(r"\[(\d{1,10}) \| signal handler\] \((\d{1,12})\)(?: (.*)|$)", re.S | re.A)
#: Valkey 8.1+ logfmt. The message is always quoted (``"`` inside is written as ``'``); a line cut
#: by the length limit may lack the closing quote, which the caller strips when present.
LOGFMT_RE = re.compile(
    r'pid=(\d{1,10}) role=(\S+) timestamp="([^"]*)" level=(\w+) message="(.*)', re.S | re.A
)

#: ``Header(...)`` goes through a Python-level ``__new__``; this C call builds the same tuple in a
#: third of the time, which matters once per line.
_new = tuple.__new__

#: the timestamp text inside a logfmt line: legacy (always with year there), iso8601, or epoch ms
_LOGFMT_TS_RE = re.compile(_TS_ALTERNATIVES, re.A)


#: the most common shape of all (Redis 5.0+, Valkey default): ~100 ns less per line than LEGACY_RE
#: on long messages. Groups: pid, role, timestamp, ms, level, message.
_FAST_HEAD = (
    # fixed repeats spelled out (``\d\d\d\d`` not ``\d{4}``): the same language, a few % faster
    r"(\d{1,10}):([XCSM]) (\d\d [A-Z][a-z][a-z] \d\d\d\d \d\d:\d\d:\d\d)\.(\d\d\d) ([.\-*#])(?: |$)"
)
#: the message is the rest of the text (``(.*)`` under DOTALL is a jump to the end for the regex
#: engine): one ``groups()`` instead of ``groups()``, ``end()`` and a slice
_FAST_RE = re.compile(_FAST_HEAD + r"(.*)", re.A | re.S)
_fast_match = _FAST_RE.match
#: the same for ``LogParser.feed``, which also wants the message's first word (up to its first space:
#: the catalogue's key) and must not take a line ending in ``\r`` (stripped by its general path).
#: Groups: ``pid:role`` (one group: the parser remembers what it means), timestamp, ms, level,
#: message, first word.
_FEED_RE = re.compile(
    r"(\d{1,10}:[XCSM]) (\d\d [A-Z][a-z][a-z] \d\d\d\d \d\d:\d\d:\d\d)\.(\d\d\d) ([.\-*#])(?: |$)(([^ ]*).*)(?<!\r)\Z",
    re.A | re.S,
)
_feed_match = _FEED_RE.match

#: LOGFMT_RE with the timestamp alternatives inlined: one match instead of two for a logfmt line
#: whose timestamp is one of the known kinds (the timestamp alternatives never match ``"``, so
#: ``timestamp="ALT"`` matches exactly when ``timestamp="([^"]*)"`` does and ALT fullmatches the text
#: in between, with the same alternative chosen). Groups: pid, role, legacy ts, legacy ms, iso,
#: epoch ms, level, message (closing quote not yet stripped).
LOGFMT_FAST_RE = re.compile(
    r'pid=(\d{1,10}) role=(\S+) timestamp="' + _TS_ALTERNATIVES + r'" level=(\w+) message="(.*)', re.S | re.A
)


def parse_header(text: str) -> Header | None:
    """Return the header of a prefixed line, or ``None`` for a raw line. Never raises."""
    c = text[:1]
    if "0" <= c <= "9":  # every 3.0+ form starts with the pid; raw lines mostly do not: one test
        m = _fast_match(text)
        if m is not None:
            pid, role, ts, ms, level, msg = m.groups()
            return _new(Header, (FMT_LEGACY, int(pid), role, TS_LEGACY, ts, ms, level, None, msg))
        m = LEGACY_RE.match(text)
        if m is not None:
            g = m.groups()
            msg = g[7] or ""
            if g[2] is not None:
                return _new(Header, (FMT_LEGACY, int(g[0]), g[1], TS_LEGACY, g[2], g[3], g[6], None, msg))
            if g[4] is not None:
                return _new(Header, (FMT_LEGACY, int(g[0]), g[1], TS_ISO, g[4], "", g[6], None, msg))
            return _new(Header, (FMT_LEGACY, int(g[0]), g[1], TS_EPOCH_MS, g[5], "", g[6], None, msg))
        m = SIGNAL_RE.match(text)
        if m is not None:
            return _new(Header, (FMT_SIGNAL, int(m[1]), None, TS_EPOCH_S, m[2], "", None, None, m[3] or ""))
        return None
    if c == "p":
        m = LOGFMT_RE.match(text)
        if m is None:
            return None
        pid, role, ts, level, msg = m.groups()
        if msg.endswith('"'):
            msg = msg[:-1]
        t = _LOGFMT_TS_RE.fullmatch(ts)
        if t is None:
            # unknown timestamp text: still a logfmt line; the caller falls back to the last time
            return _new(Header, (FMT_LOGFMT, int(pid), role, 0, ts, "", None, level, msg))
        tg = t.groups()
        if tg[0] is not None:
            return _new(Header, (FMT_LOGFMT, int(pid), role, TS_LEGACY, tg[0], tg[1], None, level, msg))
        if tg[2] is not None:
            return _new(Header, (FMT_LOGFMT, int(pid), role, TS_ISO, tg[2], "", None, level, msg))
        return _new(Header, (FMT_LOGFMT, int(pid), role, TS_EPOCH_MS, tg[3], "", None, level, msg))
    if c == "[":
        m = LEGACY2_RE.match(text)
        if m is not None:
            return _new(
                Header, (FMT_LEGACY2, int(m[1]), None, TS_LEGACY, m[2], m[3] or "", m[4], None, m[5] or "")
            )
        m = SIGNAL2_RE.match(text)
        if m is not None:
            return _new(Header, (FMT_SIGNAL, int(m[1]), None, TS_EPOCH_S, m[2], "", None, None, m[3] or ""))
    return None
