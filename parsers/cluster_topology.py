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


def _pairs(v: Any) -> dict[str, Any]:
    """A RESP2 flat ``[key, value, ...]`` list (or an already decoded map) as a dict."""
    if isinstance(v, dict):
        return {_s(k): x for k, x in v.items()}
    if isinstance(v, list):
        return {_s(v[i]): v[i + 1] for i in range(0, len(v) - 1, 2)}
    return {}


def _int(v: Any) -> int | None:
    if isinstance(v, int) and not isinstance(v, bool):
        return v
    text = _s(v) if isinstance(v, bytes | str) else ""
    return int(text) if text.isascii() and text.isdigit() else None


def parse_cluster_shards(reply: Any) -> dict[str, dict[str, Any]] | None:
    """``CLUSTER SHARDS`` as ``{node id: node}``.

    A node is failed when its ``health`` is ``fail`` (what Redis 7.0 and Valkey send for a node
    flagged FAIL; the documentation says ``failed``: both are accepted)."""
    if not isinstance(reply, list):
        return None
    nodes: dict[str, dict[str, Any]] = {}
    for shard in reply:
        if not isinstance(shard, list | dict):
            return None
        sd = _pairs(shard)
        slots = sd.get("slots")
        bounds = [b for b in (_int(x) for x in slots) if b is not None] if isinstance(slots, list) else []
        members = []
        raw_nodes = sd.get("nodes")
        for n in raw_nodes if isinstance(raw_nodes, list) else []:
            nd = _pairs(n)
            node_id = _s(nd.get("id", ""))
            if not node_id:
                continue
            host = _s(nd.get("ip") or nd.get("endpoint") or "")
            port = nd.get("port") or nd.get("tls-port")
            members.append((node_id, {
                "addr": f"{host}:{_s(port)}" if port is not None else host,
                "role": "master" if _s(nd.get("role", "")) == "master" else "replica",
                "failed": _s(nd.get("health", "")) in ("fail", "failed"),
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
        if "handshake" in flags or "noaddr" in flags:
            continue  # a node being met: its id is a placeholder until the handshake ends
        slots: list[list[int]] = []
        for item in parts[8:]:
            if item.startswith("["):
                continue  # a slot being migrated / imported: not owned yet
            a, _, b = item.partition("-")
            lo, hi = _int(a), _int(b or a)
            if lo is not None and hi is not None:
                slots.append([lo, hi])
        nodes[node_id] = {
            "addr": addr,
            "role": "master" if "master" in flags else "replica",
            "master": None if master == "-" else master,
            "failed": "fail" in flags,
            "slots": slots,
        }
    return nodes


def topology(info: dict[str, str], nodes: dict[str, dict[str, Any]]) -> Topology:
    return {"state": info.get("cluster_state", "?"), "epoch": _int(info.get("cluster_current_epoch", "")),
            "nodes": nodes}


def _slot_map(t: Topology | None) -> dict[str, list[list[int]]]:
    return {nid: n.get("slots") or [] for nid, n in ((t or {}).get("nodes") or {}).items() if n.get("slots")}


def settle(reported: Topology, previous_read: Topology | None, new: Topology) -> Topology:
    """``new``, but with the slot owners of ``reported`` unless the owners read now are those of the
    read before (``previous_read``).

    A reshard moves slots one at a time over seconds: diffing every read would announce one
    reshard as several partial moves. Holding slot changes back until two reads in a row agree
    makes it one ``cluster_slots_moved`` per source/target pair. Everything else (state, health,
    roles, membership) is reported at once.
    """
    if previous_read is not None and _slot_map(previous_read) == _slot_map(new):
        return new
    owned = _slot_map(reported)
    nodes = {nid: {**n, "slots": owned.get(nid, [])} for nid, n in (new.get("nodes") or {}).items()}
    return {**new, "nodes": nodes}


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
        ev = make_event(timestamp=ts, source="agent", category="cluster", event=event, level=level,
                        role=role, message=message, fields=f)
        ev["origin"] = origin
        ev["id"] = event_id(origin, f"{event}:{fields.get('node', '')}:{new.get('epoch')}:{observed_ms}")
        events.append(ev)

    if old.get("state") != new.get("state"):
        add("cluster_state_changed", "warning" if new.get("state") != "ok" else "notice",
            f"cluster state {old.get('state')} -> {new.get('state')}", previous=old.get("state"),
            cluster_state=new.get("state"))
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
        if (on.get(owner) or {}).get("master") == prev or (nn.get(prev) or {}).get("failed") \
                or (nn.get(prev) or {}).get("master") == owner:
            continue  # a replica took over its (failed or demoted) master's slots: that is the role change
        moved.setdefault((prev, owner), []).append(slot)
    for (src, dst), slots in sorted(moved.items()):
        ranges = _compress(slots)
        add("cluster_slots_moved", "notice", f"{len(slots)} slots moved from {src} to {dst}", from_node=src,
            to_node=dst, slots=ranges, count=len(slots))
    return events
