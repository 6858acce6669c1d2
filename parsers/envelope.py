"""Container runtimes' log envelopes, unwrapped before parsing: CRI and Docker json-file.

On Kubernetes Redis writes to stdout and the container runtime writes each line to a file wrapped
in an envelope; in Docker, the json-file driver does. :class:`ContainerLogParser` takes those
physical lines, removes the envelope, joins the records a runtime split, and feeds the text to
the same :class:`parsers.logfile.LogParser` a host file goes through, so a wrapped Redis line gives
exactly the event the raw line gives.

* **CRI** (containerd, CRI-O, podman's ``k8s-file`` through conmon):
  ``<RFC3339Nano time> <stdout|stderr> <tags> <text>``; the first tag is ``P`` (a part: the line
  goes on in the next record) or ``F`` (full, or the last part).
* **Docker json-file**: ``{"log":"<text>\\n","stream":"stdout","time":"<RFC3339Nano>"}``; a line
  over 16 KiB is split across records, all but the last without the trailing ``\\n``.

The format is decided per file from its first line (``auto``) or given. What the runtime adds is
kept: ``fields.stream`` (``stdout``/``stderr``), and the runtime's time where the text has none
(``fields.timestamp_from: runtime``). Offsets stay byte offsets of the real file: an event's
``offset`` is where its first record starts, ``lines`` counts physical records, and
``pending_offset`` never passes a record whose line is still being joined, so a checkpoint inside
a ``P...F`` run re-reads the run whole.

Pure: no I/O, no clock; total: a record that is not what the format says is fed as it is.
"""

from __future__ import annotations

import re
from collections import deque
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from parsers.events import Event

FORMATS = ("auto", "plain", "cri", "docker")

_CRI = re.compile(
    rb"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})) (stdout|stderr) ([^ ]+) ?"
)
_FRACTION = re.compile(r"\.(\d+)")


class LineParser(Protocol):  # the follower's contract (parsers/logfile.py's module docstring)
    @property
    def pending_offset(self) -> int | None: ...

    def feed(self, line: bytes, offset: int, *, cut_bytes: int = 0, partial: bool = False) -> list[Event]: ...

    def flush(self) -> list[Event]: ...


def detect(first_line: bytes) -> str:
    """``cri``, ``docker`` or ``plain``, from a file's first line."""
    if _CRI.match(first_line):
        return "cri"
    if first_line.startswith(b"{") and _docker_record(first_line) is not None:
        return "docker"
    return "plain"


def runtime_time(value: str) -> str | None:
    """An RFC 3339 time with up to nanoseconds, any offset, as the events' UTC microseconds form."""
    try:
        m = _FRACTION.search(value)
        frac = (m.group(1) + "000000")[:6] if m else "000000"
        base = _FRACTION.sub("", value, count=1).replace("Z", "+00:00")
        when = datetime.fromisoformat(base).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + frac + "Z"


def _docker_record(line: bytes) -> tuple[str, str, str | None] | None:
    """(log text, stream, time) of a json-file record, or None when it is not one."""
    try:
        rec = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(rec, dict) or not isinstance(rec.get("log"), str):
        return None
    stream = rec.get("stream")
    when = rec.get("time")
    return rec["log"], stream if isinstance(stream, str) else "stdout", when if isinstance(when, str) else None


class ContainerLogParser:
    """A :class:`LineParser` for a container log file: unwraps, joins, then parses the text."""

    def __init__(self, inner: LineParser, container_format: str = "auto", *, max_line_bytes: int = 1 << 20) -> None:
        self.inner = inner
        self.format: str | None = None if container_format == "auto" else container_format
        self.max_line_bytes = max_line_bytes
        #: the record being joined: first offset, parts, records, stream, time, bytes cut
        self._join: tuple[int, list[bytes], int, str, str | None, int] | None = None
        #: per inner line fed, in order: (offset, physical records, stream, runtime time)
        self._fed: deque[tuple[int, int, str, str | None]] = deque()

    @property
    def pending_offset(self) -> int | None:
        inner = self.inner.pending_offset
        if self._join is not None:
            return self._join[0] if inner is None else min(inner, self._join[0])
        return inner

    def feed(self, line: bytes, offset: int, *, cut_bytes: int = 0, partial: bool = False) -> list[Event]:
        if self.format is None:
            self.format = detect(line)
        if self.format == "plain":
            return self._inner_feed(line, offset, 1, None, None, cut_bytes, partial)
        if self.format == "cri":
            m = _CRI.match(line)
            if m is None:
                return self._flush_join() + self._inner_feed(line, offset, 1, None, None, cut_bytes, partial)
            text, stream, when = line[m.end():], m.group(2).decode(), m.group(1).decode()
            last = not m.group(3).startswith(b"P")
        else:
            rec = _docker_record(line) if line.startswith(b"{") else None
            if rec is None:
                return self._flush_join() + self._inner_feed(line, offset, 1, None, None, cut_bytes, partial)
            log, stream, when = rec
            last = log.endswith("\n")
            text = (log[:-1] if last else log).removesuffix("\r").encode("utf-8", "replace")
        return self._record(text, offset, stream, when, last, cut_bytes, partial)

    def _record(self, text: bytes, offset: int, stream: str, when: str | None, last: bool, cut: int,
                partial: bool) -> list[Event]:
        out: list[Event] = []
        if self._join is not None and self._join[3] != stream:
            out += self._flush_join()  # stdout and stderr interleave: a part never joins the other stream
        if self._join is None:
            self._join = (offset, [], 0, stream, when, 0)
        first, parts, n, s, t, cut_total = self._join
        size = sum(len(p) for p in parts)
        room = self.max_line_bytes - size
        if len(text) > room:
            cut += len(text) - max(room, 0)
            text = text[:max(room, 0)]
        parts.append(text)
        self._join = (first, parts, n + 1, s, t, cut_total + cut)
        if last or partial:
            out += self._flush_join(partial=partial)
        return out

    def _flush_join(self, *, partial: bool = False) -> list[Event]:
        if self._join is None:
            return []
        first, parts, n, stream, when, cut = self._join
        self._join = None
        return self._inner_feed(b"".join(parts), first, n, stream, when, cut, partial)

    def _inner_feed(self, text: bytes, offset: int, records: int, stream: str | None, when: str | None,
                    cut: int, partial: bool) -> list[Event]:
        self._fed.append((offset, records, stream or "", when))
        return self._decorate(self.inner.feed(text, offset, cut_bytes=cut, partial=partial))

    def flush(self) -> list[Event]:
        return self._flush_join() + self._decorate(self.inner.flush())

    def _decorate(self, events: list[Event]) -> list[Event]:
        """Give each event the runtime's facts of the records it came from."""
        for ev in events:
            n = ev.get("lines", 0)
            if not n:
                continue  # a summary (failover) event covers no input line
            while self._fed and self._fed[0][0] < ev.get("offset", -1):
                self._fed.popleft()  # lines of events already decorated (defensive: none expected)
            records, stream, when = 0, "", None
            for _ in range(n):
                if not self._fed:
                    break
                _, r, s, w = self._fed.popleft()
                if not stream:
                    stream, when = s, w
                records += r
            if records:
                ev["lines"] = records
            if stream:
                fields: dict[str, Any] = ev.setdefault("fields", {})
                fields["stream"] = stream
                if "timestamp_from" in fields and when is not None:
                    ts = runtime_time(when)
                    if ts is not None:
                        ev["timestamp"] = ts
                        fields["timestamp_from"] = "runtime"
        return events
