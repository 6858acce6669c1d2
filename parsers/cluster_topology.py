"""Redis Cluster topology from ``CLUSTER INFO`` + ``CLUSTER SHARDS`` (7.0+) or ``CLUSTER NODES``
(before 7.0), and the events two topologies differ by.

A topology is a small JSON-able dict, what the poller persists between reads::

    {"state": "ok", "epoch": 7, "nodes": {"<id>": {"addr": "10.0.0.1:6379", "role": "master",
     "master": None, "failed": False, "slots": [[0, 5460]]}, ...}}

:func:`diff` turns the change from one topology to the next into events:
``cluster_state_changed`` (ok/fail), ``cluster_node_added`` / ``cluster_node_removed``,
``cluster_node_failed`` / ``cluster_node_recovered``, ``cluster_role_changed`` (with the epoch),
``cluster_slots_moved`` (the slot ranges and the two nodes: one event per source/target pair, not
per slot; the slots a promoted replica takes over from the master it replaces are its role change,
not a move).

Pure and total: replies of any shape give a topology or None, never an exception.
"""

from __future__ import annotations

from typing import Any

from parsers.events import Event, event_id, format_epoch, make_event

Topology = dict[str, Any]


def _s(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v if isinstance(v, str) else str(v)


def parse_cluster_info(reply: Any) -> dict[str, str] | None:
    """``CLUSTER INFO``'s ``key:value`` lines as a dict."""
    if not isinstance(reply, bytes | str):
        return None
    out: dict[str, str] = {}
    for line in _s(reply).splitlines():
        k, sep, v = line.strip().partition(":")
        if sep:
            out[k] = v
    return out if "cluster_state" in out else None


def _ranges(bounds: list[int]) -> list[list[int]]:
    return [[bounds[i], bounds[i + 1]] for i in range(0, len(bounds) - 1, 2)]


def parse_cluster_shards(reply: Any) -> dict[str, dict[str, Any]] | None:
    """``CLUSTER SHARDS`` (RESP2: flat key/value lists) as ``{node id: node}``."""
    if not isinstance(reply, list):
        return None
    nodes: dict[str, dict[str, Any]] = {}
    for shard in reply:
        if not isinstance(shard, list):
            return None
        sd = {_s(shard[i]): shard[i + 1] for i in range(0, len(shard) - 1, 2)}
        slots = sd.get("slots")
        bounds = [int(x) for x in slots if isinstance(x, int) or (isinstance(x, bytes | str) and _s(x).isdigit())] \
            if isinstance(slots, list) else []
        members = []
        for n in sd.get("nodes") or []:
            if not isinstance(n, list):
                continue
            nd = {_s(n[i]): n[i + 1] for i in range(0, len(n) - 1, 2)}
            node_id = _s(nd.get("id", ""))
            if not node_id:
                continue
            host = _s(nd.get("ip") or nd.get("endpoint") or "")
            port = nd.get("port") or nd.get("tls-port")
            members.append((node_id, {
                "addr": f"{host}:{_s(port)}" if port is not None else host,
                "role": "master" if _s(nd.get("role", "")) == "master" else "replica",
                "failed": _s(nd.get("health", "")) == "failed",
            }))
        master = next((i for i, m in members if m["role"] == "master"), None)
        for node_id, m in members:
            m["master"] = None if m["role"] == "master" else master
            m["slots"] = _ranges(bounds) if m["role"] == "master" else []
            nodes[node_id] = m
    return nodes


def parse_cluster_nodes(reply: Any) -> dict[str, dict[str, Any]] | None:
    """``CLUSTER NODES`` (every version) as ``{node id: node}``."""
    if not isinstance(reply, bytes | str):
        return None
    nodes: dict[str, dict[str, Any]] = {}
    for line in _s(reply).splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        node_id, addr, flags, master = parts[0], parts[1].split("@")[0], parts[2].split(","), parts[3]
        slots: list[list[int]] = []
        for item in parts[8:]:
            if item.startswith("["):
                continue  # a slot being migrated / imported: not owned yet
            a, _, b = item.partition("-")
            if a.isdigit() and (not b or b.isdigit()):
                slots.append([int(a), int(b or a)])
        nodes[node_id] = {
            "addr": addr,
            "role": "master" if "master" in flags else "replica",
            "master": None if master == "-" else master,
            "failed": "fail" in flags,
            "slots": slots,
        }
    return nodes


def topology(info: dict[str, str], nodes: dict[str, dict[str, Any]]) -> Topology:
    epoch = info.get("cluster_current_epoch", "")
    return {"state": info.get("cluster_state", "?"), "epoch": int(epoch) if epoch.isdigit() else None,
            "nodes": nodes}


def _owners(t: Topology) -> dict[int, str]:
    out: dict[int, str] = {}
    for node_id, n in t["nodes"].items():
        for a, b in n.get("slots") or []:
            for slot in range(a, b + 1):
                out[slot] = node_id
    return out


def _compress(slots: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for s in sorted(slots):
        if out and out[-1][1] == s - 1:
            out[-1][1] = s
        else:
            out.append([s, s])
    return out


def diff(old: Topology, new: Topology, *, origin: str, node_id: str | None, observed_ms: int,
         role: str | None = None) -> list[Event]:
    """The events that take topology ``old`` to ``new``, as seen by the node ``node_id``."""
    ts = format_epoch(observed_ms / 1000)
    events: list[Event] = []

    def add(event: str, level: str, message: str, **fields: Any) -> None:
        f = {"cluster_node_id": node_id, "epoch": new.get("epoch"), **fields}
        ev = make_event(timestamp=ts, source="cluster", category="cluster", event=event, level=level,
                        role=role, message=message, fields=f)
        ev["origin"] = origin
        ev["id"] = event_id(origin, f"{event}:{fields.get('node', '')}:{new.get('epoch')}:{observed_ms}")
        events.append(ev)

    if old.get("state") != new.get("state"):
        add("cluster_state_changed", "warning" if new.get("state") != "ok" else "notice",
            f"cluster state {old.get('state')} -> {new.get('state')}", previous=old.get("state"),
            state=new.get("state"))
    on, nn = old.get("nodes") or {}, new.get("nodes") or {}
    for nid in sorted(nn.keys() - on.keys()):
        add("cluster_node_added", "notice", f"node {nid} ({nn[nid]['addr']}) joined the cluster as {nn[nid]['role']}",
            node=nid, addr=nn[nid]["addr"], node_role=nn[nid]["role"])
    for nid in sorted(on.keys() - nn.keys()):
        add("cluster_node_removed", "notice", f"node {nid} ({on[nid]['addr']}) left the cluster",
            node=nid, addr=on[nid]["addr"])
    for nid in sorted(on.keys() & nn.keys()):
        a, b = on[nid], nn[nid]
        if not a.get("failed") and b.get("failed"):
            add("cluster_node_failed", "warning", f"node {nid} ({b['addr']}) is marked FAIL", node=nid,
                addr=b["addr"], node_role=a.get("role"))
        elif a.get("failed") and not b.get("failed"):
            add("cluster_node_recovered", "notice", f"node {nid} ({b['addr']}) is no longer marked FAIL",
                node=nid, addr=b["addr"])
        if a.get("role") != b.get("role"):
            add("cluster_role_changed", "warning", f"node {nid} ({b['addr']}) {a.get('role')} -> {b.get('role')}",
                node=nid, addr=b["addr"], previous=a.get("role"), node_role=b.get("role"), master=b.get("master"))
    before, after = _owners(old), _owners(new)
    moved: dict[tuple[str, str], list[int]] = {}
    for slot, owner in after.items():
        prev = before.get(slot)
        if prev is None or prev == owner:
            continue
        if (on.get(owner) or {}).get("master") == prev:
            continue  # a promoted replica took over its master's slots: that is the role change
        moved.setdefault((prev, owner), []).append(slot)
    for (src, dst), slots in sorted(moved.items()):
        ranges = _compress(slots)
        add("cluster_slots_moved", "notice", f"{len(slots)} slots moved from {src} to {dst}", from_node=src,
            to_node=dst, slots=ranges, count=len(slots))
    return events
