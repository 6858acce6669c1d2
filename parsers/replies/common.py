"""The small total conversions every reply parser shares, and the ``unparsed_reply`` event.

Replies arrive as whatever redis-py returns without response callbacks (``bytes``, ``int``,
lists, RESP3 dicts); these helpers turn any of them into ``str``/``int``/``float``/``dict``
without raising, so each parser can stay total.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from parsers.events import Event, event_id, make_event

#: an unparsed reply is kept as its ``repr``, cut to this many characters
MAX_REPR = 2000


def as_str(value: Any) -> str:
    """Bytes/str/int -> str, never raising (invalid UTF-8 becomes ``\\xNN`` escapes)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "backslashreplace")
    if isinstance(value, str):
        # a str could still carry lone surrogates that orjson refuses
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if value is None:
        return ""
    return str(value)


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(as_str(value).strip())
    except (ValueError, TypeError):
        return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(as_str(value).strip())
    except (ValueError, TypeError):
        return None


def epoch_micro(seconds: int, micro: int) -> str:
    """``seconds`` + ``micro`` µs as an RFC 3339 string, exactly (no float rounding)."""
    try:
        dt = datetime.fromtimestamp(seconds, UTC).replace(microsecond=micro % 1_000_000)
    except (OverflowError, OSError, ValueError):
        dt = datetime.fromtimestamp(0, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def epoch_ms(ms: int) -> str:
    return epoch_micro(ms // 1000, (ms % 1000) * 1000)


def short_repr(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= MAX_REPR else r[:MAX_REPR] + f"... ({len(r) - MAX_REPR} more chars)"


def pairs(item: Any) -> dict[str, Any] | None:
    """RESP3 map or RESP2 flat key/value list -> dict with str keys."""
    if isinstance(item, dict):
        return {as_str(k): v for k, v in item.items()}
    if isinstance(item, list | tuple) and len(item) % 2 == 0:
        return {as_str(item[i]): item[i + 1] for i in range(0, len(item), 2)}
    return None


def unparsed_event(
    what: str,
    reply: Any,
    *,
    origin: str,
    position: str,
    timestamp: str,
    source: str = "agent",
    role: str | None = None,
) -> Event:
    """A reply we could not understand: keep it (bounded) instead of dropping it."""
    ev = make_event(
        timestamp=timestamp,
        source=source,
        category="other",
        event="unparsed_reply",
        level="warning",
        role=role,
        message=f"unexpected {what} reply shape",
        fields={"reply_kind": what, "reply": short_repr(reply)},
    )
    ev["origin"] = origin
    ev["id"] = event_id(origin, position)
    return ev
