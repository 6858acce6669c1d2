"""LATENCY, CONFIG drift, ACL LOG, role changes and COMMANDLOG from real servers, and secrets.

Each test drives the real server into the state (DEBUG SLEEP under a latency threshold, CONFIG
SET, a wrong password, REPLICAOF NO ONE, a large request) and checks the event the poller ships.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
import redis
from prometheus_client import generate_latest
from test_poller_support import FakeSpool, Running, redis_cfg, wait_for

from parsers.events import dumps
from shipper.observe import metrics

from servers import SERVER_KINDS, start_server

pytestmark = pytest.mark.integration

SECRET = "Sup3r-secret-pw-77"


def debug_ok(kind: str) -> dict[str, str]:
    """DEBUG is refused by default from Redis 7 on; 6.2 has no such switch."""
    return {} if kind == "redis62" else {"enable-debug-command": "local"}


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_debug_sleep_above_the_latency_threshold_ships_a_latency_spike(kind: str, tmp_path: Path) -> None:
    rp = start_server(kind, tmp_path, config={"latency-monitor-threshold": "10", **debug_ok(kind)})

    async def main() -> FakeSpool:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url), spool)
        await wait_for(lambda: run.source.rounds >= 1, what="a first poll")
        await asyncio.to_thread(rp.client().execute_command, "DEBUG", "SLEEP", "0.05")
        await wait_for(lambda: spool.of("latency_spike"), what="a latency event")
        await asyncio.sleep(0.3)  # later polls must not repeat it
        await run.close()
        return spool

    try:
        spool = asyncio.run(main())
    finally:
        rp.stop()
    (ev,) = spool.of("latency_spike")
    assert (ev["source"], ev["category"]) == ("latency", "latency")
    assert ev["fields"]["event_name"] == "command" and ev["fields"]["latest_ms"] >= 50
    assert ev["fields"]["max_ms"] >= ev["fields"]["latest_ms"]
    assert spool.of("latency_monitor_disabled") == []


def test_latency_monitor_off_is_warned_about_once(tmp_path: Path) -> None:
    rp = start_server("redis7", tmp_path)  # latency-monitor-threshold defaults to 0

    async def main() -> FakeSpool:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url), spool)
        await asyncio.sleep(0.6)  # several INFO refreshes
        await run.close()
        return spool

    try:
        spool = asyncio.run(main())
    finally:
        rp.stop()
    (warn,) = spool.of("latency_monitor_disabled")
    assert warn["source"] == "agent" and warn["level"] == "warning"


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_config_set_ships_config_changed_and_a_secret_shows_no_value(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rp = start_server(kind, tmp_path)

    async def main() -> FakeSpool:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url), spool)
        await wait_for(lambda: f"redis:127.0.0.1:{rp.port}:config" in spool.positions, what="config baseline")
        c = rp.client()
        await asyncio.to_thread(c.config_set, "maxmemory", "104857600")
        await asyncio.to_thread(c.config_set, "masterauth", SECRET)
        await wait_for(lambda: len(spool.of("config_changed")) >= 2, what="two config changes")
        await run.close()
        return spool

    try:
        spool = asyncio.run(main())
    finally:
        rp.stop()
    changes = {e["fields"]["parameter"]: e for e in spool.of("config_changed")}
    mm = changes["maxmemory"]
    assert (mm["fields"]["old"], mm["fields"]["new"]) == ("0", "104857600")
    assert (mm["source"], mm["category"]) == ("config", "config")
    ma = changes["masterauth"]
    assert ma["fields"]["secret"] is True and ma["fields"]["new"] == "(redacted)" and ma["fields"]["old"] == ""
    everything = b"".join(spool.raw) + repr(spool.positions).encode() + caplog.text.encode()
    assert SECRET.encode() not in everything


def test_config_changed_while_the_agent_was_down_is_reported_at_start(tmp_path: Path) -> None:
    rp = start_server("valkey9", tmp_path)

    async def main() -> FakeSpool:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url), spool)
        await wait_for(lambda: f"redis:127.0.0.1:{rp.port}:config" in spool.positions)
        await run.kill()
        await asyncio.to_thread(rp.client().config_set, "hz", "25")
        run = Running(redis_cfg(rp.url), spool)
        await wait_for(lambda: spool.of("config_changed"), what="the change made while down")
        await run.close()
        return spool

    try:
        spool = asyncio.run(main())
    finally:
        rp.stop()
    (ev,) = spool.of("config_changed")
    assert ev["fields"]["parameter"] == "hz" and (ev["fields"]["old"], ev["fields"]["new"]) == ("10", "25")


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_a_wrong_password_ships_one_acl_security_event(kind: str, tmp_path: Path) -> None:
    rp = start_server(kind, tmp_path)

    async def main() -> FakeSpool:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url), spool)
        await wait_for(lambda: run.source.rounds >= 1, what="a first poll")
        bad = redis.Redis(host="127.0.0.1", port=rp.port, username="mallory", password="guess", retry=None,
                          protocol=2, socket_timeout=2)
        with pytest.raises(redis.AuthenticationError):
            await asyncio.to_thread(bad.ping)
        await wait_for(lambda: spool.of("acl_denied"), what="an ACL LOG event")
        await asyncio.sleep(0.4)  # it must not come again on later polls
        await run.close()
        return spool

    try:
        spool = asyncio.run(main())
    finally:
        rp.stop()
    (ev,) = spool.of("acl_denied")
    assert (ev["source"], ev["category"]) == ("acl", "security")
    f = ev["fields"]
    assert f["reason"] == "auth" and f["username"] == "mallory" and f["count"] == 1
    assert f["client_addr"].startswith("127.0.0.1:") and f["context"] == "toplevel"
    assert "guess" not in dumps(ev).decode()


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_a_replica_promoted_ships_role_changed(kind: str, tmp_path: Path) -> None:
    master = start_server(kind, tmp_path, name="master")
    replica = start_server(kind, tmp_path, name="replica",
                           config={"replicaof": f"127.0.0.1 {master.port}"})

    async def main() -> FakeSpool:
        spool = FakeSpool()
        run = Running(redis_cfg(replica.url), spool)
        key = f"redis:127.0.0.1:{replica.port}:identity"
        await wait_for(lambda: (spool.positions.get(key) or {}).get("role") == "replica", what="replica identity")
        await asyncio.to_thread(replica.client().execute_command, "REPLICAOF", "NO", "ONE")
        await wait_for(lambda: spool.of("role_changed"), what="role_changed")
        await run.close()
        return spool

    try:
        spool = asyncio.run(main())
    finally:
        replica.stop()
        master.stop()
    (ev,) = spool.of("role_changed")
    assert (ev["category"], ev["event"], ev["role"]) == ("failover", "role_changed", "master")
    assert ev["fields"]["old_role"] == "replica" and ev["fields"]["new_role"] == "master"
    assert ev["fields"]["old_master_port"] == master.port


def test_valkey_commandlog_large_request_is_shipped_without_duplicating_the_slowlog(tmp_path: Path) -> None:
    rp = start_server("valkey9", tmp_path, config={"commandlog-request-larger-than": "1000",
                                                   "slowlog-log-slower-than": "0"})

    async def main() -> FakeSpool:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url, slowlog={"redact": "keys"}), spool)
        await wait_for(lambda: run.source.rounds >= 1, what="a first poll")
        c = rp.client()
        c.client_setname("bulk")
        await asyncio.to_thread(c.set, "blob", "x" * 5000)
        await wait_for(lambda: spool.of("large_request"), what="a large_request event")
        await run.close()
        return spool

    try:
        spool = asyncio.run(main())
    finally:
        rp.stop()
    (big,) = spool.of("large_request")
    f = big["fields"]
    assert f["command"] == "set" and f["log"] == "large-request" and f["request_bytes"] > 5000
    assert f["args"] == ["blob", "(5000 bytes)"]
    slow = [e for e in spool.of("slow_command") if e["fields"]["client_name"] == "bulk"
            and e["fields"]["command"] == "set"]
    assert len(slow) == 1  # the slow log is drained once (SLOWLOG), not again through COMMANDLOG slow


def test_secrets_never_reach_events_logs_or_metrics(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The poller authenticates with a password from a file; a wrong one first, then the right one."""
    caplog.set_level(logging.DEBUG)
    rp = start_server("redis7", tmp_path, config={"requirepass": SECRET, "slowlog-log-slower-than": "0"})
    pwfile = tmp_path / "pw"
    pwfile.write_text("wrong-" + SECRET + "\n")

    async def main() -> FakeSpool:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url, password_file=str(pwfile)), spool)
        await wait_for(lambda: spool.of("redis_unreachable"), what="the auth failure")
        await run.kill()
        pwfile.write_text(SECRET + "\n")
        run = Running(redis_cfg(rp.url, password_file=str(pwfile)), spool)
        c = redis.Redis(host="127.0.0.1", port=rp.port, password=SECRET, protocol=2)
        await asyncio.to_thread(c.config_set, "requirepass", SECRET)  # logged by CONFIG SET in the slowlog
        await asyncio.to_thread(c.execute_command, "AUTH", SECRET)
        await wait_for(lambda: any(e["fields"].get("command") == "auth" for e in spool.of("slow_command")),
                       what="AUTH in the slowlog")
        await wait_for(lambda: spool.of("acl_denied"), what="the failed AUTH in the ACL LOG")
        await run.close()
        return spool

    try:
        spool = asyncio.run(main())
    finally:
        rp.stop()
    (down,) = spool.of("redis_unreachable")
    assert down["fields"]["error_kind"] == "auth"
    blob = b"".join(spool.raw) + repr(spool.positions).encode() + caplog.text.encode()
    blob += generate_latest(metrics.REGISTRY)
    assert SECRET.encode() not in blob
