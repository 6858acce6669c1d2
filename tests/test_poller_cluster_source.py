"""The cluster poll kind inside the real Redis source: one source per cluster node, its events labelled
with that node's instance and id, a restarted agent announcing nothing, least-privilege users, and
``check --connect``'s view of the cluster permissions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cluster_servers import cli, client, node_id, start_cluster
from test_check_command import run_check
from test_poller_support import FakeSpool, Running, redis_cfg, wait_for

from shipper.config import parse_config
from shipper.pipeline.labels import Labeler
from shipper.sources.redis.client import RedisConnection
from shipper.sources.redis.cluster import check_cluster_access

from servers import start_server

pytestmark = pytest.mark.integration

CLUSTER_FAST = {"interval": 0.2}


def url(port: int, user: str = "") -> str:
    return f"redis://{user}127.0.0.1:{port}"


@pytest.mark.parametrize("kind", ["redis7", "valkey9"])
def test_each_nodes_events_carry_its_instance_and_node_id_and_a_restarted_agent_announces_nothing(
        kind: str, tmp_path: Path) -> None:
    m0, m1, m2 = start_cluster(kind, tmp_path)
    ids = [node_id(n) for n in (m0, m1)]
    spools = [FakeSpool(), FakeSpool()]
    cfgs = [redis_cfg(url(n.port), cluster=CLUSTER_FAST) for n in (m0, m1)]
    labeler = Labeler(parse_config({"sources": [{"type": "redis", "url": url(n.port)} for n in (m0, m1)],
                                    "instance_preset": "multi-target"}), env={}, hostname="h")

    def moved(spool: FakeSpool) -> list[dict]:  # type: ignore[type-arg]
        return spool.of("cluster_slots_moved")

    async def scenario() -> None:
        running = [Running(c, s) for c, s in zip(cfgs, spools, strict=True)]
        await wait_for(lambda: all(any(k.endswith(":cluster") for k in s.positions) for s in spools), 30,
                       "the baseline topology committed")
        assert not any(e["category"] == "cluster" for s in spools for e in s.events), "the first read is a baseline"
        await asyncio.to_thread(cli, "--cluster", "reshard", f"127.0.0.1:{m0.port}", "--cluster-from", ids[0],
                                "--cluster-to", ids[1], "--cluster-slots", "10", "--cluster-yes")
        await wait_for(lambda: all(moved(s) for s in spools), 30, "cluster_slots_moved on both nodes")
        await asyncio.sleep(1.0)  # several more polls: still one event per node
        for i, (spool, n) in enumerate(zip(spools, (m0, m1), strict=True)):
            (ev,) = moved(spool)
            assert (ev["fields"]["from_node"], ev["fields"]["to_node"], ev["fields"]["count"]) == (*ids, 10)
            assert ev["fields"]["cluster_node_id"] == ids[i]
            labeler.apply(ev, i)
            assert ev["labels"]["instance"] == url(n.port)
        for r in running:
            await r.kill()
        # the agent restarts from what the spool committed: the topology is known, nothing is new
        running = [Running(c, s) for c, s in zip(cfgs, spools, strict=True)]
        await wait_for(lambda: all(r.source.rounds >= 10 for r in running), 30, "ten rounds after the restart")
        assert [len(moved(s)) for s in spools] == [1, 1]
        assert not any(e["category"] == "cluster" and e["event"] != "cluster_slots_moved"
                       for s in spools for e in s.events)
        for r in running:
            await r.close()

    try:
        asyncio.run(scenario())
    finally:
        for n in (m0, m1, m2):
            n.stop()


def test_a_redis_not_in_cluster_mode_polled_by_a_user_without_cluster_permissions_stays_quiet(
        tmp_path: Path) -> None:
    rp = start_server("redis7", tmp_path)
    client(rp).execute_command("ACL", "SETUSER", "shipper", "on", ">pw", "+@all", "-cluster")
    spool = FakeSpool()

    async def scenario() -> None:
        running = Running(redis_cfg(url(rp.port, "shipper:pw@"), cluster=CLUSTER_FAST), spool)
        await wait_for(lambda: running.source.rounds >= 10, 30, "ten rounds")
        await running.close()
        conn = RedisConnection(redis_cfg(url(rp.port, "shipper:pw@")))
        await conn.ensure()
        assert await check_cluster_access(conn) == [], "nothing of a cluster to check on a plain Redis"
        await conn.close()

    try:
        asyncio.run(scenario())
        assert [e for e in spool.agent if e["event"] == "redis_poll_disabled"] == []
        assert not any(e["category"] == "cluster" for e in spool.events)
        assert not any(k.endswith(":cluster") for k in spool.positions)
    finally:
        rp.stop()


def test_a_cluster_node_polled_without_cluster_permissions_is_one_warning_and_check_names_the_grants(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nodes = start_cluster("redis7", tmp_path)
    m0 = nodes[0]
    client(m0).execute_command("ACL", "SETUSER", "shipper", "on", ">pw", "+@all", "-cluster")
    spool = FakeSpool()

    async def scenario() -> list[tuple[str, str, str | None]]:
        running = Running(redis_cfg(url(m0.port, "shipper:pw@"), cluster=CLUSTER_FAST), spool)
        await wait_for(lambda: running.source.rounds >= 10, 30, "ten rounds")
        await running.close()
        conn = RedisConnection(redis_cfg(url(m0.port, "shipper:pw@")))
        await conn.ensure()
        lines = await check_cluster_access(conn)
        await conn.close()
        return lines

    try:
        lines = asyncio.run(scenario())
        disabled = [e for e in spool.agent if e["event"] == "redis_poll_disabled"]
        assert [e["fields"]["poll"] for e in disabled] == ["cluster"]
        assert [perm for status, _text, perm in lines if status == "warn"] == [
            "+cluster|info", "+cluster|myid", "+cluster|shards", "+cluster|nodes"]
        (tmp_path / "pw").write_text("pw\n")
        rc, out = run_check(tmp_path, f"state_dir: {tmp_path}/state\nsources:\n  - type: redis\n"
                            f"    url: {url(m0.port)}\n    username: shipper\n    password_file: {tmp_path}/pw\n",
                            capsys, "--connect")
        assert "CLUSTER SHARDS: denied by ACL (+cluster|shards missing)" in out, out
        assert "ACL SETUSER shipper +cluster|info +cluster|myid +cluster|shards +cluster|nodes" in out, out
    finally:
        for n in nodes:
            n.stop()
