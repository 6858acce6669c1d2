"""Which lines span events: only the multi-line forms Redis writes (crash reports, the logo, the
help text after a report, stack traces after a signal-handler line) take raw lines after their
first; any other raw line is its own event; every block is capped and a long crash report goes on
in parts. Real lines from sample-logs/."""

from __future__ import annotations

from datetime import UTC

import pytest

from parsers.events import dumps
from parsers.logfile import parse_lines
from parsers.multiline import AFTER_END_MAX_LINES, LOGO_MAX_LINES, MAX_BLOCK_CHARS, MAX_BLOCK_LINES

from conftest import SAMPLE_LOGS

DB_SAVED = b"7:M 25 Nov 2026 18:57:04.076 * DB saved on disk"
#: Loki's default max_line_size, the smallest entry limit of the sinks
LOKI_DEFAULT_LIMIT = 256 * 1024


def _sample(name: str) -> bytes:
    p = SAMPLE_LOGS / name
    if not p.exists():
        pytest.fail(f"{p} is missing: sample-logs/ is part of the repository")
    return p.read_bytes()


def _covered(data: bytes, evs: list) -> None:
    """Every line in exactly one event, events in offset order, each starting where the last ended."""
    n = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    assert sum(e["lines"] for e in evs) == n
    starts, pos = [], 0
    for ln in data.split(b"\n")[:n]:
        starts.append(pos)
        pos += len(ln) + 1
    i = 0
    for e in evs:
        if e["lines"]:
            assert e["offset"] == starts[i]
            i += e["lines"]


def test_a_valid_line_followed_by_3000_garbage_lines_is_1_plus_3000_events():
    garbage = [b"garbage line %d: \x01\x02 not a Redis line at all %s" % (i, b"x" * 200) for i in range(3000)]
    data = b"\n".join([DB_SAVED, *garbage]) + b"\n"
    evs = parse_lines(data, tz=UTC)
    assert len(evs) == 3001
    assert evs[0]["event"] == "db_saved" and evs[0]["message"] == "DB saved on disk" and evs[0]["lines"] == 1
    for line, e in zip(garbage, evs[1:], strict=True):
        assert e["event"] == "unrecognized" and e["fields"]["raw"] is True and e["lines"] == 1
        assert e["message"] == line.decode()
        assert e["timestamp"] == evs[0]["timestamp"] and e["fields"]["timestamp_from"] == "previous_line"
    _covered(data, evs)


def test_the_real_watchdog_trace_still_joins_its_signal_handler_line():
    data = _sample("valkey-9/misc.log")
    evs = parse_lines(data, tz=UTC)
    wd = [e for e in evs if e["event"] == "watchdog_timer_expired"]
    # lines 11-78: the handler line, the trace, the closing "--------" line and the blank line after it
    assert len(wd) == 1 and wd[0]["lines"] == 68
    assert "6/6 expected stacktraces." in wd[0]["message"] and "bio_tls_reload" in wd[0]["fields"]["stack_trace"]
    assert not any(e["fields"].get("raw") for e in evs)
    _covered(data, evs)


@pytest.mark.parametrize(
    "name",
    [
        "redis-6.2/crash-assert.log",
        "redis-6.2/crash-segfault.log",
        "redis-7.0/crash-assert.log",
        "redis-7.0/crash-segfault.log",
        "valkey-9/crash-assert.log",
        "valkey-9/crash-segfault.log",
        "valkey-9/crash-segfault-logfmt.log",
    ],
)
def test_a_real_crash_report_with_its_help_text_is_one_event_within_the_caps(name):
    data = _sample(name)
    evs = parse_lines(data, tz=UTC)
    crashes = [e for e in evs if e["category"] == "crash"]
    assert len(crashes) == 1
    c = crashes[0]
    assert "part" not in c["fields"] and "split" not in c["fields"]
    assert "Please report the crash by opening an issue on github:" in c["fields"]["report"]
    assert c["lines"] * 4 <= MAX_BLOCK_LINES and len(c["fields"]["report"]) * 3 <= MAX_BLOCK_CHARS
    assert not any(e["fields"].get("raw") for e in evs)  # nothing of the report left over
    _covered(data, evs)


def _padded_report(copies: int) -> tuple[bytes, bytes]:
    """The real Valkey segfault log with its INFO dump repeated ``copies`` times, and the report."""
    data = _sample("valkey-9/crash-segfault.log")
    lines = data.split(b"\n")
    start = lines.index(b"------ INFO OUTPUT ------")
    end = lines.index(b"------ CLIENT LIST OUTPUT ------")
    info = lines[start + 1 : end]
    padded = b"\n".join(lines[: start + 1] + info * copies + lines[end:])
    first = padded.index(b"=== VALKEY BUG REPORT START")
    last = padded.index(b"=== VALKEY BUG REPORT END")
    return padded, padded[first : padded.index(b"\n", last)].replace(b"\r\n", b"\n")  # the INFO dump is CRLF


