"""The least-privilege ACL user documented in docs/poller.md works against the real servers.

The ACL line is read from the document itself, so the doc cannot drift from what works.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
import redis
from test_poller_support import FakeSpool, Running, redis_cfg, wait_for

from servers import SERVER_KINDS, start_server

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parent.parent / "docs" / "poller.md"
ALLOWED = {"client", "info", "slowlog", "latency", "acl", "config", "ping", "commandlog", "auth"}


def documented_acl(flavour: str) -> list[str]:
    text = DOC.read_text()
    m = re.search(rf"<!-- acl:{flavour} -->\s*```\s*\n(ACL SETUSER [^\n]+)\n```", text)
    assert m, f"docs/poller.md has no acl:{flavour} block"
    return m.group(1).split()


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_documented_least_privilege_user_can_run_every_poll(kind: str, tmp_path: Path) -> None:
    extra = {} if kind == "redis62" else {"enable-debug-command": "local"}
    rp = start_server(kind, tmp_path, config={"slowlog-log-slower-than": "0", "latency-monitor-threshold": "5",
                                              **extra})
    admin = rp.client()
    argv = documented_acl("valkey" if kind == "valkey9" else "redis")
    argv = [(">pw-for-shipper" if a == ">CHANGE-ME" else a) for a in argv]
    assert admin.execute_command(*argv) == "OK"
    pw = tmp_path / "pw"
    pw.write_text("pw-for-shipper\n")

    async def main() -> FakeSpool:
        spool = FakeSpool()
        run = Running(redis_cfg(rp.url, username="shipper", password_file=str(pw)), spool)
        await wait_for(lambda: run.source.rounds >= 2, what="two full rounds")
        await asyncio.to_thread(admin.config_set, "maxmemory", "123456789")
        await asyncio.to_thread(admin.execute_command, "DEBUG", "SLEEP", "0.02")
        bad = redis.Redis(host="127.0.0.1", port=rp.port, username="nobody", password="x", retry=None)
        with pytest.raises(redis.AuthenticationError):
            await asyncio.to_thread(bad.ping)
        await wait_for(lambda: spool.of("config_changed") and spool.of("latency_spike") and spool.of("acl_denied"),
                       what="config, latency and ACL events through the limited user")
        await run.close()
        return spool

    try:
        spool = asyncio.run(main())
        acl_log = admin.acl_log()
        own = [e for e in admin.slowlog_get(128) if e["client_name"] == b"redis-shipper"]
    finally:
        rp.stop()
    assert spool.of("redis_poll_disabled") == [] and spool.of("redis_unreachable") == []
    assert not [e for e in acl_log if e.get("username") == "shipper"], "the poller was denied something"
    assert own, "the poller's own commands should be in the slow log (threshold 0)"
    for e in own:
        words = e["command"].decode().lower().split()
        assert words[0] in ALLOWED, words
        assert "reset" not in words, "the poller must never reset the slow log or the ACL log"
    assert any(e["event"] == "slow_command" for e in spool.events)
