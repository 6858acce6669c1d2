"""Assembly of lines into blocks: one prefixed line and its continuations, the ASCII logo, a
crash report, or raw lines that belong to nothing. A small state machine fed line by line.

Why blocks and not lines: Redis writes some messages over several lines with no prefix on
the continuation lines (a message containing ``\\n``, the logo, stack traces), and a crash
report mixes raw lines and prefixed lines for hundreds of lines (redis-log-formats.md §1.4,
§1.6). Shipping those lines one by one would turn one crash into 500 unreadable events, so
the assembler holds the current block until a line shows that it is over. This is why the
parser returns an event one line late, and why :attr:`Assembler.pending_offset` exists: the
follower must not checkpoint past a block that is still open.

It is one module of ~500 lines because the rules below are one state machine: each rule's exit
is another's entry, and the caps decide between them, so they are read together.

Rules, in order:

* inside a crash report (after ``=== REDIS|VALKEY BUG REPORT START``) every raw line and every
  prefixed line of the crashed process joins the report; ``=== ... BUG REPORT END`` ends the
  report proper, and the help text after it still joins as continuation. A prefixed line from
  another pid, or a new startup banner, closes a report that never reached END (the event is
  then flagged ``incomplete``).
* a crash banner right after a prefixed line with an empty message (Redis <= 3.0 logged the banner
  as ``redisLog(WARNING, "\\n\\n=== REDIS BUG REPORT START ...")``) takes that line into the report;
* a prefixed line always starts a new block and completes the current one;
* blank raw lines are counted into the current block (so every line is accounted for) but
  only become part of its text if more text follows; blank lines just before a crash banner
  or the logo move into that block, where they belong;
* the first line of the logo (``_._`` for Redis, ``.+^+.`` for Valkey) starts a logo block;
* any other raw line continues the current block only if that block is one of the multi-line forms
  Redis writes: the logo, the help text after a report's END (at most :data:`AFTER_END_MAX_LINES`
  lines), or a prefixed line whose text goes on below it (a signal-handler line: the watchdog and
  SIGALRM stack traces; a line with an empty message: ``serverLog(..., "\n...")``). Otherwise it
  is its own raw event: a line of garbage after a valid line must not hide in that line's event,
  and 3,000 such lines must not become one event no sink accepts.

A block never grows without bound. A crash report past ``max_lines`` lines or ``max_chars``
characters is completed (flagged ``split``, ``part: 1``) and its next lines open the next part of
the same report (``part: 2``, ..., each with ``report_offset``, where part 1 starts): a long
report is cut into events a sink accepts, never dropped. Any other block past its cap is completed
(flagged ``split``) and the raw lines after it are events of their own.

The caps are sized on the real reports in sample-logs/: the longest crash report there is 439
lines and 18,068 characters (Valkey 9, segfault), the logo 20 lines and 1,313 characters, the
help text after END 10 lines, the longest watchdog trace 68 lines. A crash event carries its
text twice (``report`` and most of it again in ``stack_trace``), so :data:`MAX_BLOCK_CHARS` keeps
one part well inside Loki's default 256 KB entry limit.
"""

from __future__ import annotations

import re
from typing import Any

from parsers.line import FMT_LEGACY, FMT_SIGNAL, TS_LEGACY, Header

_new = tuple.__new__

KIND_LINE = 0  # a prefixed line (+ continuation lines)
KIND_RAW = 1  # raw lines with no prefixed line to belong to
KIND_LOGO = 2  # the ASCII-art logo
KIND_CRASH = 3  # a bug report
KIND_BLANK = 4  # blank lines only (start of input, or left over at flush)

#: caps of a crash report part and of a stack trace after a signal-handler line (about 4 times
#: the longest real report)
MAX_BLOCK_LINES = 2_000
MAX_BLOCK_CHARS = 64 << 10
#: caps of the ASCII-art logo (twice the real one)
LOGO_MAX_LINES = 40
LOGO_MAX_CHARS = 4 << 10
#: lines after ``=== ... BUG REPORT END`` that still join the report (its help text: 10 lines)
AFTER_END_MAX_LINES = 30


