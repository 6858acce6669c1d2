"""LATENCY LATEST replies -> one ``latency_spike`` event per event name whose latest time moved."""

from __future__ import annotations

from typing import Any

from parsers.events import Event, event_id, make_event

from .common import as_int, as_str, epoch_micro


def parse_latency_latest(reply: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """``[[event, unix_time, latest_ms, max_ms(, sum_ms, count)], ...]`` -> dicts (sorted by name)."""
    out: list[dict[str, Any]] = []
    bad: list[Any] = []
    if not isinstance(reply, list | tuple):
        return out, [reply]
    for item in reply:
        if not isinstance(item, list | tuple) or len(item) < 4:
            bad.append(item)
            continue
        name = as_str(item[0])
        ts, latest, mx = as_int(item[1]), as_int(item[2]), as_int(item[3])
        if not name or ts is None or latest is None or mx is None:
            bad.append(item)
            continue
        d: dict[str, Any] = {"event": name, "time": ts, "latest_ms": latest, "max_ms": mx}
        if len(item) >= 6:  # Valkey 8.1+: sum and number of spikes
            d["sum_ms"] = as_int(item[4])
            d["count"] = as_int(item[5])
        out.append(d)
    out.sort(key=lambda d: (d["time"], d["event"]))
    return out, bad


def latency_events(
    spikes: list[dict[str, Any]],
    last: dict[str, int],
    *,
    origin: str,
    run_id: str,
    role: str | None = None,
) -> tuple[list[Event], dict[str, int]]:
    """One ``latency_spike`` event per event name whose latest timestamp moved since ``last``.

    Returns the events and the new cursor ``{event_name: last_timestamp}``.
    """
    events: list[Event] = []
    cursor = dict(last)
    for sp in spikes:
        name, ts = sp["event"], sp["time"]
        if last.get(name) is not None and ts <= last[name]:
            continue
        fields = {k: v for k, v in sp.items() if k not in ("event", "time")}
        fields = {"event_name": name, **fields, "run_id": run_id}
        ev = make_event(
            timestamp=epoch_micro(ts, 0),
            source="latency",
            category="latency",
            event="latency_spike",
            level="warning",
            role=role,
            message=f"latency spike in {name}: {sp['latest_ms']} ms (max {sp['max_ms']} ms)",
            fields=fields,
        )
        ev["origin"] = origin
        ev["id"] = event_id(origin, f"{name}:{ts}")
        events.append(ev)
        cursor[name] = ts
    return events, cursor
