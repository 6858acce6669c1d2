"""Turn the timestamp text of a log line into the event's RFC 3339 UTC timestamp.

Four kinds (see parsers/line.py): legacy local time with or without a year, Valkey iso8601
with its own offset, Valkey epoch milliseconds, signal-handler epoch seconds.

Why a class with caches: converting local time to UTC through ``zoneinfo`` and ``strftime``
costs microseconds, and the parser's budget is ~3 µs per line. Consecutive lines share the
same second almost always, so the UTC text of each distinct second is computed once and the
milliseconds are appended as text.

Why the year logic lives here: Redis before 5.0 writes no year (redis/redis#11355). The year
comes from ``year`` (forced), or from ``reference_time`` (the file's mtime: the first line's
year is the one that does not put it in the future), and then follows the file: a month
going backwards by half a year or more (Dec -> Jan) starts a new year.

Pure: no clock is read; ``reference_time`` is given by the caller.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

MONTHS = {
    "Jan": 1,
    "Feb": 2,
    "Mar": 3,
    "Apr": 4,
    "May": 5,
    "Jun": 6,
    "Jul": 7,
    "Aug": 8,
    "Sep": 9,
    "Oct": 10,
    "Nov": 11,
    "Dec": 12,
}

#: fallback year when a year-less line comes with no forced year, no reference time and no
#: earlier line that carried a year; such events are flagged ``fields.year_unknown``.
UNKNOWN_YEAR = 1970
#: a year-less timestamp may be this far after the reference time before we decide it
#: belongs to the previous year (absorbs a wrong --timezone or clock skew, never a year).
_FUTURE_SLACK = timedelta(days=2)
_CACHE_MAX = 65536


class TimestampResolver:
    """Stateful converter, one per log file (the year of year-less lines follows the file)."""

    def __init__(self, tz: tzinfo, reference_time: datetime | None = None, year: int | None = None):
        self.tz = tz
        self.forced_year = year
        self.reference_local: datetime | None = None
        if reference_time is not None:
            ref = reference_time if reference_time.tzinfo is not None else reference_time.replace(tzinfo=UTC)
            self.reference_local = ref.astimezone(tz).replace(tzinfo=None)
        #: "dd Mon yyyy hh:mm:ss" -> "YYYY-MM-DDTHH:MM:SS." (UTC); LogParser reads it directly
        self.cache: dict[str, str] = {}
        self._epoch_cache: dict[str, str] = {}  # epoch seconds text -> "YYYY-MM-DDTHH:MM:SS."
        self._iso_cache: dict[str, str] = {}  # "YYYY-MM-DDTHH:MM:SS" + offset -> UTC base
        self._year: int | None = None  # current year of year-less lines
        self._month = 0  # month of the last year-less line
        self.last_seen_year: int | None = None  # year of the last line that carried one
        #: set when the last year-less conversion had to fall back to UNKNOWN_YEAR
        self.year_unknown = False

    # -- legacy local time ---------------------------------------------------------------
    def legacy(self, ts: str, ms: str) -> str | None:
        """``ts`` = ``dd Mon yyyy hh:mm:ss`` or ``dd Mon hh:mm:ss``; ``ms`` = 3 digits or ``""``.
        Returns ``None`` for an impossible date (31 Feb): the caller keeps the previous time."""
        if len(ts) == 20:  # with year: the common case, straight to the cache
            base = self.cache.get(ts)
            if base is None:
                base = self._legacy_base(ts)
                if base is None:
                    return None
            return base + (ms or "000") + "000Z"
        if len(ts) != 15:
            return None
        key = self._with_inferred_year(ts)
        base = self.cache.get(key)
        if base is None:
            base = self._legacy_base(key)
            if base is None:
                return None
        return base + (ms or "000") + "000Z"

    def _with_inferred_year(self, ts: str) -> str:
        """``dd Mon hh:mm:ss`` -> ``dd Mon yyyy hh:mm:ss`` with the year of this file position."""
        month = MONTHS.get(ts[3:6], 0)
        year = self._year
        self.year_unknown = False
        if year is None:
            if self.forced_year is not None:
                year = self.forced_year
            elif self.reference_local is not None:
                year = self.reference_local.year
                try:
                    cand = datetime(year, month, int(ts[0:2]), int(ts[7:9]), int(ts[10:12]), int(ts[13:15]))
                    if cand > self.reference_local + _FUTURE_SLACK:
                        year -= 1
                except ValueError:
                    pass
            elif self.last_seen_year is not None:
                year = self.last_seen_year
            else:
                year = UNKNOWN_YEAR
        elif month and month < self._month and self._month - month >= 6:
            year += 1  # Dec -> Jan: a new year
        if year == UNKNOWN_YEAR and self.forced_year is None and self.reference_local is None:
            self.year_unknown = True
        if month:
            self._month = month
        self._year = year
        return f"{ts[:6]} {year} {ts[7:]}"

    def _legacy_base(self, key: str) -> str | None:
        try:
            month = MONTHS[key[3:6]]
            local = datetime(
                int(key[7:11]),
                month,
                int(key[0:2]),
                int(key[12:14]),
                int(key[15:17]),
                int(key[18:20]),
                tzinfo=self.tz,
            )
            base = local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        except (KeyError, ValueError, OverflowError):
            return None
        self.last_seen_year = int(key[7:11])
        if len(self.cache) >= _CACHE_MAX:
            self.cache.clear()
        self.cache[key] = base
        return base

    # -- epoch ---------------------------------------------------------------------------
    def epoch_seconds(self, secs: str, frac: str = "000") -> str | None:
        base = self._epoch_cache.get(secs)
        if base is None:
            try:
                dt = datetime.fromtimestamp(int(secs), UTC)
            except (ValueError, OverflowError, OSError):
                return None
            base = dt.strftime("%Y-%m-%dT%H:%M:%S.")
            self.last_seen_year = dt.year
            if len(self._epoch_cache) >= _CACHE_MAX:
                self._epoch_cache.clear()
            self._epoch_cache[secs] = base
        return base + frac + "000Z"

    def epoch_millis(self, ms: str) -> str | None:
        if len(ms) < 4:
            return self.epoch_seconds("0", ms.rjust(3, "0"))
        return self.epoch_seconds(ms[:-3], ms[-3:])

    # -- iso8601 -------------------------------------------------------------------------
    def iso(self, ts: str) -> str | None:
        """Valkey writes ``%Y-%m-%dT%H:%M:%S.mmm±HH:MM`` (never ``Z``); other shapes go through
        ``datetime.fromisoformat``."""
        if len(ts) == 29 and ts[19] == "." and ts[26] == ":":
            if ts[23:] == "+00:00":
                return ts[:19] + "." + ts[20:23] + "000Z"
            key = ts[:19] + ts[23:]
            base = self._iso_cache.get(key)
            if base is None:
                try:
                    dt = datetime.fromisoformat(key)
                    base = dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
                except (ValueError, OverflowError):  # 9999-12-31T23:59:59-01:00 is past year 9999 in UTC
                    return None
                if len(self._iso_cache) >= _CACHE_MAX:
                    self._iso_cache.clear()
                self._iso_cache[key] = base
            self.last_seen_year = int(ts[0:4])
            return base + ts[20:23] + "000Z"
        try:
            dt = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=self.tz)
        try:
            res = dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        except (ValueError, OverflowError):
            return None
        self.last_seen_year = dt.year
        return res