class Block:
    """Lines that make one event. ``more`` holds the continuation lines of a KIND_LINE block and
    every line of the other kinds; ``flags`` the per-line oddities (invalid UTF-8, cut bytes,
    partial line) that end up in the event's fields."""

    __slots__ = (
        "kind",
        "offset",
        "lines",
        "header",
        "ts",
        "prev_ts",
        "more",
        "flags",
        "blank_tail",
        "blank_offset",
        "complete",
        "chars",
        "pid",
        "text",
        "part",
    )

    def __init__(self, kind: int, offset: int, header: Header | None, ts: str | None, prev_ts: str | None):
        self.kind = kind
        self.offset = offset
        self.lines = 1
        self.header = header
        self.ts = ts
        self.prev_ts = prev_ts
        self.more: list[str] | None = None
        self.flags: dict[str, Any] | None = None
        self.blank_tail = 0
        self.blank_offset = 0
        self.complete = False
        self.chars = 0
        self.pid: int | None = header.pid if header is not None else None
        #: the raw text of a prefixed line whose message is empty (kept only for those: Redis <= 3.0
        #: logs the crash-report banner as such a line followed by the banner on a raw line)
        self.text: str | None = None
        #: which part of a crash report split at the cap this block is (0: not split)
        self.part = 0


def merge_flags(block: Block, flags: dict[str, Any]) -> None:
    """Fold one line's flags into its block: cut bytes add up, booleans stick."""
    if block.flags is None:
        block.flags = dict(flags)
        return
    for k, v in flags.items():
        if k == "truncated_bytes":
            block.flags[k] = block.flags.get(k, 0) + v
        else:
            block.flags[k] = v


def is_crash_start(text: str) -> bool:
    return text.startswith("=== ") and "BUG REPORT START" in text


def is_crash_end(text: str) -> bool:
    return text.startswith("=== ") and "BUG REPORT END" in text


def is_logo_start(text: str) -> bool:
    s = text.strip()
    return s == "_._" or s == ".+^+."


def _takes_raw_lines(b: Block) -> bool:
    """Whether a raw line after block ``b`` (outside a crash report) is part of it: the multi-line
    forms Redis writes without a prefix on the lines after the first."""
    kind = b.kind
    if kind == KIND_LINE:
        # the text of a signal-handler line (watchdog, SIGALRM) or of an empty message goes on below
        return b.text is not None or (b.header is not None and b.header[0] == FMT_SIGNAL)
    if kind == KIND_LOGO:
        return True
    if kind == KIND_CRASH and b.complete and b.more:
        # the help text after END: only while END is among the last lines (the fast path of
        # LogParser.feed completes reports too, so the END line is looked for, not remembered)
        return any(t[:4] == "=== " and is_crash_end(t) for t in b.more[-AFTER_END_MAX_LINES:])
    return False


def _is_startup_banner(message: str) -> bool:
    return message.startswith("oO0OoO0OoO0Oo") or message.startswith("Server started, Redis version")


#: A prefixed line waiting for its successor, in the cheapest form: what ``Block`` would hold for
#: a lone 5.0+ legacy line without flags (``lines`` 1, no continuation). Fields, in order: offset,
#: the process (pid, role char, source, role: ``LogParser._proc``), timestamp text (``dd Mon yyyy
#: hh:mm:ss``), milliseconds, level char, message,
#: UTC timestamp, previous line's timestamp, the line's text when its message is empty else None, the
#: message's first word (the catalogue's key).
PendingLine = tuple[int, tuple[int, str, str, str], str, str, str, str, str, "str | None", "str | None", str]
#: The same for a prefixed line of any other form (logfmt, iso8601, epoch ms, year-less, 2.x; never a
#: signal-handler line): offset, header, UTC timestamp, previous timestamp, text if message empty.
PendingHeaderLine = tuple[int, Header, str, "str | None", "str | None"]


