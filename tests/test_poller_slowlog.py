"""SLOWLOG drained from real servers: storms below and above the ring, restarts, agent kills.

Every test sets ``slowlog-log-slower-than 0``, so every command is an entry, including the
poller's own (it names its connection ``redis-shipper`` and skips those). The storm client is
named ``storm`` and sends ``SET storm:v <n>`` with n = 0, 1, 2...: the shipped values must be
exactly that sequence, once each, whatever happened in between.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
import redis
from test_poller_support import FakeSpool, Running, redis_cfg, slow_ids, wait_for

from shipper.observe import metrics

from servers import SERVER_KINDS, RedisProcess, start_server

pytestmark = pytest.mark.integration

SLOW_ALL = {"slowlog-log-slower-than": "0", "slowlog-max-len": "128"}


def storm_client(port: int) -> redis.Redis:
    r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, protocol=2)
    r.client_setname("storm")
    return r


def storm_values(spool: FakeSpool) -> list[int]:
    return [int(e["fields"]["args"][1]) for e in spool.events
            if e["event"] == "slow_command" and e["fields"]["client_name"] == "storm"
            and e["fields"]["command"] == "set"]


def lost_total(spool: FakeSpool) -> int:
    return sum(e["fields"]["lost"] for e in spool.of("slowlog_entries_lost"))


def assert_no_duplicate_ids(spool: FakeSpool) -> None:
    keys = [(e["fields"]["run_id"], e["fields"]["id"]) for e in spool.events if e["event"] == "slow_command"]
    assert len(keys) == len(set(keys)), "a slowlog entry was shipped twice"
    assert len({e["id"] for e in spool.events}) == len(spool.events), "two events share an event id"


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_storm_below_ring_capacity_ships_every_entry_once_in_order(kind: str, tmp_path: Path) -> None:
    """Bursts of 50 (< 128) with the poller draining between them: nothing lost, nothing twice."""
    rp = start_server(kind, tmp_path, config=SLOW_ALL)

    async def main() -> FakeSpool:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url), spool)
        r = storm_client(rp.port)
        n = 0
        for _burst in range(20):
            pipe = r.pipeline(transaction=False)
            for _ in range(50):
                pipe.set("storm:v", n)
                n += 1
            await asyncio.to_thread(pipe.execute)
            await wait_for(lambda n=n: len(storm_values(spool)) >= n, what=f"{n} storm entries")
        await run.close()
        return spool

    try:
        spool = asyncio.run(main())
    finally:
        rp.stop()
    assert storm_values(spool) == list(range(1000))
    assert all(e["pid"] == rp.proc.pid for e in spool.of("slow_command"))  # like the server's log lines
    assert spool.of("slowlog_entries_lost") == []
    assert_no_duplicate_ids(spool)
    ids = slow_ids(spool)
    assert ids == sorted(ids)


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_storm_above_ring_capacity_reports_exactly_the_entries_that_rotated_out(kind: str, tmp_path: Path) -> None:
    """2,000 commands in one pipeline against a 128-entry ring read every 0.5 s: most rotate out.

    Accounting over the ids after the poller's first cursor: every id is exactly one of shipped,
    skipped as the poller's own, or reported lost, and the storm entries that did not arrive are
    all inside the lost ranges.
    """
    rp = start_server(kind, tmp_path, config=SLOW_ALL)
    lost_before = metrics.SLOWLOG_LOST.labels(f"127.0.0.1:{rp.port}")._value.get()

    async def main() -> tuple[FakeSpool, int, int, int, int]:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url, slowlog={"interval": 0.5, "min_interval": 0.5}), spool)
        await wait_for(lambda: run.source.slowlog is not None and run.source.slowlog.last_id is not None)
        base = run.source.slowlog.last_id
        self_before = run.source.slowlog.self_filtered
        shipped_before = len(slow_ids(spool))
        r = storm_client(rp.port)
        pipe = r.pipeline(transaction=False)
        for n in range(2000):
            pipe.set("storm:v", n)
        await asyncio.to_thread(pipe.execute)
        # the id of our last storm command: the entry named storm with the highest id
        top = max(e["id"] for e in r.slowlog_get(128) if e["client_name"] == b"storm")
        await wait_for(lambda: (run.source.slowlog.last_id or 0) >= top, what="the poller to pass the storm")
        end = run.source.slowlog.last_id
        selfs = run.source.slowlog.self_filtered - self_before
        await run.close()
        return spool, base, end, selfs, shipped_before

    try:
        spool, base, end, selfs, shipped_before = asyncio.run(main())
    finally:
        rp.stop()
    assert_no_duplicate_ids(spool)
    shipped = [i for i in slow_ids(spool)[shipped_before:] if base < i <= end]
    lost_ranges = [(e["fields"]["first_lost_id"], e["fields"]["last_lost_id"])
                   for e in spool.of("slowlog_entries_lost")]
    lost = sum(b - a + 1 for a, b in lost_ranges)
    assert lost > 0, "the storm was meant to overflow the ring"
    assert len(shipped) + selfs + lost == end - base
    lost_ids = {i for a, b in lost_ranges for i in range(a, b + 1)}
    assert not lost_ids & set(shipped)
    values = storm_values(spool)
    assert values == sorted(values) and len(values) == len(set(values))
    missing = 2000 - len(values)
    assert missing <= lost  # every missing storm entry is counted in a lost range
    assert values[-1] == 1999  # the newest entries are in the ring, hence shipped
    assert metrics.SLOWLOG_LOST.labels(f"127.0.0.1:{rp.port}")._value.get() - lost_before == lost
    for e in spool.of("slowlog_entries_lost"):
        assert (e["source"], e["category"], e["level"]) == ("slowlog", "slowlog", "warning")


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_redis_restarted_mid_stream_ships_the_new_run_from_id_zero(kind: str, tmp_path: Path) -> None:
    rp = start_server(kind, tmp_path, config=SLOW_ALL, name="node")
    port = rp.port

    async def main() -> tuple[FakeSpool, RedisProcess]:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url), spool)
        r = storm_client(port)
        for n in range(30):
            await asyncio.to_thread(r.set, "storm:v", n)
        await wait_for(lambda: len(storm_values(spool)) >= 30)
        rp.stop()
        await asyncio.sleep(0.3)
        rp2 = await asyncio.to_thread(start_server, kind, tmp_path, config=SLOW_ALL, port=port, name="node")
        r = storm_client(port)
        for n in range(30, 60):
            await asyncio.to_thread(r.set, "storm:v", n)
        await wait_for(lambda: len(storm_values(spool)) >= 60, timeout=20)
        await run.close()
        return spool, rp2

    rp2 = None
    try:
        spool, rp2 = asyncio.run(main())
    finally:
        rp.stop()
        if rp2 is not None:
            rp2.stop()
    assert storm_values(spool) == list(range(60))
    assert_no_duplicate_ids(spool)
    runs = [e["fields"]["run_id"] for e in spool.events if e["event"] == "slow_command"]
    first_run, second_run = runs[0], runs[-1]
    assert first_run != second_run
    second = [e["fields"]["id"] for e in spool.events if e["event"] == "slow_command"
              and e["fields"]["run_id"] == second_run]
    assert second == sorted(second) and second[0] < 10  # ids restarted
    assert spool.of("slowlog_entries_lost") == []
    (restart,) = spool.of("instance_restarted")
    assert restart["fields"]["old_run_id"] == first_run and restart["fields"]["run_id"] == second_run
    assert len(spool.of("redis_unreachable")) == 1 and len(spool.of("redis_reachable")) == 1


@pytest.mark.slow
@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_agent_killed_mid_storm_resumes_without_loss_or_duplicate(kind: str, tmp_path: Path) -> None:
    """A storm runs in a thread; the source is cancelled abruptly 4 times and restarted from
    the committed positions only. The storm paces itself so the ring never overflows."""
    rp = start_server(kind, tmp_path, config={**SLOW_ALL, "slowlog-max-len": "1024"})
    total = 3000
    done = threading.Event()

    def storm() -> None:
        r = storm_client(rp.port)
        for n in range(0, total, 20):
            pipe = r.pipeline(transaction=False)
            for k in range(n, n + 20):
                pipe.set("storm:v", k)
            pipe.execute()
            time.sleep(0.004)
        done.set()

    async def main() -> FakeSpool:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url), spool)
        t = threading.Thread(target=storm)
        t.start()
        for _ in range(4):
            await asyncio.sleep(0.25)
            await run.kill()
            run = Running(redis_cfg(rp.url), spool)
        await asyncio.to_thread(t.join)
        await wait_for(lambda: len(storm_values(spool)) >= total, timeout=20, what="all storm entries")
        await run.close()
        return spool

    try:
        spool = asyncio.run(main())
    finally:
        rp.stop()
    assert done.is_set()
    assert storm_values(spool) == list(range(total))
    assert spool.of("slowlog_entries_lost") == []
    assert_no_duplicate_ids(spool)


@pytest.mark.parametrize("kind", ["redis7"])
def test_redis_down_is_reported_once_and_recovery_once(kind: str, tmp_path: Path) -> None:
    rp = start_server(kind, tmp_path, config=SLOW_ALL, name="node")
    port = rp.port
    addr = f"127.0.0.1:{port}"

    async def main() -> tuple[FakeSpool, float, float, int]:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url), spool)
        await wait_for(lambda: metrics.REDIS_UP.labels(addr)._value.get() == 1)
        errors_before = run.source.errors
        rp.stop()
        await wait_for(lambda: run.source.errors >= errors_before + 3, timeout=15, what="three failed retries")
        up_while_down = metrics.REDIS_UP.labels(addr)._value.get()
        rp2 = await asyncio.to_thread(start_server, kind, tmp_path, config=SLOW_ALL, port=port, name="node")
        try:
            await wait_for(lambda: len(spool.of("redis_reachable")) == 1, timeout=40)
            up_after = metrics.REDIS_UP.labels(addr)._value.get()
            await run.close()
        finally:
            rp2.stop()
        return spool, up_while_down, up_after, run.source.errors - errors_before

    spool, up_while_down, up_after, errors = asyncio.run(main())
    assert errors >= 3
    (down,) = spool.of("redis_unreachable")
    assert down["fields"]["error_kind"] == "connection" and down["category"] == "connection"
    assert down["source"] == "agent"
    (back,) = spool.of("redis_reachable")
    assert back["fields"]["failed_attempts"] >= 3
    assert (up_while_down, up_after) == (0, 1)
    assert metrics.REDIS_POLL_ERRORS.labels(addr, "connection")._value.get() >= errors
