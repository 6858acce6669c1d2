"""The fast paths of ``LogParser.feed`` give exactly the events of its general path.

``feed`` takes the steady state of a log (a whole prefixed line following another prefixed line)
without the assembler's ``Block`` objects: the pending line is a tuple (``Assembler.line`` /
``Assembler.hline``) and its event is built from it. Every other case goes through
``Assembler.push`` as every line did before. These tests run the same input through ``LogParser``
and through ``GeneralPathParser`` (the same class with the fast paths switched off) and compare the
canonical JSON of every event and the pending offset after every line: the real sample logs under
several settings, lines built for the corners (DST, year-less lines, impossible dates, every
timestamp kind, cut and partial lines, invalid UTF-8, NUL, CR), and random mixtures of real lines
and damaged ones. The golden files pin the output itself; this pins that the shortcut changes none
of it, in the settings the golden files do not use.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.events import dumps
from parsers.line import Header
from parsers.logfile import LogParser
from parsers.timestamps import TimestampResolver

SAMPLE_LOGS = Path(__file__).resolve().parent.parent / "sample-logs"
LOGS = sorted(SAMPLE_LOGS.glob("*/*.log"))
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


class GeneralPathParser(LogParser):
    """``LogParser`` with its fast paths off: every line through ``Assembler.push`` and Blocks."""

    def feed(self, line: bytes, offset: int, *, cut_bytes: int = 0, partial: bool = False) -> list[Any]:
        return self._feed(line, offset, cut_bytes, partial)

    def _pend_header(self, text: str, header: Header, ts: str, offset: int) -> None:
        return None


def run(cls: type[LogParser], lines: list[tuple[bytes, int, bool]], **kw: Any) -> list[str]:
    """Feed (line, cut_bytes, partial) triples; the JSON of every event and the pending state."""
    p = cls(**kw)
    out: list[str] = []
    offset = 0
    for line, cut, partial in lines:
        if cut or partial:
            events = p.feed(line, offset, cut_bytes=cut, partial=partial)
        else:
            events = p.feed(line, offset)
        out.extend(dumps(ev).decode() for ev in events)
        out.append(f"pending {p.pending_offset} {p.pending_since_lines}")
        offset += len(line) + 1
    out.extend(dumps(ev).decode() for ev in p.flush())
    return out


def assert_same(lines: list[tuple[bytes, int, bool]], **kw: Any) -> None:
    fast, general = run(LogParser, lines, **kw), run(GeneralPathParser, lines, **kw)
    assert len(fast) == len(general)
    for i, (a, b) in enumerate(zip(fast, general, strict=True)):
        assert a == b, f"first difference at output {i}"


def whole(data: bytes) -> list[tuple[bytes, int, bool]]:
    return [(ln, 0, False) for ln in data.split(b"\n")]


SETTINGS = [
    pytest.param({"tz": UTC}, id="utc"),
    pytest.param({"tz": PARIS, "reference_time": datetime(2026, 11, 30, tzinfo=UTC)}, id="paris-reference"),
    pytest.param({"tz": NEW_YORK, "year": 2019, "kind": "redis"}, id="new-york-year-kind-redis"),
    pytest.param({"tz": UTC, "kind": "sentinel", "max_line_bytes": 60}, id="sentinel-cut-at-60"),
]


@pytest.mark.parametrize("kw", SETTINGS)
@pytest.mark.parametrize("log", LOGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_sample_log_gives_the_same_events_through_the_fast_path(log: Path, kw: dict[str, Any]) -> None:
    assert_same(whole(log.read_bytes()), **kw)


def corner_lines() -> bytes:
    """Prefixed lines of every form around the DST changes of Paris and New York (with and
    without year), impossible dates, every timestamp kind, and the damage a file can carry."""
    out = []
    for day, mon in ((31, "Mar"), (27, "Oct"), (10, "Mar"), (3, "Nov")):
        for year in ("2024 ", ""):
            for h in range(0, 4):
                for s in range(0, 3600, 97):
                    mm, ss = divmod(s, 60)
                    ts = f"{day:02d} {mon} {year}{h:02d}:{mm:02d}:{ss:02d}.{s % 1000:03d}"
                    out.append(f"12:M {ts} * DB saved on disk")
        out.append(f'pid=1 role=primary timestamp="{day:02d} {mon} 2024 02:30:00.000" level=notice message="x"')
        out.append(f'pid=1 role=primary timestamp="{day:02d} {mon} 02:30:00.000" level=notice message="x"')
        out.append(f"[12] {day:02d} {mon} 02:30:00 * DB saved on disk")
    for ts in ("31 Feb 2024 10:00:00", "29 Feb 10:00:00", "31 Dec 23:59:59", "01 Jan 00:00:01", "12 Jul 2024 23:59:60"):
        out.append(f"123:S {ts}.001 # Background saving started by pid 42")
    for ts in (
        "2024-03-31T02:30:00.123+02:00",
        "2024-03-31T02:30:00.123+00:00",
        "2024-03-31T02:30:00Z",
        "2024-02-30T02:30:00.123+02:00",
        "9999-12-31T23:59:59.999-01:00",
        "1729787792738",
        "9999999999999999",
        "not a time",
    ):
        out.append(f"123:M {ts} * DB saved on disk")
        out.append(f'pid=1 role=primary timestamp="{ts}" level=info message="DB saved on disk"')
        out.append(f'pid=1 role=sentinel timestamp="{ts}" level=odd message="+sdown master m 127.0.0.1 6379')
    out += [
        "123:signal-handler (1729787792) Received SIGTERM scheduling shutdown...",
        "123:signal-handler (1729787792) ",
        "--- WATCHDOG TIMER EXPIRED ---",
        "123:signal-handler (1729787792) --------",
        "123:X 25 Nov 2026 18:57:04.076 # +sdown master mymaster 127.0.0.1 44681",
        "123:M 25 Nov 2026 18:57:04.076 * +sdown master mymaster 127.0.0.1 44681",
        "123:M 25 Nov 2026 18:57:04.076 # ",
        "",
        "",
        "123:M 25 Nov 2026 18:57:04.077 * continued",
        "a continuation line",
        "123:M 25 Nov 2026 18:57:04.078 * Ready to accept connections tcp\r",
        "123:M 25 Nov 2026 18:57:04.079 * nul \x00 inside",
    ]
    data = "\n".join(out).encode()
    return data + b"\n124:M 25 Nov 2026 18:57:05.000 * bad \xff\xfe utf-8\n125:M 25 Nov 2026 18:57:05.001 * caf\xc3"


@pytest.mark.parametrize("kw", SETTINGS)
def test_corner_lines_give_the_same_events_through_the_fast_path(kw: dict[str, Any]) -> None:
    lines = whole(corner_lines())
    assert_same(lines, **kw)
    assert_same([(ln, 2 if i % 7 == 0 else 0, i % 11 == 0) for i, (ln, _c, _p) in enumerate(lines)], **kw)


_SAMPLE_LINES = [ln for p in LOGS for ln in p.read_bytes().split(b"\n")]
_DAMAGE = [b"\xff", b"\xc3", b"\x00", b"\r", b'"', b" ", b"\xe2\x82"]


@st.composite
def damaged_logs(draw: st.DrawFn) -> list[tuple[bytes, int, bool]]:
    """Runs of consecutive real lines (so blocks, crash reports and failovers stay whole), some of
    them damaged: cut, spliced with another line, a byte inserted, cut or partial on input."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    out = []
    for _ in range(draw(st.integers(1, 6))):
        start = rng.randrange(len(_SAMPLE_LINES))
        for ln in _SAMPLE_LINES[start : start + rng.randint(1, 40)]:
            r = rng.random()
            if r < 0.1:
                ln = ln[: rng.randrange(len(ln) + 1)]
            elif r < 0.2:
                i = rng.randrange(len(ln) + 1)
                ln = ln[:i] + rng.choice(_DAMAGE) + ln[i:]
            elif r < 0.25:
                other = rng.choice(_SAMPLE_LINES)
                ln = ln[: rng.randrange(len(ln) + 1)] + other[rng.randrange(len(other) + 1) :]
            out.append((ln, rng.choice((0, 0, 0, 3)), rng.random() < 0.03))
    return out