class Assembler:
    """Feed it lines in order with :meth:`push`; it returns each block when it is complete.

    ``line``: the open block when it is one plain prefixed line (the steady state of a log), kept
    as a :data:`PendingLine` tuple instead of a :class:`Block`. ``LogParser.feed`` reads and writes
    it directly on its fast path (a tuple costs a third of a ``Block`` and the event is built from
    it without one); every other path of this class first turns it into ``cur`` with
    :meth:`_materialise`, so the rules below only ever see Blocks. Invariant: when ``line`` is set,
    ``cur`` is None, ``in_crash`` is False and ``lead_blanks`` is 0. ``hline``: the same for a
    prefixed line of another form (a :data:`PendingHeaderLine`); at most one of the two is set.
    """

    def __init__(self, max_lines: int = MAX_BLOCK_LINES, max_chars: int = MAX_BLOCK_CHARS):
        self.line: PendingLine | None = None
        self.hline: PendingHeaderLine | None = None
        self.cur: Block | None = None
        self.in_crash = False
        self.lead_blanks = 0  # blank lines seen while no block was open
        self.lead_offset = 0
        self.last_ts: str | None = None  # timestamp of the last prefixed line
        self.max_lines = max_lines
        self.max_chars = max_chars
        #: the last part of a crash report split at the cap, while its next line is awaited (then
        #: ``in_crash`` is True and ``cur`` None)
        self.split_report: Block | None = None

    def _materialise(self) -> None:
        """Turn the pending :data:`PendingLine` or :data:`PendingHeaderLine` into the equivalent
        ``cur`` Block."""
        hp = self.hline
        if hp is not None:
            self.hline = None
            b = Block(KIND_LINE, hp[0], hp[1], hp[2], hp[3])
            b.text = hp[4]
            self.cur = b
            return
        p = self.line
        assert p is not None
        self.line = None
        offset, proc, ts_text, ms, level, message, ts, prev_ts, text, _word = p
        pid, role = proc[0], proc[1]
        header = _new(Header, (FMT_LEGACY, pid, role, TS_LEGACY, ts_text, ms, level, None, message))
        b = Block(KIND_LINE, offset, header, ts, prev_ts)
        b.text = text
        self.cur = b

    @property
    def pending_offset(self) -> int | None:
        if self.line is not None:
            return self.line[0]
        if self.hline is not None:
            return self.hline[0]
        if self.cur is not None:
            return self.cur.offset
        if self.lead_blanks:
            return self.lead_offset
        return None

    @property
    def pending_lines(self) -> int:
        if self.line is not None or self.hline is not None:
            return 1
        return (self.cur.lines if self.cur is not None else 0) + self.lead_blanks

    def _open(self, kind: int, offset: int, header: Header | None, ts: str | None, text: str) -> Block:
        """A new block for this line; blank lines waiting in front of it move into it."""
        b = Block(kind, offset, header, ts, self.last_ts)
        cur = self.cur
        blanks = 0
        if cur is not None and cur.blank_tail and kind in (KIND_CRASH, KIND_LOGO):
            blanks = cur.blank_tail
            cur.lines -= blanks
            cur.blank_tail = 0
            b.offset = cur.blank_offset
        elif cur is None and self.lead_blanks:
            blanks = self.lead_blanks
            self.lead_blanks = 0
            b.offset = self.lead_offset
        b.lines += blanks
        if kind != KIND_LINE:
            b.more = [""] * blanks + [text] if blanks else [text]
            b.chars = len(text)
        return b

    def push(
        self, text: str, header: Header | None, ts: str | None, offset: int, flags: dict[str, Any] | None
    ) -> Block | None:
        """Add one line; return the block it completed, if any (at most one per line)."""
        if self.line is not None or self.hline is not None:
            self._materialise()
        cur = self.cur
        if self.in_crash and cur is None:
            done = self._next_part(text, header, ts, offset, flags)
            if self.in_crash:
                return done
            cur = None  # a line from someone else: the split report ended without END
        elif self.in_crash and cur is not None:
            absorb = header is None or (
                (cur.pid is None or header[1] == cur.pid) and not _is_startup_banner(header[8])
            )
            if absorb:
                cur.more.append(text)  # type: ignore[union-attr]
                cur.lines += 1
                cur.chars += len(text)
                if flags:
                    merge_flags(cur, flags)
                if header is None:
                    if text[:4] == "=== " and is_crash_end(text):
                        cur.complete = True
                        self.in_crash = False
                    if cur.lines < self.max_lines and cur.chars < self.max_chars:
                        return None
                else:
                    if ts is not None:
                        self.last_ts = ts
                    if cur.pid is None:
                        cur.pid = header.pid
                        cur.header = header
                    if cur.ts is None:
                        cur.ts = ts
                return self._split_if_big(cur)
            self.in_crash = False  # a line from someone else: the report ended without END

        if header is not None:
            if cur is not None and not self.lead_blanks and header[0] != FMT_SIGNAL:
                # the fast path, most lines: a prefixed line completes the current block
                prev = self.last_ts
                if ts is not None:
                    self.last_ts = ts
                b = Block(KIND_LINE, offset, header, ts, prev)
                if not header[8]:
                    b.text = text
                if flags:
                    merge_flags(b, flags)
                self.cur = b
                return cur
            if (
                cur is not None
                and header.fmt == FMT_SIGNAL
                and cur.kind == KIND_LINE
                and cur.header is not None
                and cur.header.fmt == FMT_SIGNAL
                and cur.header.pid == header.pid
                and header.message
                and not header.message.strip("-")
                and cur.more is not None
            ):
                # the "--------" line closing a watchdog / SIGALRM stack trace (debug.c)
                self._append(cur, text, flags)
                return self._split_if_big(cur)
            if ts is not None:
                self.last_ts = ts
            b = self._open(KIND_LINE, offset, header, ts, text)
            if not header[8]:
                b.text = text
            if flags:
                merge_flags(b, flags)
            self.cur = b
            return cur

        if not text:  # blank raw line
            if cur is None:
                if not self.lead_blanks:
                    self.lead_offset = offset
                self.lead_blanks += 1
            else:
                if not cur.blank_tail:
                    cur.blank_offset = offset
                cur.blank_tail += 1
                cur.lines += 1
                if flags:
                    merge_flags(cur, flags)
            return None

        if is_crash_start(text):
            if cur is not None and cur.kind == KIND_LINE and cur.text is not None and cur.more is None:
                # Redis <= 3.0: redisLog(WARNING, "\n\n=== REDIS BUG REPORT START ...") wrote a prefixed
                # line with an empty message, blank line(s), then the banner: all of it is the report
                b = Block(KIND_CRASH, cur.offset, cur.header, cur.ts, cur.prev_ts)
                b.lines = cur.lines + 1
                b.more = [cur.text, *([""] * cur.blank_tail), text]
                b.chars = len(cur.text) + len(text)
                if cur.flags:
                    merge_flags(b, cur.flags)
                if flags:
                    merge_flags(b, flags)
                self.cur = b
                self.in_crash = True
                return None
            b = self._open(KIND_CRASH, offset, None, None, text)
            if flags:
                merge_flags(b, flags)
            self.cur = b
            self.in_crash = True
            return cur
        if is_logo_start(text) and (cur is None or cur.kind != KIND_LOGO):
            b = self._open(KIND_LOGO, offset, None, None, text)
            if flags:
                merge_flags(b, flags)
            self.cur = b
            return cur
        if cur is not None and _takes_raw_lines(cur):
            self._append(cur, text, flags)
            return self._split_if_big(cur)
        # a raw line of its own; blank lines before it stay (counted) with the block before
        b = self._open(KIND_RAW, offset, None, None, text)
        if flags:
            merge_flags(b, flags)
        self.cur = b
        return cur

    def _next_part(
        self, text: str, header: Header | None, ts: str | None, offset: int, flags: dict[str, Any] | None
    ) -> Block | None:
        """The first line after a crash report part that reached the cap: the next part of the
        same report if the report would have absorbed it (``in_crash`` stays True), else the
        report is over (``in_crash`` False, the line is for the caller's other rules)."""
        prev = self.split_report
        self.split_report = None
        if prev is None or header is not None and (
            (prev.pid is not None and header[1] != prev.pid) or _is_startup_banner(header[8])
        ):
            self.in_crash = False
            return None
        b = Block(KIND_CRASH, offset, prev.header, prev.ts, prev.prev_ts)
        b.pid = prev.pid
        b.part = prev.part + 1
        b.more = [text]
        b.chars = len(text)
        b.flags = {"part": b.part, "report_offset": (prev.flags or {}).get("report_offset", prev.offset)}
        if flags:
            merge_flags(b, flags)
        if header is None:
            if text[:4] == "=== " and is_crash_end(text):
                b.complete = True
                self.in_crash = False
        elif ts is not None:
            self.last_ts = ts
        self.cur = b
        return self._split_if_big(b)

    def _append(self, cur: Block, text: str, flags: dict[str, Any] | None) -> None:
        more = cur.more
        if more is None:
            more = cur.more = []
        if cur.blank_tail:
            more.extend([""] * cur.blank_tail)
            cur.blank_tail = 0
        more.append(text)
        cur.lines += 1
        cur.chars += len(text)
        if flags:
            merge_flags(cur, flags)

    def _split_if_big(self, cur: Block) -> Block | None:
        if cur.kind == KIND_LOGO:
            if cur.lines < LOGO_MAX_LINES and cur.chars < LOGO_MAX_CHARS:
                return None
        elif cur.lines < self.max_lines and cur.chars < self.max_chars:
            return None
        return self.split(cur)

    def split(self, cur: Block) -> Block:
        """Complete ``cur``, the open block, because it reached its cap. A crash report still
        open goes on in a next part (see :meth:`_next_part`)."""
        self.cur = None
        if cur.kind == KIND_CRASH and self.in_crash:
            if not cur.part:
                cur.part = 1
                merge_flags(cur, {"part": 1, "report_offset": cur.offset})
            self.split_report = cur
        else:
            self.in_crash = False
        merge_flags(cur, {"split": True})
        return cur

    def flush(self) -> Block | None:
        """End of input: the open block (a crash report without END stays ``complete=False``),
        or the blank lines left over."""
        if self.line is not None or self.hline is not None:
            self._materialise()
        cur = self.cur
        self.cur = None
        self.in_crash = False
        self.split_report = None
        if cur is not None:
            return cur
        if self.lead_blanks:
            b = Block(KIND_BLANK, self.lead_offset, None, None, self.last_ts)
            b.lines = self.lead_blanks
            b.more = [""] * self.lead_blanks
            self.lead_blanks = 0
            return b
        return None


