"""LogParser, the API the file follower calls: completion, pending offsets, multi-line blocks,
crash reports, bad input. Real lines from sample-logs/ wherever they exist."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from parsers.events import make_event
from parsers.logfile import LogParser, parse_lines

from conftest import SAMPLE_LOGS


def _sample(name: str) -> bytes:
    p = SAMPLE_LOGS / name
    if not p.exists():
        pytest.fail(f"{p} is missing: sample-logs/ is part of the repository")
    return p.read_bytes()


def _lines(data: bytes) -> list[tuple[bytes, int]]:
    out, pos = [], 0
    for ln in data.split(b"\n")[:-1] if data.endswith(b"\n") else data.split(b"\n"):
        out.append((ln, pos))
        pos += len(ln) + 1
    return out


ALL_SAMPLES = sorted(SAMPLE_LOGS.glob("*/*.log"))


@pytest.mark.parametrize("path", ALL_SAMPLES, ids=[str(p.relative_to(SAMPLE_LOGS)) for p in ALL_SAMPLES])
def test_every_line_of_every_sample_file_is_in_exactly_one_event(path):
    data = path.read_bytes()
    evs = parse_lines(data, tz=UTC)
    n_lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    assert sum(e["lines"] for e in evs) == n_lines
    # offsets strictly increase over events that cover lines, and each starts where the previous ended
    covering = [e for e in evs if e["lines"] > 0]
    starts = [off for _, off in _lines(data)]
    pos = 0
    for e in covering:
        assert e["offset"] == starts[pos]
        pos += e["lines"]
    assert [e["offset"] for e in evs] == sorted(e["offset"] for e in evs)


def test_an_event_is_returned_when_the_next_line_shows_it_is_complete():
    p = LogParser(tz=UTC)
    a = b"26412:M 25 Nov 2026 17:36:54.151 # User requested shutdown..."
    b = b"26412:M 25 Nov 2026 17:36:54.455 # Redis is now ready to exit, bye bye..."
    assert p.feed(a, 0) == []
    assert p.pending_offset == 0 and p.pending_since_lines == 1
    out = p.feed(b, len(a) + 1)
    assert [e["event"] for e in out] == ["shutdown_requested"]
    assert p.pending_offset == len(a) + 1
    assert [e["event"] for e in p.flush()] == ["ready_to_exit"]
    assert p.pending_offset is None and p.pending_since_lines == 0
    assert p.flush() == []


def test_events_have_exactly_the_keys_of_make_event_in_the_same_order():
    ev = parse_lines(b"1:M 25 Nov 2026 17:36:54.151 * Server initialized\n", tz=UTC)[0]
    ref = make_event(timestamp="x", source="redis", category="x", event="x", offset=0, lines=1)
    assert list(ev) == list(ref)


def test_a_raw_line_after_a_plain_line_is_an_event_of_its_own_not_part_of_that_line():
    data = (
        b"1:M 25 Nov 2026 17:36:54.151 * DB saved on disk\nfirst detail\n\nsecond detail\n"
        b"1:M 25 Nov 2026 17:36:55.000 * Server initialized\n"
    )
    evs = parse_lines(data, tz=UTC)
    assert [(e["event"], e["message"], e["lines"]) for e in evs] == [
        ("db_saved", "DB saved on disk", 1),
        ("unrecognized", "first detail", 2),  # the blank line after it is counted into it
        ("unrecognized", "second detail", 1),
        ("server_initialized", "Server initialized", 1),
    ]
    for e in evs[1:3]:
        assert e["fields"]["raw"] is True and e["category"] == "other"
        assert e["timestamp"] == evs[0]["timestamp"] and e["fields"]["timestamp_from"] == "previous_line"
    assert evs[2]["offset"] == data.index(b"second detail")


def test_trailing_blank_lines_count_but_do_not_change_the_message():
    data = b"1:M 25 Nov 2026 17:36:54.151 * Server initialized\n\n\n1:M 25 Nov 2026 17:36:55.000 * Ready\n"
    evs = parse_lines(data, tz=UTC)
    assert evs[0]["message"] == "Server initialized" and evs[0]["lines"] == 3


def test_raw_lines_at_the_start_are_one_unrecognized_event_each_the_last_with_the_next_line_s_time():
    data = b"garbage one\ngarbage two\n1:M 25 Nov 2026 17:36:55.000 * Server initialized\n"
    ref = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
    evs = parse_lines(data, tz=UTC, reference_time=ref)
    assert [(e["event"], e["message"], e["lines"]) for e in evs] == [
        ("unrecognized", "garbage one", 1),
        ("unrecognized", "garbage two", 1),
        ("server_initialized", "Server initialized", 1),
    ]
    assert all(e["category"] == "other" and e["fields"]["raw"] is True for e in evs[:2])
    # nothing before the first line has a time: the file's reference time (its mtime, for the follower)
    assert evs[0]["timestamp"] == "2026-11-25T17:00:00.000000Z"
    assert evs[0]["fields"]["timestamp_from"] == "reference_time"
    assert evs[1]["timestamp"] == evs[2]["timestamp"]
    assert evs[1]["fields"]["timestamp_from"] == "next_line"


def test_unknown_prefixed_line_is_unrecognized_and_kept_whole():
    evs = parse_lines(b"1:M 25 Nov 2026 17:36:55.000 * Something no version of Redis ever said\n", tz=UTC)
    assert (
        evs[0]["event"] == "unrecognized" and evs[0]["message"] == "Something no version of Redis ever said"
    )
    assert evs[0]["level"] == "notice" and evs[0]["role"] == "master" and evs[0]["pid"] == 1


def test_real_segfault_report_is_one_crash_event_with_signal_stack_and_full_text():
    data = _sample("redis-7.0/crash-segfault.log")
    evs = parse_lines(data, tz=UTC)
    crashes = [e for e in evs if e["category"] == "crash"]
    assert len(crashes) == 1
    c = crashes[0]
    f = c["fields"]
    assert c["event"] == "crash_report" and c["level"] == "warning" and c["role"] == "master"
    assert f["signal"] == 11 and f["signal_name"] == "SIGSEGV" and f["complete"] is True
    assert "incomplete" not in f
    assert f["crashed_by"].startswith("Redis 7.0.15 crashed by signal: 11")
    assert c["message"] == f["crashed_by"]
    assert "debugCommand" in f["stack_trace"]
    assert "=== REDIS BUG REPORT START" in f["report"] and "=== REDIS BUG REPORT END" in f["report"]
    # the report keeps every line it covers (blank ones included)
    assert f["report"].count("\n") + 1 == c["lines"]
    first = data.index(b"=== REDIS BUG REPORT START")
    assert data[c["offset"] : first].strip() == b""  # the event starts at the blank lines before the banner


def test_real_valkey_logfmt_segfault_report_is_one_crash_event():
    evs = parse_lines(_sample("valkey-9/crash-segfault-logfmt.log"), tz=UTC)
    crashes = [e for e in evs if e["category"] == "crash"]
    assert len(crashes) == 1
    f = crashes[0]["fields"]
    assert f["signal"] == 11 and f["server"] == "Valkey" and f["version"] == "9.1.2"
    assert "=== VALKEY BUG REPORT START" in f["report"]
    assert not f["crashed_by"].endswith('"')


@pytest.mark.parametrize(
    "name", ["redis-7.0/crash-assert.log", "redis-6.2/crash-assert.log", "valkey-9/crash-assert.log"]
)
def test_real_assertion_report_names_the_failed_assertion(name):
    crashes = [e for e in parse_lines(_sample(name), tz=UTC) if e["category"] == "crash"]
    assert len(crashes) == 1
    f = crashes[0]["fields"]
    assert f["kind"] == "assertion"
    assert "'1 == 2' is not true" in f["assertion"]
    assert crashes[0]["message"].startswith("==> ")


def test_pending_offset_holds_at_an_open_crash_report_until_it_is_complete():
    data = _sample("redis-7.0/crash-segfault.log")
    start = data.index(b"\n\n\n=== REDIS BUG REPORT START") + 1  # the first blank line before the banner
    banner = data.index(b"=== REDIS BUG REPORT START")
    p = LogParser(tz=UTC)
    for line, off in _lines(data):
        p.feed(line, off)
        if off >= banner:
            assert p.pending_offset == start
    crash = p.flush()
    assert len(crash) == 1 and crash[0]["offset"] == start


def test_an_unterminated_crash_report_is_flushed_as_incomplete():
    data = _sample("redis-7.0/crash-segfault.log")
    cut = data.index(b"------ INFO OUTPUT")
    evs = parse_lines(data[:cut], tz=UTC)
    crash = evs[-1]
    assert crash["event"] == "crash_report"
    assert crash["fields"]["incomplete"] is True and crash["fields"]["complete"] is False
    assert crash["fields"]["signal"] == 11


def test_a_new_process_start_closes_a_crash_report_that_never_ended():
    data = _sample("redis-7.0/crash-segfault.log")
    cut = data.index(b"------ INFO OUTPUT")
    restart = b"99999:C 25 Nov 2026 19:00:00.000 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo\n"
    evs = parse_lines(data[:cut] + restart, tz=UTC)
    assert evs[-2]["event"] == "crash_report" and evs[-2]["fields"]["incomplete"] is True
    assert evs[-1]["event"] == "server_starting" and evs[-1]["pid"] == 99999


def test_logo_is_one_startup_event_with_version_port_and_pid():
    evs = parse_lines(_sample("valkey-9/mixed-formats.log"), tz=UTC)
    logos = [e for e in evs if e["event"] == "logo"]
    assert len(logos) == 1
    f = logos[0]["fields"]
    assert f["server"] == "Valkey" and f["version"] == "9.1.2" and f["mode"] == "standalone"
    assert isinstance(f["port"], int) and logos[0]["pid"] == f["server_pid"]
    assert logos[0]["lines"] == 20  # 19 lines of drawing + the blank line after it


def test_watchdog_report_is_one_event_with_its_stack_trace():
    evs = parse_lines(_sample("redis-7.0/misc.log"), tz=UTC)
    wd = [e for e in evs if e["event"] == "watchdog_timer_expired"]
    assert len(wd) == 1
    assert "--- WATCHDOG TIMER EXPIRED ---" in wd[0]["message"]
    assert "STACK TRACE" in wd[0]["fields"]["stack_trace"]
    assert wd[0]["message"].rstrip().endswith("--------")  # the closing signal-handler line joins it


def test_crlf_line_endings_are_stripped():
    evs = parse_lines(b"1:M 25 Nov 2026 17:36:55.000 * Server initialized\r\n", tz=UTC)
    assert evs[0]["message"] == "Server initialized" and evs[0]["event"] == "server_initialized"


def test_invalid_utf8_is_replaced_and_flagged():
    evs = parse_lines(b"1:M 25 Nov 2026 17:36:55.000 * Accepted \xff\xfe:1\n", tz=UTC)
    assert evs[0]["fields"]["invalid_utf8"] is True
    assert "\ufffd" in evs[0]["message"]


def test_nul_bytes_are_kept():
    evs = parse_lines(b"1:M 25 Nov 2026 17:36:55.000 * odd\x00message\n", tz=UTC)
    assert evs[0]["message"] == "odd\x00message"


def test_over_long_line_is_cut_and_the_cut_is_counted():
    line = b"1:M 25 Nov 2026 17:36:55.000 * " + b"x" * 1000
    evs = parse_lines(line + b"\n", tz=UTC, max_line_bytes=100)
    assert len(evs[0]["message"].encode()) + len(b"1:M 25 Nov 2026 17:36:55.000 * ") == 100
    assert evs[0]["fields"]["truncated_bytes"] == len(line) - 100


def test_cutting_inside_a_multibyte_character_is_not_invalid_utf8():
    line = ("1:M 25 Nov 2026 17:36:55.000 * " + "é" * 100).encode()
    evs = parse_lines(line + b"\n", tz=UTC, max_line_bytes=64)
    assert "invalid_utf8" not in evs[0]["fields"]
    assert evs[0]["fields"]["truncated_bytes"] + len(b"1:M 25 Nov 2026 17:36:55.000 * ") + len(
        evs[0]["message"].encode()
    ) == len(line)


def test_bytes_cut_by_the_reader_and_partial_lines_are_recorded():
    p = LogParser(tz=UTC)
    evs = p.feed(b"1:M 25 Nov 2026 17:36:55.000 * Server initialized", 0, cut_bytes=4096)
    evs += p.feed(b"1:M 25 Nov 2026 17:36:56.000 * Ready to acc", 4200, partial=True)
    evs += p.flush()
    assert evs[0]["fields"]["truncated_bytes"] == 4096
    assert evs[1]["fields"]["partial"] is True


def test_auto_kind_makes_sentinel_lines_and_their_signal_handler_lines_sentinel_events():
    data = (
        b"24566:X 25 Nov 2026 18:56:59.957 * Running mode=sentinel, port=50431.\n"
        b"24566:signal-handler (1795633061) Received SIGTERM scheduling shutdown...\n"
        b"24566:X 25 Nov 2026 18:57:41.797 # User requested shutdown...\n"
    )
    evs = parse_lines(data, tz=UTC)
    assert [e["source"] for e in evs] == ["sentinel"] * 3
    assert evs[1]["role"] is None and evs[1]["level"] == "warning"
    assert [e["source"] for e in parse_lines(data, tz=UTC, kind="redis")] == ["redis"] * 3


def test_valkey_logfmt_sentinel_role_and_info_level():
    line = (
        b'pid=23456 role=sentinel timestamp="1729787792738" level=info message="+role-change slave 10.0.0.6:6379 '
        b'10.0.0.6 6379 @ mymaster 10.0.0.5 6379 new reported role is master"\n'
    )
    e = parse_lines(line, tz=UTC)[0]
    assert (e["source"], e["role"], e["level"], e["event"]) == (
        "sentinel",
        "sentinel",
        "verbose",
        "sentinel_role_change",
    )
    assert e["fields"]["reported_role"] == "master" and e["timestamp"] == "2024-10-24T16:36:32.738000Z"


def test_redis_2x_sentinel_event_without_role_is_recognised():
    data = b"[4012] 24 Oct 10:15:01.123 # +switch-master mymaster 10.0.0.5 6379 10.0.0.6 6379\n"
    evs = parse_lines(data, tz=UTC, year=2014)
    assert evs[0]["source"] == "sentinel" and evs[0]["event"] == "sentinel_switch_master"
    assert evs[1]["event"] == "failover_completed"


def test_an_impossible_date_keeps_the_line_and_says_so():
    data = b"1:M 25 Nov 2026 17:36:55.000 * Server initialized\n1:M 31 Feb 2026 17:36:56.000 * Ready\n"
    evs = parse_lines(data, tz=UTC)
    assert evs[1]["fields"]["timestamp_invalid"] == "31 Feb 2026 17:36:56"
    assert evs[1]["timestamp"] == evs[0]["timestamp"]


def test_empty_input_gives_no_event():
    assert parse_lines(b"", tz=UTC) == []


def test_blank_lines_only_are_accounted_for():
    evs = parse_lines(b"\n\n\n", tz=UTC)
    assert [(e["event"], e["lines"], e["offset"]) for e in evs] == [("blank_lines", 3, 0)]


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError):
        LogParser(tz=UTC, kind="mysql")


# A Redis 3.0 crash report, shaped by the format strings of src/debug.c @ 3.0.7 (no 3.0 binary here to
# record one): the START banner logged as a prefixed line with an empty message, prefixed section headers
# ("--- STACK TRACE"), the 4-space indent, and "Failed assertion: <no assertion failed>" on a plain SIGSEGV.
REDIS30_CRASH = b"""\
4012:M 24 Oct 10:15:01.100 * The server is now ready to accept connections on port 6379
4012:M 24 Oct 10:15:09.123 #\x20

