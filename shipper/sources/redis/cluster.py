"""Redis Cluster topology, read every ``cluster.interval`` and diffed into events.

Whether the server is a cluster node comes from ``INFO cluster`` (``cluster_enabled:1``), read once
per run_id (the mode cannot change without a restart): a Redis not in cluster mode costs that one
INFO and nothing else, and never a warning, even for an ACL user without any cluster permission.
On a cluster node: ``CLUSTER INFO`` for the state and epoch, ``CLUSTER SHARDS`` (7.0+; ``CLUSTER
NODES`` when the server does not know it) for the nodes, their roles, health and slots, and
``CLUSTER MYID`` once per run_id for the node's own id (``cluster_node_id`` of its events). The
pure part (parsing, diffing, holding back a reshard in progress) is :mod:`parsers.cluster_topology`.

The last reported topology is a checkpoint, committed with the events it produced: a restarted
agent diffs against it and does not announce the cluster again. The first read ever is a
baseline, no events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from redis.exceptions import ResponseError

from parsers.cluster_topology import (
    diff,
    parse_cluster_info,
    parse_cluster_nodes,
    parse_cluster_shards,
    settle,
    topology,
)
from parsers.replies import parse_info

from .client import RedisConnection
from .poll import Poller, PollResult, PollSetup, is_unsupported, now_ms, read_or_disable

#: the pause between two polls of a Redis that is not a cluster node (nothing is read then)
NOT_A_CLUSTER_INTERVAL = 300.0

#: the commands the poller runs on a cluster node, and the ACL permission each needs
CLUSTER_COMMANDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("CLUSTER", "INFO"), "+cluster|info"),
    (("CLUSTER", "MYID"), "+cluster|myid"),
    (("CLUSTER", "SHARDS"), "+cluster|shards"),
    (("CLUSTER", "NODES"), "+cluster|nodes"),
)


class ClusterTopologyPoller(Poller):
    """The ``cluster`` poll kind of one Redis (``cluster:`` in the config)."""

    name = "cluster"
    #: only a cluster node is ever asked a CLUSTER command, so a denied one is worth a warning
    warn_when_unsupported = True

    def __init__(self, *, key: str, committed: Any, interval: float):
        self.key = key
        self.interval = interval
        self.topology: dict[str, Any] | None = committed if isinstance(committed, dict) and "nodes" in committed \
            else None
        #: the last read as read (slots not held back), to tell a reshard in progress from a settled one
        self.last_read: dict[str, Any] | None = None
        self.run_id: str | None = None
        #: None until INFO cluster was read for this run_id
        self.cluster_enabled: bool | None = None
        self.node_id: str | None = None
        self._shards = True  # CLUSTER SHARDS until the server says it does not know it

    def on_identity(self, run_id: str) -> None:
        if run_id != self.run_id:
            self.run_id = run_id
            self.cluster_enabled = None
            self.node_id = None

    def on_settings(self, settings: Mapping[str, str | None]) -> None:
        """Nothing to size: the topology reads are bounded by the cluster's size."""
        return None

    def committed(self) -> None:
        """The reported topology is already the poller's state; nothing is counted."""
        return None

    def next_interval(self, result: PollResult | None = None) -> float:
        return NOT_A_CLUSTER_INTERVAL if self.cluster_enabled is False else self.interval

    async def poll(self, conn: RedisConnection, *, role: str | None) -> PollResult:
        if self.cluster_enabled is None:
            self.cluster_enabled = parse_info(await conn.call("INFO", "cluster")).get("cluster_enabled") in (1, "1")
        if not self.cluster_enabled:
            return PollResult(must_persist=False)
        info_reply = await read_or_disable(conn, "CLUSTER", "INFO")
        if self.node_id is None:
            self.node_id = _text(await read_or_disable(conn, "CLUSTER", "MYID"))
        nodes = None
        if self._shards:
            try:
                nodes = parse_cluster_shards(await conn.call("CLUSTER", "SHARDS"))
            except ResponseError as e:
                if not is_unsupported(e):
                    raise
                self._shards = False  # before 7.0, or only +cluster|nodes granted: CLUSTER NODES says it all
        if nodes is None:
            nodes = parse_cluster_nodes(await read_or_disable(conn, "CLUSTER", "NODES"))
        info = parse_cluster_info(info_reply)
        if info is None or nodes is None:
            return PollResult(must_persist=False)  # a reply of a shape we do not know: keep the last topology
        read = topology(info, nodes)
        previous_read, self.last_read = self.last_read, read
        if self.topology is None:
            self.topology = read
            return PollResult(positions={self.key: read})
        old = self.topology
        new = settle(old, previous_read, read)
        if new == old:
            return PollResult(must_persist=False)
        self.topology = new
        events = diff(old, new, origin=f"redis:{conn.address}:cluster", node_id=self.node_id,
                      observed_ms=now_ms(), role=role)
        return PollResult(events=events, positions={self.key: new}, must_persist=bool(events))


async def check_cluster_access(conn: RedisConnection) -> list[tuple[str, str, str | None]]:
    """For ``redis-shipper check --connect``: on a cluster node, whether the user may run the
    poller's CLUSTER commands. Returns ``(status, text, missing permission or None)`` lines; none
    for a Redis not in cluster mode (nothing of it is polled there)."""
    try:
        mode = parse_info(await conn.call("INFO", "cluster")).get("cluster_enabled")
    except ResponseError:
        return []  # INFO itself denied: the identity check already says so
    if mode not in (1, "1"):
        return []
    out: list[tuple[str, str, str | None]] = []
    replies = await conn.pipeline(*(command for command, _perm in CLUSTER_COMMANDS))
    for (command, perm), rep in zip(CLUSTER_COMMANDS, replies, strict=True):
        cmd = " ".join(command)
        text = str(rep)
        if not isinstance(rep, ResponseError):
            out.append(("ok", f"{cmd}: allowed", None))
        elif "noperm" in text.lower() or "no permissions" in text.lower():
            out.append(("warn", f"{cmd}: denied by ACL ({perm} missing): cluster topology events will not "
                        "be shipped", perm))
        elif is_unsupported(rep) and command[1] == "SHARDS":
            out.append(("ok", f"{cmd}: not supported by this server (fine: CLUSTER NODES is read)", None))
        else:
            out.append(("warn", f"{cmd}: error reply: {text[:200]}", None))
    return out


def _text(v: Any) -> str | None:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v if isinstance(v, str) else None


def build(setup: PollSetup) -> list[Poller]:
    """The CLUSTER topology poller of one source (``cluster:`` in the config)."""
    return [ClusterTopologyPoller(key=setup.key("cluster"), committed=setup.committed("cluster"),
                                  interval=setup.cfg.cluster.interval)]
