"""Redis Cluster topology, read every ``cluster.interval`` and diffed into events.

``CLUSTER INFO`` for the state and epoch, ``CLUSTER SHARDS`` (7.0+; ``CLUSTER NODES`` when the
server does not know it) for the nodes, their roles, health and slots, ``CLUSTER MYID`` once per
identity for the node's own id. The pure part (parsing, diffing) is :mod:`parsers.cluster_topology`.

The last topology is a checkpoint, committed with the events it produced: a restarted agent diffs
against it and does not announce the cluster again. The first read ever is a baseline, no events.
A Redis not in cluster mode answers ``ERR This instance has cluster support disabled``: the poll
then goes quiet (no warning: most Redis are not clusters) and looks again after a restart of the
server (a new run_id).
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from parsers.cluster_topology import diff, parse_cluster_info, parse_cluster_nodes, parse_cluster_shards, topology

from .client import RedisConnection
from .poll import PollDisabled, PollResult, is_unsupported, now_ms

#: how often a Redis without cluster support is asked again (its mode changes only with a restart)
NOT_A_CLUSTER_INTERVAL = 300.0


class ClusterTopologyPoller:
    def __init__(self, *, key: str, committed: Any, interval: float):
        self.key = key
        self.interval = interval
        self.next_interval = interval
        self.topology: dict[str, Any] | None = committed if isinstance(committed, dict) and "nodes" in committed \
            else None
        self.run_id: str | None = None
        self.node_id: str | None = None
        self._shards = True  # CLUSTER SHARDS until the server says it does not know it

    def on_identity(self, run_id: str) -> None:
        if run_id != self.run_id:
            self.run_id = run_id
            self.node_id = None
            self.next_interval = self.interval

    async def poll(self, conn: RedisConnection, *, role: str | None) -> PollResult:
        try:
            info_reply = await conn.call("CLUSTER", "INFO")
        except ResponseError as e:
            if "cluster support disabled" in str(e).lower():
                self.next_interval = NOT_A_CLUSTER_INTERVAL
                return PollResult(must_persist=False)
            if is_unsupported(e):
                raise PollDisabled(str(e)) from e
            raise
        if self.node_id is None:
            self.node_id = _text(await conn.call("CLUSTER", "MYID"))
        nodes = None
        if self._shards:
            try:
                nodes = parse_cluster_shards(await conn.call("CLUSTER", "SHARDS"))
            except ResponseError as e:
                if not is_unsupported(e):
                    raise
                self._shards = False  # before 7.0
        if nodes is None:
            nodes = parse_cluster_nodes(await conn.call("CLUSTER", "NODES"))
        info = parse_cluster_info(info_reply)
        if info is None or nodes is None:
            return PollResult(must_persist=False)  # a reply of a shape we do not know: keep the last topology
        self.next_interval = self.interval
        new = topology(info, nodes)
        old, self.topology = self.topology, new
        if old is None:
            return PollResult(positions={self.key: new})
        events = diff(old, new, origin=f"redis:{conn.address}:cluster", node_id=self.node_id,
                      observed_ms=now_ms(), role=role)
        if not events and old == new:
            return PollResult(must_persist=False)
        return PollResult(events=events, positions={self.key: new}, must_persist=bool(events))


def _text(v: Any) -> str | None:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return v if isinstance(v, str) else None