=== REDIS BUG REPORT START: Cut & paste starting from here ===
4012:M 24 Oct 10:15:09.123 #     Redis 3.0.7 crashed by signal: 11
4012:M 24 Oct 10:15:09.123 #     SIGSEGV caused by address: 0xffffffffffffffff
4012:M 24 Oct 10:15:09.123 #     Failed assertion: <no assertion failed> (<no file>:0)
4012:M 24 Oct 10:15:09.123 # --- STACK TRACE
redis-server *:6379(logStackTrace+0x3e)[0x45a4fe]
redis-server *:6379(debugCommand+0x1c4)[0x45b4a4]
4012:M 24 Oct 10:15:09.124 # --- INFO OUTPUT
# Server
redis_version:3.0.7
4012:M 24 Oct 10:15:09.125 #\x20
=== REDIS BUG REPORT END. Make sure to include from START to END. ===

       Please report the crash by opening an issue on github:

           http://github.com/antirez/redis/issues

4012:M 24 Oct 10:15:20.000 * The server is now ready to accept connections on port 6379
"""


def test_redis_3_0_crash_report_is_one_event_from_its_empty_banner_line():
    evs = parse_lines(REDIS30_CRASH, tz=UTC, year=2015)
    assert [e["event"] for e in evs] == [
        "ready_to_accept_connections",
        "crash_report",
        "ready_to_accept_connections",
    ]
    c = evs[1]
    assert c["offset"] == REDIS30_CRASH.index(b"4012:M 24 Oct 10:15:09.123 # \n")
    assert c["lines"] == 19
    f = c["fields"]
    assert f["kind"] == "signal" and f["signal"] == 11 and f["version"] == "3.0.7" and f["complete"] is True
    assert "assertion" not in f
    assert f["accessing_address"] == "0xffffffffffffffff"
    assert f["stack_trace"].splitlines() == [
        "redis-server *:6379(logStackTrace+0x3e)[0x45a4fe]",
        "redis-server *:6379(debugCommand+0x1c4)[0x45b4a4]",
    ]
    assert c["message"] == "Redis 3.0.7 crashed by signal: 11"
    assert c["timestamp"] == "2015-10-24T10:15:09.123000Z"
