"""INFO replies -> the server's identity (run_id, role, version, master) and
``role_changed``/``instance_restarted`` events."""

from __future__ import annotations

from typing import Any

from parsers.events import Event, event_id, make_event

from .common import as_int, as_str, epoch_ms


def parse_info(text: Any) -> dict[str, str]:
    """INFO text (``key:value`` lines, ``# Section`` headers) -> {key: value}."""
    out: dict[str, str] = {}
    for line in as_str(text).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        k, sep, v = line.partition(":")
        if sep:
            out[k] = v
    return out


def identity_from_info(info: dict[str, str]) -> dict[str, Any]:
    """The fields that identify an instance: run_id, role, server, version, port, master."""
    role_raw = info.get("role", "")
    role = {"master": "master", "slave": "replica", "replica": "replica", "primary": "master"}.get(role_raw)
    mode = info.get("redis_mode") or info.get("server_mode")
    if mode == "sentinel":
        role = "sentinel"
    server = info.get("server_name") or "redis"
    version = info.get("valkey_version") if server == "valkey" else info.get("redis_version")
    ident: dict[str, Any] = {
        "run_id": info.get("run_id", ""),
        "role": role,
        "server": server,
        "version": version or info.get("redis_version"),
        "tcp_port": as_int(info.get("tcp_port")),
        "process_id": as_int(info.get("process_id")),
        "mode": mode,
        "master_host": info.get("master_host") or None,
        "master_port": as_int(info.get("master_port")),
        "uptime_s": as_int(info.get("uptime_in_seconds")),
    }
    return ident


def version_tuple(version: str | None) -> tuple[int, ...]:
    out: list[int] = []
    for part in (version or "").split("."):
        n = as_int(part)
        if n is None:
            break
        out.append(n)
    return tuple(out)


def role_changed_event(
    old: dict[str, Any],
    new: dict[str, Any],
    *,
    origin: str,
    observed_ms: int,
) -> Event:
    """``role_changed`` (category failover): a replica promoted, a master demoted."""
    fields: dict[str, Any] = {"old_role": old.get("role"), "new_role": new.get("role")}
    # master_* only when there is one (the schema types master_port as a number or string)
    for key, src in (("master_host", new), ("master_port", new)):
        if src.get(key) is not None:
            fields[key] = src[key]
    for key in ("master_host", "master_port"):
        if old.get(key) is not None:
            fields["old_" + key] = old[key]
    fields["run_id"] = new.get("run_id")
    ev = make_event(
        timestamp=epoch_ms(observed_ms),
        source="agent",
        category="failover",
        event="role_changed",
        level="warning",
        role=new.get("role"),
        message=f"role changed from {old.get('role')} to {new.get('role')}"
        + (f" (master {new.get('master_host')}:{new.get('master_port')})" if new.get("master_host") else ""),
        fields=fields,
    )
    ev["origin"] = origin
    ev["id"] = event_id(origin, f"role:{observed_ms}:{old.get('role')}->{new.get('role')}")
    return ev


def restarted_event(old_run_id: str, new: dict[str, Any], *, origin: str, observed_ms: int) -> Event:
    """The instance came back with a new run_id: slowlog/latency/ACL ids restarted."""
    ev = make_event(
        timestamp=epoch_ms(observed_ms),
        source="agent",
        category="startup",
        event="instance_restarted",
        level="notice",
        role=new.get("role"),
        message=f"{new.get('server')} {new.get('version')} restarted: run_id {old_run_id[:8]} -> "
        f"{str(new.get('run_id'))[:8]}; entries logged after the last poll of the old run are gone",
        fields={
            "old_run_id": old_run_id,
            "run_id": new.get("run_id"),
            "version": new.get("version"),
            "server": new.get("server"),
            "uptime_s": new.get("uptime_s"),
        },
    )
    ev["origin"] = origin
    ev["id"] = event_id(origin, f"restart:{old_run_id}->{new.get('run_id')}")
    return ev
