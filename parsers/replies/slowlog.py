"""SLOWLOG GET / COMMANDLOG GET replies -> entries, ``slow_command``/``large_*`` and ``slowlog_entries_lost`` events.

An entry's timestamp is its second plus ``id % 1_000_000`` microseconds: the second alone would
collapse a storm into one instant, and a sub-second part from a clock would differ on replay.
"""

from __future__ import annotations

import re
from typing import Any

from parsers.events import Event, event_id, make_event

from .common import as_int, as_str, epoch_micro
from .redaction import CONTAINER_COMMANDS, TRUNCATED_ARGS, redact_args

#: the client name the poller sets on its connection; its own commands are filtered out
SELF_CLIENT_NAME = "redis-shipper"


def parse_log_entry(entry: Any) -> dict[str, Any] | None:
    """One SLOWLOG/COMMANDLOG entry (4 or 6 elements, or a redis-py dict) -> a plain dict, or
    ``None`` when it is not an entry."""
    if isinstance(entry, dict):  # redis-py's parsed shape, accepted for convenience
        eid, ts = as_int(entry.get("id")), as_int(entry.get("start_time"))
        value = as_int(entry.get("duration"))
        cmd = entry.get("command", b"")
        argv = [as_str(a) for a in (cmd.split(b" ") if isinstance(cmd, bytes) else as_str(cmd).split(" "))]
        addr, name = entry.get("client_address"), entry.get("client_name")
    elif isinstance(entry, list | tuple) and len(entry) >= 4:
        eid, ts, value = as_int(entry[0]), as_int(entry[1]), as_int(entry[2])
        raw_argv = entry[3]
        if not isinstance(raw_argv, list | tuple):
            return None
        argv = [as_str(a) for a in raw_argv]
        addr = entry[4] if len(entry) > 4 else None
        name = entry[5] if len(entry) > 5 else None
    else:
        return None
    if eid is None or ts is None or value is None or eid < 0:
        return None
    return {
        "id": eid,
        "time": ts,
        "value": value,
        "argv": argv,
        "client_addr": as_str(addr) if addr is not None else None,
        "client_name": as_str(name) if name is not None else None,
    }


def parse_log_reply(reply: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """A SLOWLOG GET / COMMANDLOG GET reply -> (entries oldest first, unparseable items)."""
    entries: list[dict[str, Any]] = []
    bad: list[Any] = []
    if not isinstance(reply, list | tuple):
        return entries, [reply]
    for item in reply:
        e = parse_log_entry(item)
        if e is None:
            bad.append(item)
        else:
            entries.append(e)
    entries.sort(key=lambda e: e["id"])
    return entries, bad


def is_self_entry(entry: dict[str, Any], client_name: str = SELF_CLIENT_NAME) -> bool:
    """An entry the poller caused (its own SLOWLOG GET, INFO, ...): not shipped."""
    return entry.get("client_name") == client_name


def slowlog_timestamp(entry: dict[str, Any]) -> str:
    """The entry's second plus ``id % 1_000_000`` µs: unique within a second, same on replay."""
    return epoch_micro(entry["time"], entry["id"] % 1_000_000)


_LOG_KINDS = {
    # kind -> (event name, value field, unit for the message)
    "slow": ("slow_command", "duration_us", "us"),
    "large-request": ("large_request", "request_bytes", "bytes"),
    "large-reply": ("large_reply", "reply_bytes", "bytes"),
}


def slowlog_event(
    entry: dict[str, Any],
    *,
    origin: str,
    run_id: str,
    redact: str = "keys",
    role: str | None = None,
    kind: str = "slow",
) -> Event:
    """An event for one parsed SLOWLOG (``kind="slow"``) or COMMANDLOG entry."""
    name, value_field, unit = _LOG_KINDS.get(kind, _LOG_KINDS["slow"])
    argv = entry["argv"]
    command = argv[0].lower() if argv else ""
    args = redact_args(argv, redact)
    fields: dict[str, Any] = {
        "id": entry["id"],
        value_field: entry["value"],
        "command": command,
    }
    if args is not None:
        fields["args"] = args
    fields["argc"] = _argc(argv)
    fields["client_addr"] = entry.get("client_addr")
    fields["client_name"] = entry.get("client_name")
    fields["run_id"] = run_id
    if kind != "slow":
        fields["log"] = kind
    shown = command.upper() or "?"
    if command in CONTAINER_COMMANDS and len(argv) > 1:
        shown += " " + argv[1].upper()
    ev = make_event(
        timestamp=slowlog_timestamp(entry),
        source="slowlog",
        category="slowlog",
        event=name,
        level="notice",
        role=role,
        message=f"{shown} {entry['value']} {unit}",
        fields=fields,
    )
    ev["origin"] = origin
    ev["id"] = event_id(origin, str(entry["id"]))
    return ev


def _argc(argv: list[str]) -> int:
    """Number of arguments the client sent, undoing the ``... (N more arguments)`` cut."""
    if argv and TRUNCATED_ARGS.match(argv[-1]):
        m = re.search(r"\((\d+) more", argv[-1])
        if m:
            return len(argv) - 1 + int(m.group(1))
    return len(argv)


def slowlog_lost_event(
    *,
    origin: str,
    run_id: str,
    first_lost_id: int,
    last_lost_id: int,
    timestamp: str,
    role: str | None = None,
    kind: str = "slow",
    reason: str = "rotated",
) -> Event:
    """Entries that left the ring (or lay beyond the bounded read) before the poller saw them."""
    lost = last_lost_id - first_lost_id + 1
    what = "slowlog" if kind == "slow" else f"commandlog {kind}"
    fields: dict[str, Any] = {
        "lost": lost,
        "first_lost_id": first_lost_id,
        "last_lost_id": last_lost_id,
        "run_id": run_id,
        "reason": reason,
    }
    if kind != "slow":
        fields["log"] = kind
    ev = make_event(
        timestamp=timestamp,
        source="slowlog",
        category="slowlog",
        event="slowlog_entries_lost",
        level="warning",
        role=role,
        message=f"{lost} {what} entries lost (ids {first_lost_id}..{last_lost_id}): "
        + (
            "they left the ring before they could be read"
            if reason == "rotated"
            else "they lie beyond max_entries, the bounded read"
        ),
        fields=fields,
    )
    ev["origin"] = origin
    ev["id"] = event_id(origin, f"lost:{first_lost_id}-{last_lost_id}")
    return ev


def new_log_entries(
    entries: list[dict[str, Any]], last_id: int | None
) -> tuple[list[dict[str, Any]], tuple[int, int] | None]:
    """Entries after the cursor (oldest first) and the lost id range, if the oldest returned
    entry is newer than ``last_id + 1``.

    ``last_id`` is ``None`` on a first start (no cursor ever committed): whatever the ring holds
    is shipped and nothing counts as lost, since it was never ours to ship. For a new run of the
    server (a restart, new run_id) the caller passes ``-1``: ids restart at 0, so entries of the
    new run that already rotated out are reported as lost.
    """
    if last_id is None:
        return list(entries), None
    expected_first = last_id + 1
    new = [e for e in entries if e["id"] >= expected_first]
    if not new:
        return new, None
    oldest = new[0]["id"]
    if oldest > expected_first:
        return new, (expected_first, oldest - 1)
    return new, None
