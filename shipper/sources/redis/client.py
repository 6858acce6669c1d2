"""One connection to one Redis, built from ``RedisSourceConfig``, with no hidden retries.

Why a single ``redis.asyncio`` *Connection* and not a ``Redis`` client with a pool: the poller
must know when it is talking to a new server process. A pool reconnects silently, and after a
restart the slowlog ids start again at 0, so a cursor from the old process would skip the new
entries. Here the connection only (re)connects when :meth:`RedisConnection.ensure` is called;
each connect bumps :attr:`generation`, and the source re-reads INFO (run_id) before trusting any
reply. redis-py's own retries are off (``Retry(NoBackoff(), 0)``): the source does the backoff
and reports it once, instead of redis-py hammering a sick server (a wrong password would
otherwise be tried 11 times and fill the ACL LOG).

Every redis-py client the agent builds for a ``type: redis`` source (this connection, and the
label discovery's INFO client in ``shipper/pipeline/labels.py``) comes from
:func:`connection_pool`, so credentials, TLS and timeouts follow one set of rules.

Replies are raw (bytes, RESP2): ``parsers.replies`` turns them into events, so the shapes the
tests record are exactly the shapes the code sees. ``CLIENT SETINFO`` is not sent (a
least-privilege user would be denied it, and each denial is an ACL LOG entry).
"""

from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import unquote, urlparse

from redis.asyncio.connection import ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from parsers.replies import SELF_CLIENT_NAME
from shipper.config import RedisSourceConfig, read_secret
from shipper.util.urls import redact_url

log = logging.getLogger(__name__)


def redis_address(url: str) -> str:
    """``host:port`` or the socket path: the low-cardinality, credential-free name of a Redis.

    Used in checkpoint keys (``redis:<addr>:slowlog``), metric labels and origins.
    """
    p = urlparse(url)
    if p.scheme == "unix":
        return p.path or url
    host = p.hostname or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{p.port or 6379}"


def safe_url(url: str) -> str:
    """The URL without user info and query (which may carry ``password=``)."""
    return redact_url(url, drop_query=True)


def resolve_password(cfg: RedisSourceConfig) -> str | None:
    """The password from (in order) ``password_file``, ``password_env``, ``password``, the URL."""
    pw = read_secret(inline=cfg.password, file=cfg.password_file, env=cfg.password_env, key="password")
    if pw is None:
        p = urlparse(cfg.url)
        if p.password:
            pw = unquote(p.password)
    return pw


def _with_scheme(url: str) -> str:
    """``host:port`` as ``redis://host:port``: redis-py wants a scheme, users sometimes omit it."""
    return url if "://" in url else f"redis://{url}"


def connection_kwargs(cfg: RedisSourceConfig, *, client_name: str) -> dict[str, Any]:
    """The redis-py connection options of one source, on top of what its URL says.

    - credentials: ``username`` (or the URL's user) and :func:`resolve_password`;
    - TLS: only with a ``rediss://`` URL (a ``tls:`` block on a plain URL is a ValueError, not a
      silent downgrade); ``ca_file``/``cert_file``/``key_file`` must exist;
      ``insecure_skip_verify`` turns off certificate and host name checks; ``server_name`` is
      not supported by redis-py (the URL host is checked), so it is warned about;
    - no hidden retries (``Retry(NoBackoff(), 0)``), no health-check PINGs, RESP2, and no
      ``CLIENT SETINFO`` (``driver_info=None``: a least-privilege user would be denied it, and
      each denial is an ACL LOG entry);
    - ``client_name``: CLIENT SETNAME at connect, so the server's logs name the agent.

    Raises ValueError when the options cannot be built (unreadable password_file, TLS file
    missing, ``tls:`` without ``rediss://``): callers report it like an outage and retry, so a
    fixed file is picked up.
    """
    url = _with_scheme(cfg.url)
    kwargs: dict[str, Any] = {
        "socket_timeout": cfg.timeout,
        "socket_connect_timeout": cfg.timeout,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_error": [],
        "client_name": client_name,
        "driver_info": None,
        "protocol": 2,
        "health_check_interval": 0,
    }
    parts = urlparse(url)
    user = cfg.username or (unquote(parts.username) if parts.username else None)
    if user:
        kwargs["username"] = user
    password = resolve_password(cfg)
    if password is not None:
        kwargs["password"] = password
    if cfg.tls is not None:
        if parts.scheme != "rediss":
            raise ValueError("tls: is set but the url does not start with rediss://")
        t = cfg.tls
        for path in (t.ca_file, t.cert_file, t.key_file):
            if path and not os.path.exists(path):
                raise ValueError(f"tls file {path!r} does not exist")
        kwargs["ssl_ca_certs"] = t.ca_file
        kwargs["ssl_certfile"] = t.cert_file
        kwargs["ssl_keyfile"] = t.key_file
        if t.insecure_skip_verify:
            kwargs["ssl_cert_reqs"] = "none"
            kwargs["ssl_check_hostname"] = False
        if t.server_name:
            log.warning("tls.server_name is not supported by the redis client; the url host is used")
    return kwargs


