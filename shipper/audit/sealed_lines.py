"""What one line of an audit trail holds: a sealed event, its chain hash, and the copy record.

Every other part of the checker works on these records, so the rules for "is this a sealed
event" (docs/audit.md: ``stream``, ``seq`` from 1, a 64-hex ``prev_hash``) and "what does its
successor record as ``prev_hash``" live here, once.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from parsers.events import dumps, parse_timestamp

#: ``prev_hash`` of seq 1 (same value as ``shipper.pipeline.spool.GENESIS``)
GENESIS = "0" * 64
_HEX64 = re.compile(r"[0-9a-f]{64}")


def chain_hash(raw: bytes) -> str:
    """SHA-256 (hex) of an event's canonical bytes: what its successor records as ``prev_hash``."""
    return hashlib.sha256(raw).hexdigest()


def timestamp_ns(ts: Any) -> int | None:
    """Nanoseconds since the epoch of an event ``timestamp``, or None when it is not one."""
    if not isinstance(ts, str):
        return None
    try:
        dt = parse_timestamp(ts)
    except ValueError:
        return None
    if dt.tzinfo is None:
        return None
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


@dataclass
class Copy:
    """One distinct byte string seen for a (stream, seq)."""

    raw: bytes
    hash: str
    prev_hash: str
    ts_ns: int | None
    canonical: bool
    where: list[str] = field(default_factory=list)


@dataclass
class Known:
    """An event known to exist outside the trail (still in the spool, or dead-lettered)."""

    copy: Copy
    origin: str  # "pending" | "deadletter"


def short_hash(h: str) -> str:
    """The first 12 hex digits: enough to tell hashes apart in a sentence."""
    return h[:12]


def parse_sealed(raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """The sealed event in a line, or (None, why not)."""
    try:
        ev = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        return None, f"not JSON ({e})"
    if not isinstance(ev, dict):
        return None, "not a JSON object"
    stream, seq, prev = ev.get("stream"), ev.get("seq"), ev.get("prev_hash")
    if not isinstance(stream, str) or not stream:
        return None, "not a sealed event: no 'stream'"
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        return None, "not a sealed event: 'seq' is not a positive integer"
    if not isinstance(prev, str) or not _HEX64.fullmatch(prev):
        return None, "not a sealed event: 'prev_hash' is not 64 hex digits"
    return ev, ""


def is_canonical(ev: dict[str, Any], raw: bytes) -> bool:
    """The line is byte for byte the canonical encoding of the event it decodes to."""
    try:
        return dumps(ev) == raw
    except TypeError:
        return False


def excerpt(raw: bytes, n: int = 200) -> str:
    """The start of a line that holds no event, for the report."""
    return raw[:n].decode("utf-8", "replace")
