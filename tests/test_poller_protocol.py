"""The poller protocol: every poll kind is a ``Poller`` built from one ``POLL_KINDS`` entry, and a
new kind needs nothing else: one class and one entry, and the source schedules it, scopes it by
the server's identity, checkpoints it and resumes it."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from test_poller_support import FakeSpool, Running, redis_cfg, wait_for

from shipper.sources.redis import source as source_mod
from shipper.sources.redis.client import RedisConnection
from shipper.sources.redis.poll import AgentWarning, Poller, PollKind, PollResult, PollSetup
from shipper.sources.redis.source import POLL_KINDS, RedisSource

from servers import start_server

PREFIX = "redis:127.0.0.1:6379:"


def _setup(durable: Mapping[str, Any] | None = None) -> PollSetup:
    cfg = redis_cfg("redis://127.0.0.1:6379", latency={"interval": 0.7}, acl_log={"interval": 0.8},
                    config={"interval": 0.9}, commandlog={"interval": 0.6}, slowlog={"interval": 0.5},
                    cluster={"interval": 1.1})
    return PollSetup(cfg=cfg, address="127.0.0.1:6379", prefix=PREFIX, durable=durable or {})


def test_every_poll_kind_builds_pollers_with_their_own_name_key_and_configured_interval() -> None:
    pollers = [p for kind in POLL_KINDS for p in kind.build(_setup())]
    assert all(isinstance(p, Poller) for p in pollers)
    assert {p.name: (p.key, p.interval) for p in pollers} == {
        "slowlog": (PREFIX + "slowlog", 0.5),
        "commandlog:large-request": (PREFIX + "commandlog:large-request", 0.6),
        "commandlog:large-reply": (PREFIX + "commandlog:large-reply", 0.6),
        "latency": (PREFIX + "latency", 0.7),
        "acl_log": (PREFIX + "acl_log", 0.8),
        "config": (PREFIX + "config", 0.9),
        "cluster": (PREFIX + "cluster", 1.1),
    }


def test_each_poller_is_built_from_the_durable_position_under_its_key() -> None:
    durable = {PREFIX + "slowlog": {"run_id": "r1", "last_id": 41},
               PREFIX + "commandlog:large-reply": {"run_id": "r1", "last_id": 7},
               PREFIX + "latency": {"run_id": "r1", "last": {"command": 1700000000}},
               PREFIX + "config": {"salt": "s", "values": {"maxmemory": "0"}}}
    by_name = {p.name: p for kind in POLL_KINDS for p in kind.build(_setup(durable))}
    assert (by_name["slowlog"].last_id, by_name["commandlog:large-reply"].last_id) == (41, 7)
    assert by_name["commandlog:large-request"].last_id is None
    assert by_name["latency"].last == {"command": 1700000000}
    assert by_name["config"].values == {"maxmemory": "0"}


def test_a_new_run_id_resets_the_run_scoped_cursors_but_not_the_config_snapshot() -> None:
    durable = {PREFIX + "slowlog": {"run_id": "r1", "last_id": 41},
               PREFIX + "latency": {"run_id": "r1", "last": {"command": 1700000000}},
               PREFIX + "acl_log": {"run_id": "r1", "cursor": {"last_id": 3}},
               PREFIX + "config": {"salt": "s", "values": {"maxmemory": "0"}}}
    by_name = {p.name: p for kind in POLL_KINDS for p in kind.build(_setup(durable))}
    for p in by_name.values():
        p.on_identity("r2")
    assert by_name["slowlog"].last_id == -1  # id 0 of the new run is expected; a gap counts as lost
    assert by_name["latency"].last == {}
    assert by_name["acl_log"].cursor is None
    assert by_name["config"].values == {"maxmemory": "0"}


def test_server_settings_size_the_reads_and_a_zero_latency_threshold_is_a_warning() -> None:
    by_name = {p.name: p for kind in POLL_KINDS for p in kind.build(_setup())}
    settings = {"slowlog-max-len": "256", "latency-monitor-threshold": "0", "acllog-max-len": "64"}
    warnings = {p.name: p.on_settings(settings) for p in by_name.values()}
    assert by_name["slowlog"].ring_len == by_name["commandlog:large-reply"].ring_len == 256
    assert by_name["acl_log"].max_len == 64
    assert {k: w.event for k, w in warnings.items() if w is not None} == {"latency": "latency_monitor_disabled"}
    assert by_name["latency"].on_settings({**settings, "latency-monitor-threshold": "100"}) is None


def test_only_the_slowlog_drainer_hurries_below_its_interval() -> None:
    by_name = {p.name: p for kind in POLL_KINDS for p in kind.build(_setup())}
    hurried = PollResult(hurry=True)
    assert by_name["slowlog"].next_interval(hurried) == 0.01  # min_interval of redis_cfg
    assert by_name["latency"].next_interval(hurried) == 0.7


class DbsizePoller(Poller):
    """A poll kind written only against the protocol: DBSIZE as a checkpoint."""

    name = "dbsize"

    def __init__(self, setup: PollSetup) -> None:
        self.key = setup.key("dbsize")
        self.interval = 0.05
        self.resumed_from = setup.committed("dbsize")
        self.run_ids: list[str] = []
        self.settings: list[Mapping[str, str | None]] = []
        self.polls = 0
        self.commits = 0

    def on_identity(self, run_id: str) -> None:
        self.run_ids.append(run_id)

    def on_settings(self, settings: Mapping[str, str | None]) -> AgentWarning | None:
        self.settings.append(settings)
        return None

    async def poll(self, conn: RedisConnection, *, role: str | None) -> PollResult:
        assert self.run_ids, "on_identity comes before the first poll"
        self.polls += 1
        size = await conn.call("DBSIZE")
        return PollResult(positions={self.key: {"run_id": self.run_ids[-1], "keys": size, "role": role}})

    def committed(self) -> None:
        self.commits += 1


@pytest.mark.integration
def test_a_kind_added_as_one_table_entry_is_polled_checkpointed_and_resumed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[DbsizePoller] = []

    def build(setup: PollSetup) -> list[Poller]:
        built.append(DbsizePoller(setup))
        return [built[-1]]

    monkeypatch.setattr(source_mod, "POLL_KINDS",
                        (*POLL_KINDS, PollKind("dbsize", enabled=lambda cfg: True, build=build)))
    rp = start_server("redis7", tmp_path)
    run_id = rp.client().info("server")["run_id"]
    key = f"redis:127.0.0.1:{rp.port}:dbsize"

    async def main() -> FakeSpool:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url), spool)
        await wait_for(lambda: built and built[0].commits >= 1, what="a durable dbsize checkpoint")
        await asyncio.to_thread(rp.client().mset, {"a": 1, "b": 2})
        await wait_for(lambda: (spool.positions.get(key) or {}).get("keys") == 2, what="DBSIZE 2")
        await run.close()
        again = Running(redis_cfg(rp.url), spool)  # a restart: built from what is durable
        await wait_for(lambda: len(built) == 2 and built[1].polls >= 1, what="the resumed poller")
        await again.close()
        return spool

    try:
        spool = asyncio.run(main())
    finally:
        rp.stop()
    first, resumed = built
    assert first.run_ids[0] == run_id
    assert first.settings[0]["slowlog-max-len"] == "128"
    assert first.polls >= 2
    assert resumed.resumed_from["keys"] == 2
    assert spool.positions[key] == {"run_id": run_id, "keys": 2, "role": "master"}


def test_two_poll_kinds_with_the_same_name_are_refused_before_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    twice = PollKind("dbsize", enabled=lambda cfg: True, build=lambda setup: [DbsizePoller(setup)])
    monkeypatch.setattr(source_mod, "POLL_KINDS", (*POLL_KINDS, twice, twice))
    source = RedisSource(redis_cfg("redis://127.0.0.1:1"))
    spool = FakeSpool()
    with pytest.raises(RuntimeError, match="same name"):
        asyncio.run(source.run(spool.context(asyncio.Event(), source.key_prefix)))
