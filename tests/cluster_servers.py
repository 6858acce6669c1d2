"""Real Redis Clusters for tests: nodes started by :func:`servers.start_server` in cluster mode on free
loopback ports, joined with ``redis-cli --cluster`` (Debian's redis-tools; it speaks to Valkey too)."""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

from servers import RedisProcess, require, start_server

NODE_TIMEOUT_MS = 1000


def cli(*args: str, timeout: float = 60) -> str:
    exe = shutil.which("redis-cli")
    require("redis-cli", exe is not None, "apt-get install redis-tools")
    assert exe is not None
    out = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def cluster_port() -> int:
    """A free loopback port whose cluster bus port (+10000) is free too: a node refuses ports over
    55535, which the kernel's ephemeral range (``servers.free_port``) often hands out."""
    for _ in range(200):
        port = random.randint(20000, 55000)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


def node(kind: str, workdir: Path, name: str, port: int | None = None) -> RedisProcess:
    """A cluster-mode node; the same ``name`` and ``port`` restart a node with its nodes.conf (its id)."""
    return start_server(kind, workdir, name=name, port=port or cluster_port(), config={
        "cluster-enabled": "yes", "cluster-config-file": "nodes.conf",
        "cluster-node-timeout": str(NODE_TIMEOUT_MS), "cluster-replica-validity-factor": "0",
    })


def client(rp: RedisProcess) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=rp.port, socket_timeout=10, decode_responses=True)


def info(rp: RedisProcess) -> dict[str, str]:
    return dict(line.split(":", 1) for line in client(rp).execute_command("CLUSTER", "INFO").splitlines()
                if ":" in line)


def wait(pred, timeout: float = 30.0, what: str = "cluster condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached in {timeout}s")


def start_cluster(kind: str, workdir: Path, masters: int = 3) -> list[RedisProcess]:
    """``masters`` masters owning every slot, state ok on every node."""
    nodes = [node(kind, workdir, f"{kind}-m{i}") for i in range(masters)]
    cli("--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes], "--cluster-yes")
    wait(lambda: all(info(n)["cluster_state"] == "ok" for n in nodes), what="cluster_state:ok")
    return nodes


def add_replica(kind: str, workdir: Path, master: RedisProcess, name: str) -> RedisProcess:
    """A replica of ``master``, its initial sync done (a replica that has not synced refuses to fail
    over: measured)."""
    rp = node(kind, workdir, name)
    master_id = client(master).execute_command("CLUSTER", "MYID")
    cli("--cluster", "add-node", f"127.0.0.1:{rp.port}", f"127.0.0.1:{master.port}", "--cluster-slave",
        "--cluster-master-id", master_id)
    wait(lambda: client(rp).info("replication").get("master_link_status") == "up", what="replica in sync")
    return rp


def node_id(rp: RedisProcess) -> str:
    return client(rp).execute_command("CLUSTER", "MYID")
