"""``RedisSource``: one scheduler loop polling one Redis over one connection.

Why one loop and one connection, not a task per poll kind: every reply must be read under a
known identity (run_id), and a single connection that never reconnects behind our back is what
makes that true (see client.py). The polls are short and bounded (SLOWLOG GET n, ACL LOG 128,
CONFIG GET *), so running them one after the other costs nothing and keeps the order of
checkpoints simple.

Each poll's events and checkpoint go out in one ``Batch``: when ``emit`` returns they are
durable together, which is the acknowledgement; a SIGKILL replays at most the batch in flight.
Trouble (refused, timeout, LOADING, NOAUTH/WRONGPASS, a restart) never escapes ``run``: the
loop backs off (0.5 s doubling to 30 s), counts each failure in
``redis_shipper_redis_poll_errors{kind}``, sets ``redis_shipper_redis_up`` and writes ONE
``redis_unreachable`` agent event when the trouble starts (or changes kind) and ONE
``redis_reachable`` when it ends, not one per retry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from redis.exceptions import (
    AuthenticationError,
    AuthenticationWrongNumberOfArgsError,
    BusyLoadingError,
    NoPermissionError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from parsers.events import Event, event_id
from shipper.agent_events import Category, Level, agent_event
from shipper.api import Batch, Source, SourceContext
from shipper.config import RedisSourceConfig
from shipper.observe import metrics
from shipper.util.waits import raise_if_cancelled, wait_or_stop

from . import acl_log, cluster, commandlog, config_drift, latency, slowlog
from .client import RedisConnection
from .identity import IdentityPoller
from .poll import PollDisabled, Poller, PollKind, PollResult, PollSetup, now_ms
from .slowlog import LogDrainer

log = logging.getLogger(__name__)

BACKOFF_START = 0.5
BACKOFF_MAX = 30.0

#: Every poll kind of a ``type: redis`` source, in the order they run when several are due in
#: the same round. A new kind is one module (a ``poll.Poller`` subclass and a
#: ``build(setup) -> list[Poller]``) and one entry here; see "How to add a poll kind" in
#: docs/architecture.md. The INFO identity is not listed: every other kind depends on it, so
#: the source runs it first (``identity.IdentityPoller``).
POLL_KINDS: tuple[PollKind, ...] = (
    PollKind("slowlog", enabled=lambda c: c.slowlog.enabled, build=slowlog.build),
    PollKind("commandlog", enabled=lambda c: c.commandlog.enabled, build=commandlog.build),
    PollKind("latency", enabled=lambda c: c.latency.enabled, build=latency.build),
    PollKind("acl_log", enabled=lambda c: c.acl_log.enabled, build=acl_log.build),
    PollKind("config", enabled=lambda c: c.config.enabled, build=config_drift.build),
    PollKind("cluster", enabled=lambda c: c.cluster.enabled, build=cluster.build),
)


class _EmitFailed(Exception):
    """``ctx.emit`` raised: the batch is not durable (kept apart from Redis errors, which are
    retried without forgetting what was read)."""


def classify_error(err: BaseException) -> str:
    """A low-cardinality kind for metrics and events: what went wrong, not the message."""
    text = str(err)
    if isinstance(err, BusyLoadingError) or text.startswith("LOADING"):
        return "loading"
    if isinstance(err, AuthenticationError | AuthenticationWrongNumberOfArgsError) or \
            any(t in text for t in ("NOAUTH", "WRONGPASS", "invalid password", "invalid username-password")):
        return "auth"
    if isinstance(err, NoPermissionError) or "NOPERM" in text:
        return "noperm"
    if isinstance(err, RedisTimeoutError | asyncio.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(err, RedisConnectionError | ConnectionError | OSError):
        return "connection"
    if isinstance(err, ResponseError):
        return "error_reply"
    return "other"


def _scrub(text: str, secret: str | None) -> str:
    """Error text for an event/log: bounded, and never containing the password."""
    if secret:
        text = text.replace(secret, "(redacted)")
    return text[:300]


class RedisSource(Source):
    """Polls SLOWLOG, COMMANDLOG, LATENCY LATEST, ACL LOG, CONFIG GET * and INFO of one Redis."""

    def __init__(self, cfg: RedisSourceConfig, *, name: str | None = None):
        self.cfg = cfg
        self.conn = RedisConnection(cfg)
        self.address = self.conn.address
        self.name = name or f"redis:{self.conn.url}"
        self.key_prefix = f"redis:{self.address}:"
        self.slowlog: LogDrainer | None = None
        self.commandlogs: list[LogDrainer] = []
        self.errors = 0
        self.down_events = 0
        #: completed scheduler rounds without error (tests and bench wait on it)
        self.rounds = 0
        self._agent_origin = f"redis:{self.address}:agent"
        self._disabled: dict[str, str] = {}  # kind -> reason, until the next reconnect
        self._warned: set[str] = set()

    # ---------------------------------------------------------------------------------------
    def _password(self) -> str | None:
        try:
            from .client import resolve_password

            return resolve_password(self.cfg)
        except Exception:  # noqa: BLE001 - only used to scrub error texts
            return None

    def _agent_event(self, event: str, message: str, *, level: Level = "warning",
                     category: Category = "connection", **fields: Any) -> Event:
        t = now_ms()
        ev = agent_event(event, message, level=level, category=category, at=t / 1000, redis=self.address, **fields)
        ev["origin"] = self._agent_origin
        ev["id"] = event_id(self._agent_origin, f"{event}:{t}")
        return ev

    async def _emit_agent(self, ctx: SourceContext, ev: Event) -> None:
        if ctx.emit_agent is not None:
            await ctx.emit_agent(ev)
        else:
            await ctx.emit(Batch([ev], {}))

    # ---------------------------------------------------------------------------------------
    async def run(self, ctx: SourceContext) -> None:
        cfg = self.cfg
        p = self.key_prefix
        #: what is durable: the positions at start plus those of every batch emit() accepted.
        #: After a failed emit the pollers are rebuilt from it, so nothing read but not spooled
        #: is skipped (their in-memory cursors had already moved past it).
        durable = {k: v for k, v in (ctx.positions or {}).items() if k.startswith(p)}

        def build() -> tuple[IdentityPoller, list[Poller]]:
            setup = PollSetup(cfg=cfg, address=self.address, prefix=p, durable=durable)
            ident = IdentityPoller(key=setup.key("identity"), origin=self._agent_origin,
                                   committed=setup.committed("identity"), interval=cfg.info.interval)
            pollers = [poller for kind in POLL_KINDS if kind.enabled(cfg) for poller in kind.build(setup)]
            names = [poller.name for poller in pollers]
            if len(set(names)) != len(names) or ident.name in names:
                raise RuntimeError(f"poll kinds with the same name: {names}")
            drainers = [poller for poller in pollers if isinstance(poller, LogDrainer)]
            self.slowlog = next((d for d in drainers if d.kind == "slow"), None)
            self.commandlogs = [d for d in drainers if d.kind != "slow"]
            return ident, pollers

        ident, pollers = build()

        async def emit(batch: Batch) -> None:
            try:
                await ctx.emit(batch)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the spool's trouble, not Redis's: handled apart below
                raise _EmitFailed(e) from e
            durable.update({k: v for k, v in batch.positions.items() if v is not None})

        # poller name -> when it is due (monotonic). Kept across rebuilds: the names are stable.
        due: dict[str, float] = {poller.name: 0.0 for poller in pollers}
        if cfg.info.enabled:
            due[ident.name] = time.monotonic() + ident.interval
        pending_positions: dict[str, Any] = {}
        pending_commit: list[Poller] = []

        down_since: float | None = None
        down_kind: str | None = None
        failures = 0
        backoff = BACKOFF_START
        up = metrics.REDIS_UP.labels(self.address)

        async def refresh_identity() -> None:
            res = await ident.poll(self.conn, role=None)
            run_id = ident.run_id
            for poller in pollers:
                poller.on_identity(run_id)
                warning = poller.on_settings(ident.settings)
                if warning is not None and f"{poller.name}:{warning.event}:{run_id}" not in self._warned:
                    self._warned.add(f"{poller.name}:{warning.event}:{run_id}")
                    await self._emit_agent(ctx, self._agent_event(
                        warning.event, warning.message, category=warning.category, level="warning"))
            if res.events or res.positions:
                await emit(Batch(res.events, res.positions))

        while not ctx.stop.is_set():
            raise_if_cancelled()
            try:
                if await self.conn.ensure():
                    self._disabled.clear()
                    await refresh_identity()
                    for k in due:
                        if k != ident.name:
                            due[k] = min(due[k], time.monotonic())
                now = time.monotonic()
                if ident.name in due and due[ident.name] <= now:
                    await refresh_identity()
                    due[ident.name] = now + ident.interval
                for poller in pollers:
                    name = poller.name
                    if name in self._disabled or due.get(name, 0) > time.monotonic():
                        continue
                    try:
                        res: PollResult = await poller.poll(self.conn, role=ident.role)
                    except PollDisabled as e:
                        self._disabled[name] = str(e)
                        if poller.warn_when_unsupported and f"disabled:{name}" not in self._warned:
                            self._warned.add(f"disabled:{name}")
                            await self._emit_agent(ctx, self._agent_event(
                                "redis_poll_disabled",
                                f"{name} poll of {self.address} disabled until reconnect: {str(e)[:200]}",
                                category="connection", poll=name))
                        continue
                    metrics.REDIS_LAST_POLL.labels(self.address, name).set(time.time())
                    for ev in res.events:
                        if ev.get("pid") is None and ev.get("source") != "agent":
                            ev["pid"] = ident.pid
                    pending_positions.update(res.positions)
                    if res.positions:
                        pending_commit.append(poller)
                    if res.events or (res.must_persist and pending_positions):
                        await emit(Batch(res.events, dict(pending_positions)))
                        pending_positions.clear()
                        for pl in pending_commit:
                            pl.committed()
                        pending_commit.clear()
                    due[name] = time.monotonic() + poller.next_interval(res)
                # a successful round: back up
                self.rounds += 1
                up.set(1)
                if down_since is not None:
                    downtime = time.monotonic() - down_since
                    await self._emit_agent(ctx, self._agent_event(
                        "redis_reachable", f"{self.address} reachable again after {downtime:.1f}s "
                        f"({failures} failed attempts)", level="notice", downtime_s=round(downtime, 3),
                        failed_attempts=failures))
                    down_since, down_kind, failures = None, None, 0
                backoff = BACKOFF_START
                live = [t for k, t in due.items() if k not in self._disabled]
                next_due = min(live) if live else time.monotonic() + 60
                # always yield to the loop, even when a poll is already due again
                wait = max(0.001, next_due - time.monotonic())
                await wait_or_stop(ctx.stop, wait)
            except asyncio.CancelledError:
                raise
            except _EmitFailed as e:
                # nothing of that batch is durable: forget what the pollers read since the last
                # durable positions and read it again after a pause (the spool may be full)
                log.warning("redis source %s: could not spool a batch (%s); re-reading from the durable "
                            "positions", self.name, _scrub(str(e.__cause__), self._password()))
                metrics.REDIS_POLL_ERRORS.labels(self.address, "spool").inc()
                pending_positions.clear()
                pending_commit.clear()
                ident, pollers = build()
                await self.conn.close()  # the reconnect re-reads the identity into the new pollers
                await wait_or_stop(ctx.stop, backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            except (TimeoutError, RedisError, OSError, ValueError) as e:
                # ValueError: the connection cannot even be built (password_file unreadable, TLS
                # file missing): reported like an outage, retried, so a fixed file is picked up
                kind = "config" if isinstance(e, ValueError) else classify_error(e)
                await self._on_failure(ctx, e, kind, down_kind)
                failures += 1
                self.errors += 1
                if down_since is None or kind != down_kind:
                    down_since = down_since if down_since is not None else time.monotonic()
                    down_kind = kind
                await self.conn.close()
                await wait_or_stop(ctx.stop, backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
            except Exception as e:  # a bug: log, count, restart from what is durable
                log.exception("redis source %s: unexpected error (continuing from the durable positions): %s",
                              self.name, _scrub(str(e), self._password()))
                metrics.REDIS_POLL_ERRORS.labels(self.address, "bug").inc()
                pending_positions.clear()
                pending_commit.clear()
                ident, pollers = build()
                await self.conn.close()  # the reconnect re-reads the identity into the new pollers
                await wait_or_stop(ctx.stop, backoff)
                backoff = min(backoff * 2, BACKOFF_MAX)
        if pending_positions:
            try:
                await ctx.emit(Batch([], dict(pending_positions)))
            except Exception:  # noqa: BLE001 - shutting down; the positions are an optimisation
                pass
        await self.conn.close()

    async def _on_failure(self, ctx: SourceContext, err: BaseException, kind: str, down_kind: str | None) -> None:
        metrics.REDIS_POLL_ERRORS.labels(self.address, kind).inc()
        metrics.REDIS_UP.labels(self.address).set(0)
        text = _scrub(f"{type(err).__name__}: {err}", self._password())
        if kind == down_kind:
            log.debug("redis %s still failing (%s): %s", self.address, kind, text)
            return
        log.warning("redis %s unreachable (%s): %s; retrying with backoff", self.address, kind, text)
        self.down_events += 1
        hint = {
            "auth": "check username/password_file (NOAUTH/WRONGPASS)",
            "loading": "Redis is loading its dataset",
            "timeout": f"no answer within {self.cfg.timeout}s",
            "connection": "connection refused or reset",
            "config": "check password_file/password_env/tls files",
        }.get(kind, "")
        await self._emit_agent(ctx, self._agent_event(
            "redis_unreachable", f"{self.address} unreachable ({kind}): {text}" + (f"; {hint}" if hint else ""),
            error_kind=kind, error=text))
