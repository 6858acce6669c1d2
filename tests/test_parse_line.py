"""The header grammar: every prefix any Redis / Valkey version writes, and raw lines."""

from __future__ import annotations

import pytest

from parsers.line import (
    FMT_LEGACY,
    FMT_LEGACY2,
    FMT_LOGFMT,
    FMT_SIGNAL,
    TS_EPOCH_MS,
    TS_EPOCH_S,
    TS_ISO,
    TS_LEGACY,
    parse_header,
)


@pytest.mark.parametrize(
    "line, fmt, pid, role, ts_kind, ts, ms, level, message",
    [
        # Redis 7.0.15, real (redis-log-formats.md §1.2)
        (
            "26406:C 25 Nov 2026 17:35:43.067 # oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo",
            FMT_LEGACY,
            26406,
            "C",
            TS_LEGACY,
            "25 Nov 2026 17:35:43",
            "067",
            "#",
            "oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo",
        ),
        # 3.0 - 4.0: no year
        (
            "4012:M 24 Oct 10:15:01.123 * DB loaded from disk: 0.012 seconds",
            FMT_LEGACY,
            4012,
            "M",
            TS_LEGACY,
            "24 Oct 10:15:01",
            "123",
            "*",
            "DB loaded from disk: 0.012 seconds",
        ),
        # 2.6 - 2.8
        (
            "[4012] 24 Oct 10:15:01.123 * DB loaded from disk: 0.012 seconds",
            FMT_LEGACY2,
            4012,
            None,
            TS_LEGACY,
            "24 Oct 10:15:01",
            "123",
            "*",
            "DB loaded from disk: 0.012 seconds",
        ),
        # 2.0 - 2.4: no milliseconds
        (
            "[4012] 24 Oct 10:15:01 - Accepted 127.0.0.1:50312",
            FMT_LEGACY2,
            4012,
            None,
            TS_LEGACY,
            "24 Oct 10:15:01",
            "",
            "-",
            "Accepted 127.0.0.1:50312",
        ),
        # Valkey iso8601 and milliseconds, legacy layout (real, sample-logs/valkey-9)
        (
            "8663:M 2026-11-25T18:45:48.378+00:00 * Configuration loaded",
            FMT_LEGACY,
            8663,
            "M",
            TS_ISO,
            "2026-11-25T18:45:48.378+00:00",
            "",
            "*",
            "Configuration loaded",
        ),
        (
            "8596:M 1795632347023 * Server initialized",
            FMT_LEGACY,
            8596,
            "M",
            TS_EPOCH_MS,
            "1795632347023",
            "",
            "*",
            "Server initialized",
        ),
        # signal handler, 3.0+ and 2.6-2.8
        (
            "26412:signal-handler (1795628214) Received SIGTERM scheduling shutdown...",
            FMT_SIGNAL,
            26412,
            None,
            TS_EPOCH_S,
            "1795628214",
            "",
            None,
            "Received SIGTERM scheduling shutdown...",
        ),
        (
            "[4012 | signal handler] (1729764901) Received SIGTERM, scheduling shutdown...",
            FMT_SIGNAL,
            4012,
            None,
            TS_EPOCH_S,
            "1729764901",
            "",
            None,
            "Received SIGTERM, scheduling shutdown...",
        ),
        # a prefixed line with an empty message (the register dump), trailing space kept by Redis
        (
            "10955:M 25 Nov 2026 18:48:04.189 # ",
            FMT_LEGACY,
            10955,
            "M",
            TS_LEGACY,
            "25 Nov 2026 18:48:04",
            "189",
            "#",
            "",
        ),
        # ... and with the trailing space stripped by some tool on the way
        (
            "10955:M 25 Nov 2026 18:48:04.189 #",
            FMT_LEGACY,
            10955,
            "M",
            TS_LEGACY,
            "25 Nov 2026 18:48:04",
            "189",
            "#",
            "",
        ),
    ],
)
def test_every_legacy_prefix_is_taken_apart(line, fmt, pid, role, ts_kind, ts, ms, level, message):
    h = parse_header(line)
    assert h is not None
    assert (h.fmt, h.pid, h.role_char, h.ts_kind, h.ts, h.ms, h.level_char, h.message) == (
        fmt,
        pid,
        role,
        ts_kind,
        ts,
        ms,
        level,
        message,
    )


@pytest.mark.parametrize(
    "line, ts_kind, ts, ms",
    [
        (
            'pid=8541 role=primary timestamp="2026-11-25T18:45:41.559+00:00" level=notice message="Server initialized"',
            TS_ISO,
            "2026-11-25T18:45:41.559+00:00",
            "",
        ),
        (
            'pid=8656 role=primary timestamp="1795632347707" level=notice message="Server initialized"',
            TS_EPOCH_MS,
            "1795632347707",
            "",
        ),
        (
            'pid=1 role=primary timestamp="24 Oct 2024 18:36:32.738" level=notice message="Server initialized"',
            TS_LEGACY,
            "24 Oct 2024 18:36:32",
            "738",
        ),
    ],
)
def test_logfmt_lines_with_each_timestamp_format(line, ts_kind, ts, ms):
    h = parse_header(line)
    assert h is not None
    assert (h.fmt, h.role_char, h.level_name, h.ts_kind, h.ts, h.ms, h.message) == (
        FMT_LOGFMT,
        "primary",
        "notice",
        ts_kind,
        ts,
        ms,
        "Server initialized",
    )


def test_logfmt_message_cut_before_its_closing_quote_is_still_a_logfmt_line():
    h = parse_header(
        'pid=7 role=sentinel timestamp="1729787792738" level=info message="+sdown master m 1.2.3.4 6379'
    )
    assert h is not None and h.message == "+sdown master m 1.2.3.4 6379" and h.level_name == "info"


@pytest.mark.parametrize(
    "line",
    [
        "",
        "                _._                                                  ",
        "=== REDIS BUG REPORT START: Cut & paste starting from here ===",
        "/usr/bin/redis-server 127.0.0.1:55569(debugCommand+0x1144)[0x55f1846eb634]",
        "RAX:00007f59e6de4000 RBX:00007f59e58a4200",
        "redis_version:7.0.15",
        "12345",
        "12345:Q 25 Nov 2026 18:48:04.189 # unknown role letter",
        "pid=abc role=primary",
        "[12] not a timestamp",
    ],
)
def test_raw_lines_have_no_header(line):
    assert parse_header(line) is None