def test_a_crash_report_over_the_cap_goes_on_in_parts_of_the_same_report_none_dropped():
    data, report = _padded_report(20)  # 20 INFO dumps: about 5,600 lines, 180 KB
    evs = parse_lines(data, tz=UTC)
    crashes = [e for e in evs if e["category"] == "crash"]
    assert len(crashes) >= 3
    assert [c["fields"]["part"] for c in crashes] == list(range(1, len(crashes) + 1))
    assert {c["fields"]["report_offset"] for c in crashes} == {crashes[0]["offset"]}
    assert {c["pid"] for c in crashes} == {crashes[0]["pid"]} and crashes[0]["pid"] is not None
    assert {c["timestamp"] for c in crashes} == {crashes[0]["timestamp"]}
    assert all(c["fields"]["split"] is True for c in crashes[:-1]) and "split" not in crashes[-1]["fields"]
    assert crashes[0]["fields"]["signal"] == 11 and crashes[-1]["fields"]["complete"] is True
    for c in crashes:
        assert c["lines"] <= MAX_BLOCK_LINES and len(c["fields"]["report"]) <= MAX_BLOCK_CHARS + 4096
    # the parts, put back together, are the report, every line of it
    joined = "\n".join(c["fields"]["report"] for c in crashes)
    assert report.decode() in joined
    assert not any(e["fields"].get("raw") for e in evs)
    _covered(data, evs)


def test_a_crash_report_of_long_lines_is_cut_by_size_and_every_part_fits_loki():
    data = _sample("redis-7.0/crash-segfault.log")
    start = data.index(b"------ INFO OUTPUT ------\n") + len(b"------ INFO OUTPUT ------\n")
    long_lines = b"".join(
        b"module:name=m%d,ver=1,api=1,filters=0,usedby=[],using=[],options=[%s]\n" % (i, b"o" * 3000)
        for i in range(400)
    )  # 1.2 MB inside the report
    data = data[:start] + long_lines + data[start:]
    evs = parse_lines(data, tz=UTC)
    crashes = [e for e in evs if e["category"] == "crash"]
    assert len(crashes) >= 10 and crashes[-1]["fields"]["complete"] is True
    for c in crashes:
        assert len(dumps(c)) < LOKI_DEFAULT_LIMIT
    _covered(data, evs)


def test_the_logo_is_capped_and_raw_lines_past_it_are_events_of_their_own():
    data = _sample("valkey-9/logfmt-legacy.log")
    lines = data.split(b"\n")
    logo_start = next(i for i, ln in enumerate(lines) if ln.strip() == b".+^+.")
    after = next(i for i in range(logo_start, len(lines)) if lines[i].startswith(b"pid="))
    # raw lines right after the drawing, before the next prefixed line: the logo takes them up to its cap
    extra = [b"  drawing line %d" % i for i in range(100)]
    data = b"\n".join(lines[:after] + extra + lines[after:])
    evs = parse_lines(data, tz=UTC)
    logos = [e for e in evs if e["event"] == "logo"]
    assert len(logos) == 1 and logos[0]["lines"] == LOGO_MAX_LINES and logos[0]["fields"]["split"] is True
    assert logos[0]["fields"]["server"] == "Valkey" and logos[0]["fields"]["port"] == 44239
    raw = [e for e in evs if e["fields"].get("raw")]
    assert sum(e["lines"] for e in raw) == (after - logo_start) + len(extra) - LOGO_MAX_LINES
    assert all("\n" not in e["message"] for e in raw) and raw[-1]["message"] == "  drawing line 99"
    _covered(data, evs)


def test_garbage_after_a_crash_report_s_help_text_is_not_part_of_the_report():
    data = _sample("redis-7.0/crash-segfault.log").rstrip(b"\n")
    data += b"\n" + b"\n".join(b"garbage %d" % i for i in range(100)) + b"\n"
    evs = parse_lines(data, tz=UTC)
    crash = next(e for e in evs if e["category"] == "crash")
    report = crash["fields"]["report"]
    assert "redis-server --check-system" in report
    after_end = report[report.index("BUG REPORT END") :].count("\n")
    assert after_end <= AFTER_END_MAX_LINES
    garbage = [e for e in evs if e["message"].startswith("garbage ")]
    assert len(garbage) >= 100 - AFTER_END_MAX_LINES and all(e["lines"] == 1 for e in garbage)
    assert garbage[-1]["message"] == "garbage 99"
    _covered(data, evs)


def test_raw_lines_after_a_line_with_an_empty_message_are_its_text():
    # serverLog(..., "\n--- ...") writes the header with an empty message, the text on the next lines
    data = b"7:M 25 Nov 2026 18:57:04.076 # \n--- SOMETHING ---\ndetail line\n" + DB_SAVED + b"\n"
    evs = parse_lines(data, tz=UTC)
    assert [e["lines"] for e in evs] == [3, 1]
    assert evs[0]["message"] == "\n--- SOMETHING ---\ndetail line"
