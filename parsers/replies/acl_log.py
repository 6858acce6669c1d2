"""ACL LOG replies -> ``acl_denied`` events for new denials only (by entry-id, or by fingerprint
on servers without one)."""

from __future__ import annotations

from typing import Any

from parsers.events import Event, event_id, make_event

from .common import as_float, as_int, as_str, epoch_ms, pairs


def _client_info_field(info: str, key: str) -> str | None:
    for part in info.split(" "):
        if part.startswith(key + "="):
            return part[len(key) + 1 :]
    return None


def parse_acl_log(reply: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """ACL LOG reply -> entries (newest first, as Redis returns them) and unparseable items."""
    out: list[dict[str, Any]] = []
    bad: list[Any] = []
    if not isinstance(reply, list | tuple):
        return out, [reply]
    for item in reply:
        d = pairs(item)
        if d is None or "reason" not in d:
            bad.append(item)
            continue
        info = as_str(d.get("client-info", ""))
        e: dict[str, Any] = {
            "count": as_int(d.get("count")) or 1,
            "reason": as_str(d.get("reason")),
            "context": as_str(d.get("context")),
            "object": as_str(d.get("object")),
            "username": as_str(d.get("username")),
            "age_seconds": as_float(d.get("age-seconds")),
            "client_addr": _client_info_field(info, "addr"),
            "client_name": _client_info_field(info, "name"),
            "client_user": _client_info_field(info, "user"),
        }
        if "entry-id" in d:
            e["entry_id"] = as_int(d.get("entry-id"))
            e["created_ms"] = as_int(d.get("timestamp-created"))
            e["updated_ms"] = as_int(d.get("timestamp-last-updated"))
        out.append(e)
    return out, bad


def _acl_fp(e: dict[str, Any]) -> str:
    return "\x1f".join((e["reason"], e["context"], e["object"], e["username"]))


def acl_log_events(
    entries: list[dict[str, Any]],
    cursor: dict[str, Any] | None,
    *,
    origin: str,
    run_id: str,
    now_ms: int,
    role: str | None = None,
) -> tuple[list[Event], dict[str, Any]]:
    """New ACL LOG entries (and new occurrences grouped into an existing entry) -> events.

    Cursor, 7.2+ (``entry-id`` present): ``{"mode": "id", "last_entry_id", "counts": {id: count}}``;
    an entry with a higher id is new, a known id whose count rose reports the extra occurrences.

    Fallback, 6.x/7.0: ``{"mode": "fp", "seen": [[fingerprint, count, updated_ms], ...]}`` where
    ``updated_ms`` is ``now_ms - age``. An entry matches a remembered one with the same
    (reason, context, object, username) that was last updated no later than it (1.5 s of slack
    for the rounding of age); the count difference is what is new. Redis groups equal entries
    within 60 s, so this is exact except when the ring drops entries between two polls.
    """
    entries_old_first = list(reversed(entries))
    events: list[Event] = []
    has_ids = bool(entries) and all(e.get("entry_id") is not None for e in entries)
    if has_ids or (not entries and (cursor or {}).get("mode") == "id"):
        prev = cursor if cursor and cursor.get("mode") == "id" else {"last_entry_id": -1, "counts": {}}
        last_id = prev.get("last_entry_id", -1)
        counts: dict[str, int] = {str(k): int(v) for k, v in (prev.get("counts") or {}).items()}
        new_counts: dict[str, int] = {}
        for e in entries_old_first:
            eid = e["entry_id"]
            known = counts.get(str(eid))
            if eid > last_id:
                delta = e["count"]
            elif known is not None and e["count"] > known:
                delta = e["count"] - known
            else:
                delta = 0
            new_counts[str(eid)] = e["count"]
            if delta > 0:
                ts_ms = e.get("updated_ms") or e.get("created_ms") or now_ms
                events.append(
                    _acl_event(
                        e,
                        delta,
                        origin=origin,
                        run_id=run_id,
                        ts_ms=ts_ms,
                        role=role,
                        position=f"{eid}:{e['count']}",
                    )
                )
            last_id = max(last_id, eid)
        return events, {"mode": "id", "last_entry_id": last_id, "counts": new_counts}

    seen: list[list[Any]] = [list(s) for s in ((cursor or {}).get("seen") or []) if len(s) == 3]
    used = [False] * len(seen)
    new_seen: list[list[Any]] = []
    for e in entries_old_first:
        fp = _acl_fp(e)
        age_ms = int((e["age_seconds"] or 0.0) * 1000)
        updated = now_ms - age_ms
        match = None
        for i, (sfp, _scount, supd) in enumerate(seen):
            if not used[i] and sfp == fp and supd <= updated + 1500:
                match = i  # keep scanning: the newest remembered one that fits
        if match is not None:
            used[match] = True
            delta = e["count"] - int(seen[match][1])
        else:
            delta = e["count"]
        new_seen.append([fp, e["count"], updated])
        if delta > 0:
            events.append(
                _acl_event(
                    e,
                    delta,
                    origin=origin,
                    run_id=run_id,
                    ts_ms=updated,
                    role=role,
                    position=f"{fp}:{e['count']}:{updated // 1000}",
                )
            )
    return events, {"mode": "fp", "seen": new_seen}


def _acl_event(
    e: dict[str, Any], delta: int, *, origin: str, run_id: str, ts_ms: int, role: str | None, position: str
) -> Event:
    fields = {
        "reason": e["reason"],
        "context": e["context"],
        "object": e["object"],
        "username": e["username"],
        "count": e["count"],
        "new_count": delta,
        "client_addr": e.get("client_addr"),
        "client_name": e.get("client_name"),
        "client_user": e.get("client_user"),
        "run_id": run_id,
    }
    if e.get("entry_id") is not None:
        fields["entry_id"] = e["entry_id"]
    what = {
        "auth": f"authentication failed for user {e['username']!r}",
        "command": f"user {e['username']!r} denied command {e['object']!r}",
        "key": f"user {e['username']!r} denied key {e['object']!r}",
        "channel": f"user {e['username']!r} denied channel {e['object']!r}",
    }.get(e["reason"], f"ACL denial ({e['reason']}) for user {e['username']!r}")
    ev = make_event(
        timestamp=epoch_ms(ts_ms),
        source="acl",
        category="security",
        event="acl_denied",
        level="warning",
        role=role,
        message=f"{what} from {e.get('client_addr') or '?'}" + (f" ({delta} times)" if delta > 1 else ""),
        fields=fields,
    )
    ev["origin"] = origin
    ev["id"] = event_id(origin, position)
    return ev