def connection_pool(cfg: RedisSourceConfig, *, client_name: str, decode_responses: bool = False,
                    **extra: Any) -> ConnectionPool:
    """A redis.asyncio pool for the source's URL (redis/rediss/unix, host, port, db, socket
    path) with :func:`connection_kwargs`; ``extra`` overrides them (the bench picks a parser)."""
    kwargs = {**connection_kwargs(cfg, client_name=client_name), "decode_responses": decode_responses, **extra}
    return ConnectionPool.from_url(_with_scheme(cfg.url), **kwargs)


class RedisConnection:
    """A single, explicitly (re)connected connection to one Redis."""

    def __init__(self, cfg: RedisSourceConfig):
        self.cfg = cfg
        self.address = redis_address(cfg.url)
        self.url = safe_url(cfg.url)
        self.generation = 0
        self._conn: Any = None
        #: extra redis-py connection kwargs (the bench uses it to force the pure-Python parser)
        self.extra_kwargs: dict[str, Any] = {}

    def _make(self) -> Any:
        # one connection taken from a pool that is never asked again: no silent reconnects
        return connection_pool(self.cfg, client_name=SELF_CLIENT_NAME, **self.extra_kwargs).make_connection()

    @property
    def connected(self) -> bool:
        return self._conn is not None and bool(self._conn.is_connected)

    async def ensure(self) -> bool:
        """Connect if needed. Returns True when a *new* connection was made (re-read identity)."""
        if self.connected:
            return False
        await self.close()
        self._conn = self._make()
        await self._conn.connect()
        self.generation += 1
        return True

    async def call(self, *args: Any) -> Any:
        """One command, raw reply. Raises redis exceptions; never reconnects by itself."""
        if not self.connected:
            raise ConnectionError("not connected")
        conn = self._conn
        from redis.exceptions import ResponseError

        try:
            await conn.send_command(*args, check_health=False)
            return await conn.read_response()
        except ResponseError:
            raise  # an error reply: the connection is fine and in step
        except BaseException:
            await self._drop_on_error()
            raise

    async def pipeline(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Several commands in one round trip on the same connection (so from the same process).

        Error replies are returned as exception objects in their slot, not raised, so one
        denied command does not hide the others' replies.
        """
        if not self.connected:
            raise ConnectionError("not connected")
        conn = self._conn
        from redis.exceptions import ResponseError

        try:
            await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            out: list[Any] = []
            for _ in commands:
                try:
                    out.append(await conn.read_response())
                except ResponseError as e:
                    out.append(e)
            return out
        except BaseException:
            await self._drop_on_error()
            raise

    async def _drop_on_error(self) -> None:
        """After a failed read the stream position is unknown: never reuse that connection."""
        conn = self._conn
        self._conn = None
        if conn is not None:
            try:
                await conn.disconnect(nowait=True)
            except Exception:  # noqa: BLE001 - closing a broken socket may fail in many ways
                pass

    async def close(self) -> None:
        conn = self._conn
        self._conn = None
        if conn is not None:
            try:
                await conn.disconnect()
            except Exception:  # noqa: BLE001
                pass
