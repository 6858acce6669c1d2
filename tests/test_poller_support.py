"""Shared pieces of the poller tests: a SourceContext that records what a real spool would commit.

``FakeSpool`` plays the runtime's part of the contract: ``emit`` makes the events and positions of
a batch durable together (here: appended to lists under a lock), so a "SIGKILL" is cancelling the
source task and starting a new ``RedisSource`` from ``spool.positions``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema

from parsers.events import Event, dumps
from shipper.api import Batch, SourceContext
from shipper.config import RedisSourceConfig
from shipper.sources.redis.source import RedisSource

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "parsers" / "schema" / "event.schema.json")
                    .read_text())
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def check_event(ev: Event) -> None:
    """Every event the poller emits obeys the shared schema and carries an id and an origin."""
    errors = sorted(_VALIDATOR.iter_errors(ev), key=str)
    assert not errors, f"{ev.get('event')}: {errors[0].message} at {list(errors[0].path)}"
    assert isinstance(ev.get("id"), str) and isinstance(ev.get("origin"), str), ev


class FakeSpool:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.raw: list[bytes] = []
        self.agent: list[Event] = []
        self.positions: dict[str, Any] = {}
        self.batches = 0

    async def emit(self, batch: Batch) -> None:
        # canonical bytes at commit time, like the spool: later mutation cannot change them
        for ev in batch.events:
            check_event(ev)
            self.raw.append(dumps(ev))
        self.events.extend(batch.events)
        for k, v in batch.positions.items():
            if v is None:
                self.positions.pop(k, None)
            else:
                self.positions[k] = v
        self.batches += 1

    async def emit_agent(self, ev: Event) -> None:
        check_event(ev)
        self.raw.append(dumps(ev))
        self.agent.append(ev)

    def context(self, stop: asyncio.Event, prefix: str = "") -> SourceContext:
        return SourceContext(emit=self.emit, positions={k: v for k, v in self.positions.items()
                                                         if k.startswith(prefix)},
                             stop=stop, state_dir="/nonexistent", emit_agent=self.emit_agent)

    def of(self, event: str) -> list[Event]:
        return [e for e in self.events + self.agent if e["event"] == event]


def redis_cfg(url: str, **kw: Any) -> RedisSourceConfig:
    data: dict[str, Any] = {"type": "redis", "url": url, "timeout": 2.0,
                            "slowlog": {"interval": 0.05, "min_interval": 0.01, "redact": "none"},
                            "latency": {"interval": 0.1}, "acl_log": {"interval": 0.1},
                            "config": {"interval": 0.1}, "commandlog": {"interval": 0.1},
                            "info": {"interval": 0.1}}
    for k, v in kw.items():
        if isinstance(v, dict) and isinstance(data.get(k), dict):
            data[k] = {**data[k], **v}
        else:
            data[k] = v
    return RedisSourceConfig.model_validate(data)


class Running:
    """A RedisSource running in a task against a FakeSpool; ``kill()`` cancels it abruptly."""

    def __init__(self, cfg: RedisSourceConfig, spool: FakeSpool):
        self.source = RedisSource(cfg)
        self.spool = spool
        self.stop = asyncio.Event()
        #: cancellations the source did not honour at once (should stay 0)
        self.extra_cancels = 0
        self.task = asyncio.create_task(self.source.run(spool.context(self.stop, self.source.key_prefix)))

    async def kill(self) -> None:
        for _ in range(50):  # a cancellation swallowed by a library must not hang the test
            self.task.cancel()
            done, _pending = await asyncio.wait({self.task}, timeout=0.2)
            if done:
                break
            self.extra_cancels += 1
        assert self.task.done(), "the source ignored its cancellation"
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
        await self.source.conn.close()

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)


async def wait_for(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def slow_ids(spool: FakeSpool, client_name: str | None = None) -> list[int]:
    return [e["fields"]["id"] for e in spool.events
            if e["event"] == "slow_command" and (client_name is None or e["fields"]["client_name"] == client_name)]


def make_tls_certs(d: Path) -> None:
    """A CA and a server certificate for 127.0.0.1, and an unrelated CA (``other.crt``), made
    with the openssl CLI."""

    def run(*argv: str) -> None:
        subprocess.run(argv, cwd=d, check=True, capture_output=True)

    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=test-ca")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1")
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf")
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other.key", "-out", "other.crt",
        "-days", "2", "-subj", "/CN=other-ca")
