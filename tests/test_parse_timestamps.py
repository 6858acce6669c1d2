"""Timestamps: local time to UTC, Valkey's own offsets and epochs, the year of year-less lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from parsers.logfile import parse_lines
from parsers.timestamps import TimestampResolver

PARIS = ZoneInfo("Europe/Paris")


def test_local_time_is_converted_with_the_zone_in_force_that_day():
    r = TimestampResolver(PARIS)
    assert r.legacy("15 Jan 2026 12:00:00", "123") == "2026-01-15T11:00:00.123000Z"  # CET, +01:00
    assert r.legacy("15 Jul 2026 12:00:00", "123") == "2026-07-15T10:00:00.123000Z"  # CEST, +02:00


def test_valkey_iso8601_carries_its_own_offset_whatever_the_configured_zone():
    r = TimestampResolver(PARIS)
    assert r.iso("2024-10-24T18:36:32.738+02:00") == "2024-10-24T16:36:32.738000Z"
    assert r.iso("2026-11-25T18:45:41.559+00:00") == "2026-11-25T18:45:41.559000Z"
    assert r.iso("2024-10-24T18:36:32.738+05:30") == "2024-10-24T13:06:32.738000Z"


def test_epoch_milliseconds_and_signal_handler_seconds():
    r = TimestampResolver(PARIS)
    assert r.epoch_millis("1729787792738") == "2024-10-24T16:36:32.738000Z"
    assert r.epoch_seconds("1795628214") == "2026-11-25T17:36:54.000000Z"


def test_an_impossible_date_gives_no_timestamp_instead_of_an_exception():
    r = TimestampResolver(UTC)
    assert r.legacy("31 Feb 2026 12:00:00", "000") is None
    assert r.legacy("29 Feb 2025 12:00:00", "000") is None
    assert r.legacy("29 Feb 2024 12:00:00", "000") == "2024-02-29T12:00:00.000000Z"


def test_year_less_line_takes_the_forced_year():
    r = TimestampResolver(UTC, year=2019)
    assert r.legacy("24 Oct 10:15:01", "123") == "2019-10-24T10:15:01.123000Z"


def test_year_less_december_line_in_a_file_modified_in_january_belongs_to_the_previous_year():
    r = TimestampResolver(UTC, reference_time=datetime(2026, 1, 3, 8, 0, tzinfo=UTC))
    assert r.legacy("30 Dec 23:59:58", "000") == "2025-12-30T23:59:58.000000Z"
    # ... and the file goes on into January: the year follows
    assert r.legacy("01 Jan 00:00:01", "000") == "2026-01-01T00:00:01.000000Z"
    assert r.legacy("03 Jan 07:59:00", "000") == "2026-01-03T07:59:00.000000Z"


def test_year_less_line_before_the_reference_time_keeps_the_reference_year():
    r = TimestampResolver(UTC, reference_time=datetime(2026, 11, 25, 18, 0, tzinfo=UTC))
    assert r.legacy("25 Nov 17:00:00", "000") == "2026-11-25T17:00:00.000000Z"


def test_a_small_step_back_in_the_month_is_clock_skew_not_a_new_year():
    r = TimestampResolver(UTC, year=2026)
    assert r.legacy("01 Mar 00:00:01", "000") == "2026-03-01T00:00:01.000000Z"
    assert r.legacy("28 Feb 23:59:59", "000") == "2026-02-28T23:59:59.000000Z"


def test_year_less_file_spanning_new_year_with_forced_year():
    data = b"1:M 31 Dec 23:59:59.000 * Server initialized\n1:M 01 Jan 00:00:00.000 * Server initialized\n"
    evs = parse_lines(data, tz=UTC, year=2030)
    assert [e["timestamp"] for e in evs] == ["2030-12-31T23:59:59.000000Z", "2031-01-01T00:00:00.000000Z"]


def test_year_less_line_without_any_hint_is_flagged_year_unknown():
    evs = parse_lines(b"1:M 24 Oct 10:15:01.123 * Server initialized\n", tz=UTC)
    assert evs[0]["fields"].get("year_unknown") is True


def test_year_less_line_after_a_signal_handler_line_takes_its_year():
    data = (
        b"1:signal-handler (1729764901) Received SIGTERM scheduling shutdown...\n"
        b"1:M 24 Oct 10:15:02.000 # User requested shutdown...\n"
    )
    evs = parse_lines(data, tz=UTC)
    assert evs[1]["timestamp"] == "2024-10-24T10:15:02.000000Z"
    assert "year_unknown" not in evs[1]["fields"]


def test_fixed_offset_zone():
    r = TimestampResolver(timezone(timedelta(hours=5, minutes=30)))
    assert r.legacy("24 Oct 2024 10:15:01", "001") == "2024-10-24T04:45:01.001000Z"
