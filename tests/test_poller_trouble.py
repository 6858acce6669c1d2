"""A sick Redis: timeouts, unreadable secrets, LOADING; and the unix-socket transport."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from redis.exceptions import AuthenticationError, BusyLoadingError, NoPermissionError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from test_poller_support import FakeSpool, Running, make_tls_certs, redis_cfg, slow_ids, wait_for

from shipper.sources.redis.client import redis_address, safe_url
from shipper.sources.redis.source import classify_error

from servers import start_server


@pytest.mark.parametrize(
    "err, kind",
    [
        (BusyLoadingError("Redis is loading the dataset in memory"), "loading"),
        (ResponseError("LOADING Redis is loading the dataset in memory"), "loading"),
        (AuthenticationError("invalid username-password pair"), "auth"),
        (ResponseError("NOAUTH Authentication required."), "auth"),
        (ResponseError("WRONGPASS invalid username-password pair or user is disabled."), "auth"),
        (NoPermissionError("NOPERM this user has no permissions"), "noperm"),
        (RedisTimeoutError("Timeout reading from socket"), "timeout"),
        (TimeoutError(), "timeout"),
        (RedisConnectionError("Connection refused"), "connection"),
        (ConnectionResetError(), "connection"),
        (ResponseError("ERR something else"), "error_reply"),
    ],
)
def test_errors_are_classified_into_few_metric_kinds(err: BaseException, kind: str) -> None:
    assert classify_error(err) == kind


def test_addresses_and_urls_never_carry_credentials() -> None:
    assert redis_address("redis://user:pw@10.0.0.5:6380/0") == "10.0.0.5:6380"
    assert redis_address("rediss://[::1]:6379") == "[::1]:6379"
    assert redis_address("unix:///run/redis/redis.sock?password=pw") == "/run/redis/redis.sock"
    assert redis_address("redis://host") == "host:6379"
    assert safe_url("redis://user:pw@10.0.0.5:6380/0?password=pw") == "redis://10.0.0.5:6380/0"


@pytest.mark.integration
def test_a_redis_slower_than_the_timeout_is_reported_as_timeout_then_recovers(tmp_path: Path) -> None:
    rp = start_server("valkey9", tmp_path, config={"enable-debug-command": "local"})

    async def main() -> tuple[FakeSpool, int]:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url, timeout=0.3), spool)
        await wait_for(lambda: run.source.rounds >= 1, what="a first poll")
        await asyncio.to_thread(rp.client().execute_command, "DEBUG", "SLEEP", "1.5")
        await wait_for(lambda: spool.of("redis_reachable"), timeout=15, what="recovery")
        await run.close()
        return spool, run.source.errors

    try:
        spool, errors = asyncio.run(main())
    finally:
        rp.stop()
    (down,) = spool.of("redis_unreachable")
    assert down["fields"]["error_kind"] == "timeout" and errors >= 1
    assert len(spool.of("redis_reachable")) == 1


@pytest.mark.integration
def test_an_unreadable_password_file_is_reported_and_picked_up_once_fixed(tmp_path: Path) -> None:
    rp = start_server("redis7", tmp_path, config={"requirepass": "pw-1234-abcd"})
    pw = tmp_path / "missing-pw"

    async def main() -> FakeSpool:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url, password_file=str(pw)), spool)
        await wait_for(lambda: spool.of("redis_unreachable"), what="the config problem")
        pw.write_text("pw-1234-abcd\n")
        await wait_for(lambda: spool.of("redis_reachable"), timeout=15, what="recovery once the file exists")
        await run.close()
        return spool

    try:
        spool = asyncio.run(main())
    finally:
        rp.stop()
    (down,) = spool.of("redis_unreachable")
    assert down["fields"]["error_kind"] == "config" and "missing-pw" in down["message"]


@pytest.mark.integration
def test_polls_over_a_unix_socket_keyed_by_its_path(tmp_path: Path) -> None:
    sock = tmp_path / "r.sock"
    rp = start_server("redis7", tmp_path, config={"unixsocket": str(sock), "unixsocketperm": "700",
                                                  "slowlog-log-slower-than": "0"})

    async def main() -> FakeSpool:
        spool = FakeSpool()
        run = Running(redis_cfg(f"unix://{sock}"), spool)
        c = rp.client()
        c.client_setname("app")
        await asyncio.to_thread(c.set, "k", "v")
        await wait_for(lambda: slow_ids(spool, "app"), what="the app's entry")
        await run.close()
        return spool

    try:
        spool = asyncio.run(main())
    finally:
        rp.stop()
    assert f"redis:{sock}:slowlog" in spool.positions
    assert spool.of("redis_unreachable") == []


@pytest.mark.integration
def test_the_source_honours_a_cancellation_at_once(tmp_path: Path) -> None:
    """The runtime cancels sources on shutdown; a swallowed cancellation would hang it.

    Cancelled at random moments (mid-connect, mid-poll, mid-sleep) 150 times, the source must
    end on the first cancel every time (before the fix, 19 of 300 went on polling)."""
    import random

    rp = start_server("redis7", tmp_path, config={"slowlog-log-slower-than": "0"})
    rnd = random.Random(7)

    async def main() -> int:
        spool = FakeSpool()
        extra = 0
        for _ in range(150):
            run = Running(redis_cfg(rp.url), spool)
            await asyncio.sleep(rnd.random() * 0.04)
            await run.kill()
            extra += run.extra_cancels
        return extra

    try:
        extra = asyncio.run(main())
    finally:
        rp.stop()
    assert extra == 0


@pytest.mark.integration
def test_polls_over_tls_with_the_configured_ca_and_refuses_another_ca(tmp_path: Path) -> None:
    import shutil

    from servers import free_port, require

    require("openssl", shutil.which("openssl") is not None)
    certs = tmp_path / "certs"
    certs.mkdir()
    make_tls_certs(certs)
    tls_port = free_port()
    rp = start_server("redis7", tmp_path, config={
        "tls-port": str(tls_port), "tls-cert-file": str(certs / "server.crt"),
        "tls-key-file": str(certs / "server.key"), "tls-ca-cert-file": str(certs / "ca.crt"),
        "tls-auth-clients": "no", "slowlog-log-slower-than": "0"})
    url = f"rediss://127.0.0.1:{tls_port}"

    async def main() -> tuple[FakeSpool, FakeSpool]:
        good, bad = FakeSpool(), FakeSpool()
        ok = Running(redis_cfg(url, tls={"ca_file": str(certs / "ca.crt")}), good)
        wrong = Running(redis_cfg(url, tls={"ca_file": str(certs / "other.crt")}), bad)
        c = rp.client()
        c.client_setname("app")
        await asyncio.to_thread(c.set, "k", "v")
        await wait_for(lambda: slow_ids(good, "app"), what="an entry over TLS")
        await wait_for(lambda: bad.of("redis_unreachable"), what="the certificate error")
        await ok.close()
        await wrong.close()
        return good, bad

    try:
        good, bad = asyncio.run(main())
    finally:
        rp.stop()
    assert good.of("redis_unreachable") == []
    assert slow_ids(bad) == []
    (err,) = bad.of("redis_unreachable")
    assert "certificate" in err["message"].lower() or "ssl" in err["message"].lower()


@pytest.mark.integration
def test_a_failed_emit_loses_nothing_the_entries_are_read_again(tmp_path: Path) -> None:
    """The spool refuses two batches (disk full, say): the entries of those polls must come again."""
    rp = start_server("redis7", tmp_path, config={"slowlog-log-slower-than": "0"})

    async def main() -> FakeSpool:
        spool = FakeSpool()
        real_emit = spool.emit
        failures = {"left": 0}

        async def flaky_emit(batch):  # type: ignore[no-untyped-def]
            if failures["left"] and any(e["event"] == "slow_command" for e in batch.events):
                failures["left"] -= 1
                raise OSError(28, "No space left on device")
            await real_emit(batch)

        spool.emit = flaky_emit  # type: ignore[method-assign]
        run = Running(redis_cfg(rp.url), spool)
        await wait_for(lambda: run.source.rounds >= 1, what="a first poll")
        c = rp.client()
        c.client_setname("app")
        failures["left"] = 2
        for n in range(40):
            await asyncio.to_thread(c.set, "v", n)
        await wait_for(lambda: len([e for e in spool.events if e["event"] == "slow_command"
                                    and e["fields"]["client_name"] == "app"
                                    and e["fields"]["command"] == "set"]) >= 40, timeout=20)
        await run.close()
        assert failures["left"] == 0
        return spool

    try:
        spool = asyncio.run(main())
    finally:
        rp.stop()
    values = [int(e["fields"]["args"][1]) for e in spool.events if e["event"] == "slow_command"
              and e["fields"]["client_name"] == "app" and e["fields"]["command"] == "set"]
    assert values == list(range(40))


def _loading(port: int) -> bool:
    """Does the server answer a data command with -LOADING right now? (a raw socket: redis-py's
    default client would wait until the load is over)"""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET key:1\r\n")
        return s.recv(128).startswith(b"-LOADING")


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["redis7", "valkey9"])
def test_a_redis_loading_its_dataset_is_polled_through_the_load_and_after_it(tmp_path: Path, kind: str) -> None:
    """A real server restarted on a dataset that takes seconds to load (``key-load-delay``; and
    ``loading-process-events-interval-bytes`` so that it answers while loading, as a large dataset
    does). Data commands get ``-LOADING`` meanwhile, but everything the poller sends (SLOWLOG,
    LATENCY, ACL LOG, CONFIG GET, INFO) is allowed during a load: the poller keeps polling, says
    nothing is wrong (no ``redis_unreachable``), and drains a slow command run after the load."""
    seed = start_server(kind, tmp_path, name="data", config={"enable-debug-command": "local"})
    try:
        c = seed.client()
        c.execute_command("DEBUG", "POPULATE", "3000")
        c.save()
        port = seed.port
    finally:
        seed.stop()
    # 3,000 keys at 1.5 ms each: ~4.5 s of LOADING after the restart (start_server returns at -LOADING)
    rp = start_server(kind, tmp_path, name="data", port=port,
                      config={"key-load-delay": "1500", "loading-process-events-interval-bytes": "1024",
                              "slowlog-log-slower-than": "0"})

    async def main() -> tuple[FakeSpool, bool]:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url), spool)
        await wait_for(lambda: run.source.rounds >= 3, what="polls during the load")
        # the three rounds really were during the load: it is still going on after them
        still_loading = await asyncio.to_thread(_loading, rp.port)
        await wait_for(lambda: not _loading(rp.port), timeout=30, what="the end of the load")
        await asyncio.to_thread(rp.client(client_name="after-load").set, "k", "v")
        await wait_for(lambda: slow_ids(spool, "after-load"), timeout=15, what="a slow command drained")
        await run.close()
        return spool, still_loading

    try:
        assert _loading(rp.port), "the server is not loading: the test tests nothing"
        spool, still_loading = asyncio.run(main())
        assert rp.client().dbsize() == 3001
    finally:
        rp.stop()
    assert still_loading
    assert spool.of("redis_unreachable") == []
    assert slow_ids(spool, "after-load")