@settings(max_examples=60, deadline=None)
@given(lines=damaged_logs(), zone=st.sampled_from([UTC, PARIS, NEW_YORK]), cut=st.sampled_from([1 << 20, 50]))
def test_damaged_mixtures_of_real_lines_give_the_same_events_through_the_fast_path(
    lines: list[tuple[bytes, int, bool]], zone: Any, cut: int
) -> None:
    assert_same(lines, tz=zone, max_line_bytes=cut)


def test_an_offset_timestamp_beyond_year_9999_in_utc_is_flagged_invalid_not_raised() -> None:
    # 9999-12-31T23:59:59-01:00 is 10000-01-01 in UTC: datetime cannot hold it (OverflowError)
    assert TimestampResolver(UTC).iso("9999-12-31T23:59:59.999-01:00") is None
    assert TimestampResolver(UTC).iso("9999-12-31T23:59:59-01:00") is None
    events = run(
        LogParser,
        whole(b"1:M 25 Nov 2026 18:57:04.076 * DB saved on disk\n1:M 9999-12-31T23:59:59.999-01:00 * DB saved on disk"),
        tz=UTC,
    )
    last = [e for e in events if not e.startswith("pending")][-1]
    assert '"timestamp_invalid":"9999-12-31T23:59:59.999-01:00"' in last
    assert '"timestamp":"2026-11-25T18:57:04.076000Z"' in last  # the previous line's time, as for 31 Feb


def test_a_crash_report_longer_than_a_block_may_be_is_split_the_same_way_through_the_fast_path() -> None:
    # the raw lines of a crash report join it inside LogParser.feed (no Assembler.push); past
    # MAX_BLOCK_LINES lines the report is completed, flagged split, as push does it; CRLF lines too
    from parsers.multiline import MAX_BLOCK_LINES

    body = [b"used_memory:%d\r" % i if i % 3 else b"frame %d" % i for i in range(MAX_BLOCK_LINES + 10)]
    data = b"\n".join(
        [
            b"7:M 25 Nov 2026 18:57:04.076 * Ready to accept connections tcp",
            b"",
            b"=== REDIS BUG REPORT START: Cut & paste starting from here ===",
            *body,
            b"=== REDIS BUG REPORT END. Make sure to include from START to END. ===",
            b"7:M 25 Nov 2026 18:57:05.000 * DB saved on disk",
        ]
    )
    lines = whole(data)
    assert_same(lines, tz=UTC)
    events = [e for e in run(LogParser, lines, tz=UTC) if not e.startswith("pending")]
    assert any('"split":true' in e for e in events)