# ------------------------------------------------------------------ what a block says

_CRASHED_RE = re.compile(
    r"(?P<server>Redis|Valkey|valkey|redis|KeyDB)\s+(?P<version>\S+)\s+crashed by signal: (?P<signal>\d+)"
    r"(?:, si_code: (?P<si_code>-?\d+))?"
)
_ACCESS_RE = re.compile(r"Accessing address: (\S+)")
_KILLED_RE = re.compile(r"Killed by PID: (\d+), UID: (\d+)")
_EIP_RE = re.compile(r"Crashed running the ins(?:tr)?uction at: (\S+)")  # "instuction": 3.2-5.0 typo
_ASSERT_RE = re.compile(r"==> (.*)")
_FAILED_ASSERT_RE = re.compile(r"Failed assertion: (.*)")
_GURU_RE = re.compile(r"Guru Meditation: (.*)")
#: Redis 2.6 - 3.0 section headers are prefixed lines: ``<pid>:M <time> # --- INFO OUTPUT``
_OLD_SECTION_RE = re.compile(r"(?:^|[.*#-] )--- [A-Z][A-Z ]+$")
_SIGNAL_NAMES = {4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 11: "SIGSEGV", 5: "SIGTRAP"}


def crash_fields(lines: list[str], complete: bool) -> tuple[str, dict[str, Any]]:
    """Message and fields of a crash report: signal, the crashed-by line, the assertion or the
    panic, the stack trace and the full text. The message is the most telling line (crashed by
    signal / assertion / guru meditation), else the START banner."""
    fields: dict[str, Any] = {"kind": "unknown", "complete": complete}
    message = ""
    stack: list[str] = []
    in_stack = False
    for line in lines:
        if " " not in line:
            # most lines of a report (its INFO dump, "used_memory:1234") have no space, and every
            # text looked for below has one: such a line can only be part of the stack trace
            if in_stack:
                stack.append(line)
            continue
        if line.startswith("pid=") and line.endswith('"'):
            line = line[:-1]  # a logfmt line: look at its message without the closing quote
        s = line.strip()
        if in_stack:
            if s.startswith("------ ") or _OLD_SECTION_RE.search(s) is not None:
                in_stack = False  # STACK TRACE DONE, or the next section (3.2+ raw, <= 3.0 prefixed)
            else:
                stack.append(line)
                continue
        if s.startswith("------ STACK TRACE ------") or s.endswith("--- STACK TRACE"):
            in_stack = True
            continue
        if "crashed by signal" in line and "signal" not in fields:
            m = _CRASHED_RE.search(line)
            if m is not None:
                sig = int(m["signal"])
                fields["kind"] = "signal"
                fields["signal"] = sig
                if sig in _SIGNAL_NAMES:
                    fields["signal_name"] = _SIGNAL_NAMES[sig]
                if m["si_code"] is not None:
                    fields["si_code"] = int(m["si_code"])
                fields["server"] = m["server"].capitalize()
                fields["version"] = m["version"]
                fields["crashed_by"] = line[m.start() :]
                message = fields["crashed_by"]
            continue
        if "Accessing address:" in line:
            m = _ACCESS_RE.search(line)
            if m is not None:
                fields["accessing_address"] = m[1]
        elif "Killed by PID:" in line:
            m = _KILLED_RE.search(line)
            if m is not None:
                fields["killed_by_pid"] = int(m[1])
                fields["killed_by_uid"] = int(m[2])
        elif "SIGSEGV caused by address:" in line:  # Redis <= 3.0
            fields["accessing_address"] = line.rsplit(" ", 1)[-1]
        elif "Crashed running the instruction at:" in line or "Crashed running the instuction at:" in line:
            m = _EIP_RE.search(line)
            if m is not None:
                fields["instruction_address"] = m[1]
        elif "ASSERTION FAILED ===" in line and "CONTEXT" not in line:
            fields["kind"] = "assertion"
        elif "==> " in line and "assertion" not in fields:
            m = _ASSERT_RE.search(line)
            if m is not None:
                fields["assertion"] = m[1]
                fields["kind"] = "assertion"
                if not message or "crashed by signal" in message:
                    message = line[m.start() :]
        elif "Failed assertion:" in line and "assertion" not in fields:
            m = _FAILED_ASSERT_RE.search(line)
            # <= 5.0 print this line on every crash; "<no assertion failed>" means a plain signal
            if m is not None and not m[1].startswith("<no assertion failed>"):
                fields["assertion"] = m[1]
                fields["kind"] = "assertion"
                message = line[m.start() :]
        elif "Guru Meditation:" in line and "guru_meditation" not in fields:
            m = _GURU_RE.search(line)
            if m is not None:
                fields["guru_meditation"] = m[1]
                fields["kind"] = "panic"
                message = line[m.start() :]
    if stack:
        while stack and not stack[-1].strip():
            stack.pop()
        while stack and not stack[0].strip():
            stack.pop(0)
        fields["stack_trace"] = "\n".join(stack)
    if not message:
        message = next((ln for ln in lines if ln.strip()), "")
    fields["report"] = "\n".join(lines)
    return message, fields


