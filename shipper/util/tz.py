"""Time zones: Redis writes local time with no offset, so the agent must know the zone."""

from __future__ import annotations

import os
from datetime import UTC, datetime, tzinfo


def host_timezone() -> tzinfo:
    """The host's zone, DST-aware: ``$TZ``, then /etc/localtime, then UTC.

    ``datetime.now().astimezone().tzinfo`` would be a fixed offset and put every line on the
    other side of a DST change an hour off, hence the zoneinfo file.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    try:
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return UTC


def parse_timezone(name: str) -> tzinfo:
    """``UTC``, an IANA name (``Europe/Paris``) or a fixed offset (``+05:30``)."""
    from datetime import timedelta, timezone
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if name.upper() in ("UTC", "Z"):
        return UTC
    if name[:1] in ("+", "-") and len(name) in (5, 6):
        sign = -1 if name[0] == "-" else 1
        hh, mm = name[1:3], name[-2:]
        if hh.isdigit() and mm.isdigit():
            return timezone(sign * timedelta(hours=int(hh), minutes=int(mm)))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown time zone {name!r}: use an IANA name (Europe/Paris), UTC or +HH:MM") from e


def parse_when(value: str, now: float) -> int:
    """A duration ago (``1h``) or an RFC 3339 time -> Unix nanoseconds (for ``--since``/``--until``)."""
    from ..config.base import parse_duration

    try:
        return int((now - parse_duration(value)) * 1e9)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is neither a duration (1h, 30m) nor an RFC 3339 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 10**9 + dt.microsecond * 1000


def ns_to_rfc3339(ns: int) -> str:
    """Unix nanoseconds -> the event timestamp format (UTC, microseconds, ``Z``)."""
    dt = datetime.fromtimestamp(ns // 10**9, UTC).replace(microsecond=(ns % 10**9) // 1000)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
