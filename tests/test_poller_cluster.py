"""The cluster topology poller on real Redis 7.0 and Valkey 9 clusters: a failover, the old master's
return, a reshard, a node added and removed, each announced exactly once; a restart of the agent
announces nothing; a Redis not in cluster mode is quiet."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from cluster_servers import add_replica, cli, client, info, node, node_id, start_cluster, wait

from parsers.cluster_topology import diff, parse_cluster_nodes, parse_cluster_shards
from shipper.config import RedisSourceConfig
from shipper.sources.redis.client import RedisConnection
from shipper.sources.redis.cluster import NOT_A_CLUSTER_INTERVAL, ClusterTopologyPoller

from servers import start_server

pytestmark = pytest.mark.integration


class Poller:
    """A topology poller on one node, as the Redis source runs it, with what it has committed."""

    def __init__(self, port: int, committed: Any = None) -> None:
        self.conn = RedisConnection(RedisSourceConfig(type="redis", url=f"redis://127.0.0.1:{port}"))
        self.poller = ClusterTopologyPoller(key="redis:x:cluster", committed=committed, interval=0.1)
        self.events: list[dict[str, Any]] = []
        self.committed: Any = committed

    async def poll(self) -> list[dict[str, Any]]:
        await self.conn.ensure()
        self.poller.on_identity("run")
        res = await self.poller.poll(self.conn, role="master")
        self.events += res.events
        if res.positions:
            self.committed = res.positions["redis:x:cluster"]
        return res.events

    async def until(self, pred, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not pred():
            assert loop.time() < deadline, f"not seen in time; events: {[e['event'] for e in self.events]}"
            await self.poll()
            await asyncio.sleep(0.1)

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == name]


@pytest.mark.parametrize("kind", ["redis7", "valkey9"])
def test_a_failover_the_old_masters_return_a_reshard_and_a_node_added_and_removed_are_each_announced_once(
        kind: str, tmp_path: Path) -> None:
    m0, m1, m2 = start_cluster(kind, tmp_path)
    r0 = add_replica(kind, tmp_path, m0, f"{kind}-r0")
    ids = {n.port: node_id(n) for n in (m0, m1, m2, r0)}
    watcher = Poller(m1.port)

    async def scenario() -> None:
        assert await watcher.poll() == [], "the first read is a baseline"
        await watcher.until(lambda: watcher.poller.topology["nodes"][ids[r0.port]]["role"] == "replica")
        # the master of r0 dies: r0 is elected (cluster-node-timeout 1 s)
        m0.proc.send_signal(signal.SIGKILL)
        await watcher.until(lambda: watcher.named("cluster_role_changed"))
        await watcher.until(lambda: watcher.named("cluster_node_failed"))
        await asyncio.sleep(1.0)
        for _ in range(5):
            await watcher.poll()
        failed = watcher.named("cluster_node_failed")
        promoted = watcher.named("cluster_role_changed")
        assert [e["fields"]["node"] for e in failed] == [ids[m0.port]]
        assert [(e["fields"]["node"], e["fields"]["node_role"]) for e in promoted] == [(ids[r0.port], "master")]
        assert promoted[0]["fields"]["epoch"] >= 4 and promoted[0]["fields"]["cluster_node_id"] == ids[m1.port]
        assert not watcher.named("cluster_slots_moved"), "a promotion is not a reshard"

        # the old master comes back and rejoins as a replica of r0
        m0b = node(kind, tmp_path, f"{kind}-m0", port=m0.port)  # same dir and port: its nodes.conf, its id
        await watcher.until(lambda: watcher.named("cluster_node_recovered"), timeout=60)
        await watcher.until(lambda: len(watcher.named("cluster_role_changed")) == 2, timeout=60)
        back = watcher.named("cluster_role_changed")[1]["fields"]
        assert (back["node"], back["node_role"], back["master"]) == (ids[m0.port], "replica", ids[r0.port])

        # a reshard of 100 slots from m1 to m2
        cli("--cluster", "reshard", f"127.0.0.1:{m1.port}", "--cluster-from", ids[m1.port], "--cluster-to",
            ids[m2.port], "--cluster-slots", "100", "--cluster-yes")
        await watcher.until(lambda: sum(e["fields"]["count"] for e in watcher.named("cluster_slots_moved")) == 100)
        moved = watcher.named("cluster_slots_moved")
        assert [(e["fields"]["from_node"], e["fields"]["to_node"], e["fields"]["count"]) for e in moved] == \
            [(ids[m1.port], ids[m2.port], 100)], "one event per reshard"

        # a node added, then removed
        extra = node(kind, tmp_path, f"{kind}-extra")
        cli("--cluster", "add-node", f"127.0.0.1:{extra.port}", f"127.0.0.1:{m1.port}")
        extra_id = node_id(extra)
        await watcher.until(lambda: watcher.named("cluster_node_added"))
        # del-node sends CLUSTER FORGET to every node: each must have met the new node by gossip first
        wait(lambda: all(extra_id in client(n).execute_command("CLUSTER", "NODES") for n in (m0b, m1, m2, r0)),
             what="every node knows the added node")
        cli("--cluster", "del-node", f"127.0.0.1:{m1.port}", extra_id)
        await watcher.until(lambda: watcher.named("cluster_node_removed"))
        for _ in range(5):
            await watcher.poll()
        assert [e["fields"]["node"] for e in watcher.named("cluster_node_added")] == [extra_id]
        assert [e["fields"]["node"] for e in watcher.named("cluster_node_removed")] == [extra_id]
        assert len(watcher.named("cluster_node_failed")) == 1 and len(watcher.named("cluster_node_recovered")) == 1

        # the agent restarts: the committed topology is the baseline, nothing is announced again
        again = Poller(m1.port, committed=watcher.committed)
        assert await again.poll() == []
        await watcher.conn.close()
        await again.conn.close()
        m0b.stop()
        extra.stop()

    try:
        asyncio.run(scenario())
    finally:
        for n in (m0, m1, m2, r0):
            n.stop()


def test_the_cluster_going_fail_without_a_majority_and_back_is_announced_once_each_way(tmp_path: Path) -> None:
    m0, m1, m2 = start_cluster("redis7", tmp_path)
    watcher = Poller(m0.port)

    async def scenario() -> None:
        await watcher.poll()
        m1.proc.send_signal(signal.SIGSTOP)  # no replicas: slots uncovered, the cluster fails
        await watcher.until(lambda: watcher.named("cluster_state_changed"))
        assert watcher.named("cluster_state_changed")[0]["fields"]["cluster_state"] == "fail"
        m1.proc.send_signal(signal.SIGCONT)
        await watcher.until(lambda: len(watcher.named("cluster_state_changed")) == 2)
        for _ in range(5):
            await watcher.poll()
        assert [e["fields"]["cluster_state"] for e in watcher.named("cluster_state_changed")] == ["fail", "ok"]
        await watcher.conn.close()

    try:
        asyncio.run(scenario())
    finally:
        for n in (m0, m1, m2):
            n.stop()


def test_a_redis_not_in_cluster_mode_is_asked_info_cluster_once_and_then_polled_rarely(tmp_path: Path) -> None:
    rp = start_server("redis7", tmp_path)
    p = Poller(rp.port)

    async def scenario() -> None:
        assert await p.poll() == []
        assert p.poller.cluster_enabled is False
        assert p.poller.next_interval() == NOT_A_CLUSTER_INTERVAL
        before = client(rp).info("commandstats")
        assert await p.poll() == []
        after = client(rp).info("commandstats")
        assert after.get("cmdstat_info", {}).get("calls") == before.get("cmdstat_info", {}).get("calls") + 1, \
            "only the INFO commandstats of the test itself ran in between"
        assert not any(k.startswith("cmdstat_cluster") for k in after)
        await p.conn.close()

    try:
        asyncio.run(scenario())
    finally:
        rp.stop()


def test_shards_and_nodes_replies_describe_the_same_topology(tmp_path: Path) -> None:
    nodes = start_cluster("redis7", tmp_path)
    try:
        c = client(nodes[0])
        c2 = __import__("redis").Redis(port=nodes[0].port)
        from_shards = parse_cluster_shards(c2.execute_command("CLUSTER", "SHARDS"))
        from_nodes = parse_cluster_nodes(c2.execute_command("CLUSTER", "NODES"))
        assert from_shards == from_nodes
        assert info(nodes[0])["cluster_state"] == "ok" and c.ping()
    finally:
        for n in nodes:
            n.stop()


def test_diff_is_total_on_malformed_topologies() -> None:
    assert parse_cluster_shards(b"nonsense") is None
    assert parse_cluster_shards([[b"slots", b"x", b"nodes", [[b"id"]]]]) == {}
    assert parse_cluster_nodes(12) is None
    t = {"state": "ok", "epoch": 1, "nodes": {}}
    assert diff(t, t, origin="o", node_id=None, observed_ms=0) == []