_LOGO_VERSION_RE = re.compile(
    r"(?P<version>\d+\.\d+\.\d+\S*) \((?P<git_sha1>[^/)]*)/(?P<git_dirty>\d+)\) (?P<bits>\d+) bit"
)
_LOGO_SERVER_RE = re.compile(r"\b(Redis|Valkey|KeyDB)\b")
_LOGO_MODE_RE = re.compile(r"Running in (\w+) mode")
_LOGO_PORT_RE = re.compile(r"Port: (\d+)")
_LOGO_PID_RE = re.compile(r"PID: (\d+)")


def logo_fields(text: str) -> dict[str, Any]:
    """Version, mode, port and pid printed in the ASCII logo (redisAsciiArt / serverAsciiArt)."""
    fields: dict[str, Any] = {}
    m = _LOGO_SERVER_RE.search(text)
    if m is not None:
        fields["server"] = m[1]
    m = _LOGO_VERSION_RE.search(text)
    if m is not None:
        fields["version"] = m["version"]
        fields["bits"] = int(m["bits"])
    m = _LOGO_MODE_RE.search(text)
    if m is not None:
        fields["mode"] = m[1]
    m = _LOGO_PORT_RE.search(text)
    if m is not None:
        fields["port"] = int(m[1])
    m = _LOGO_PID_RE.search(text)
    if m is not None:
        fields["server_pid"] = int(m[1])
    return fields
