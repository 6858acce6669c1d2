"""A small asyncio HTTP/1.1 client: h11's protocol state machine on asyncio streams.

Why not aiohttp or httpx: the agent makes one kind of request (a POST of a compressed body, or a
GET, to a few servers, one at a time per sink) and lives beside Redis, where its memory is
counted. aiohttp costs 13.5 MB of RSS and 0.15 s of CPU to import and make its first request,
httpx2 11.4 MB; h11 on asyncio's streams 0.6 MB and 0.02 s (docs/dependencies.md has the
measurement). h11 (python-hyper, also the core of httpcore and uvicorn) does the part that is easy
to get wrong, the HTTP/1.1 framing: chunked or sized bodies, keep-alive, the end of a message.
This module only opens connections, keeps idle ones and applies timeouts
(:mod:`shipper.util.http_connection` is one connection).

The contract:

* :meth:`HTTPClient.request` sends one request and reads the whole answer; any status is a
  :class:`Response`, never an exception. Transport trouble (refused, reset, DNS, TLS, a
  malformed answer) raises :class:`ClientError`, an :class:`OSError`; the ``timeout`` (connect,
  send and read together) raises :class:`TimeoutError`. :meth:`HTTPClient.stream` bounds only
  the connection and the answer's head, and hands over the body as it comes (a watch).
* A request on a kept-alive connection that the server closed meanwhile is sent once more on a
  new connection, but only when no byte of an answer came back: the senders here deliver at least
  once, and their receivers (Loki, Elasticsearch with ids) deduplicate a repeat.
* Credentials in the URL (``https://user:pass@host``) become a Basic ``Authorization`` header
  unless the request has one; nothing here logs a header or a URL.
* Answers compressed with gzip or deflate are decompressed; bodies over ``max_body`` bytes are
  refused (a ClientError), so a wrong URL cannot fill the agent's memory.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import SplitResult, unquote, urlencode, urlsplit

from .http_connection import ClientError, Connection, Headers, StaleConnection

__all__ = ["ClientError", "Headers", "HTTPClient", "Response", "StreamedResponse", "default_ssl_context"]

#: how long an idle kept-alive connection is kept (servers close theirs after 60-120 s; a
#: connection the server closed first costs one resend, see the module docstring)
KEEPALIVE_S = 15.0
#: idle connections kept per server
MAX_IDLE = 4
#: the largest answer read (Loki query pages and Elasticsearch search pages are the big ones)
MAX_BODY = 256 * 1024 * 1024

_Key = tuple[str, str, int, str | None]


@dataclass
class Response:
    """An HTTP answer, read whole."""

    status: int
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def text(self, limit: int | None = None) -> str:
        return (self.body if limit is None else self.body[:limit]).decode("utf-8", "replace")


class StreamedResponse:
    """An answer whose body is read as it arrives (:meth:`HTTPClient.stream`)."""

    def __init__(self, conn: Connection, status: int, headers: Headers, max_body: int) -> None:
        self._conn = conn
        self.status = status
        self.headers = headers
        self.max_body = max_body

    async def read(self) -> bytes:
        """The rest of the body, whole."""
        return await self._conn.read_body(self.headers, self.max_body)

    async def iter_lines(self) -> AsyncIterator[bytes]:
        """The body's lines as they arrive, without their ``\\n``; a line over ``max_body`` is an error."""
        pending = b""
        while (chunk := await self._conn.next_chunk()) is not None:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line
            if len(pending) > self.max_body:
                raise ClientError(f"a line of the answer is longer than {self.max_body} bytes")
        if pending:
            yield pending


_default_ssl: ssl.SSLContext | None = None


def default_ssl_context() -> ssl.SSLContext:
    """The system's CA store, built once (a context costs ~1.5 MB and ~25 ms)."""
    global _default_ssl
    if _default_ssl is None:
        _default_ssl = ssl.create_default_context()
    return _default_ssl


class HTTPClient:
    """Pooled keep-alive connections to any number of servers; one request per connection at a time.

    ``ssl_context`` is used for ``https`` URLs (``None``: the system's CA store); ``headers`` are
    sent with every request (a request's own headers win); ``timeout`` bounds each request as a
    whole and ``connect_timeout`` its connection.
    """

    def __init__(self, *, timeout: float, connect_timeout: float = 10.0, ssl_context: ssl.SSLContext | None = None,
                 headers: Mapping[str, str] | None = None, max_body: int = MAX_BODY) -> None:
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.ssl_context = ssl_context
        self.headers = dict(headers or {})
        self.max_body = max_body
        self._idle: dict[_Key, list[Connection]] = {}
        self._closed = False

    async def __aenter__(self) -> HTTPClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def get(self, url: str, *, params: Mapping[str, str] | None = None,
                  headers: Mapping[str, str] | None = None) -> Response:
        return await self.request("GET", url, params=params, headers=headers)

    async def post(self, url: str, body: bytes, *, headers: Mapping[str, str] | None = None,
                   server_hostname: str | None = None) -> Response:
        return await self.request("POST", url, body=body, headers=headers, server_hostname=server_hostname)

    async def request(self, method: str, url: str, *, body: bytes | None = None,
                      params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None,
                      server_hostname: str | None = None) -> Response:
        """Send one request and read its whole answer (see the module docstring for the errors)."""
        key, target, head = self._prepare(method, url, params, headers, body, server_hostname)
        async with asyncio.timeout(self.timeout):
            conn, status, resp_headers = await self._send(key, method, target, head, body)
            try:
                data = await conn.read_body(resp_headers, self.max_body)
            except BaseException:
                conn.close()
                raise
        self._release(key, conn)
        return Response(status, resp_headers, data)

    @asynccontextmanager
    async def stream(self, method: str, url: str, *, params: Mapping[str, str] | None = None,
                     headers: Mapping[str, str] | None = None) -> AsyncIterator[StreamedResponse]:
        """Send one request; yield its answer once the head arrived (within ``timeout``), its
        body to be read as it comes, without a time bound. The connection closes on exit."""
        key, target, head = self._prepare(method, url, params, headers, None, None)
        async with asyncio.timeout(self.timeout):
            conn, status, resp_headers = await self._send(key, method, target, head, None)
        try:
            yield StreamedResponse(conn, status, resp_headers, self.max_body)
        finally:
            conn.close()

    async def close(self) -> None:
        """Close every idle connection; the client refuses new requests afterwards."""
        self._closed = True
        conns = [c for cs in self._idle.values() for c in cs]
        self._idle.clear()
        for c in conns:
            c.close()
        if conns:  # a TLS server that never acknowledges the close must not hold up a shutdown
            await asyncio.wait([asyncio.ensure_future(_closed(c)) for c in conns], timeout=1.0)

    # --- internals

    def _prepare(self, method: str, url: str, params: Mapping[str, str] | None, headers: Mapping[str, str] | None,
                 body: bytes | None, server_hostname: str | None) -> tuple[_Key, str, list[tuple[str, str]]]:
        if self._closed:
            raise ClientError("the HTTP client is closed")
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(f"not an http(s) URL: {parts.scheme}://{parts.hostname or ''}")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError as e:
            raise ClientError(f"bad port in URL: {e}") from None
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if params:
            target += ("&" if parts.query else "?") + urlencode(params)
        head = self._head(method, parts, port, body, headers)
        return (scheme, parts.hostname, port, server_hostname), target, head

    def _head(self, method: str, parts: SplitResult, port: int, body: bytes | None,
              headers: Mapping[str, str] | None) -> list[tuple[str, str]]:
        host = parts.hostname or ""
        merged = {k.lower(): (k, v) for k, v in self.headers.items()}
        merged.update({k.lower(): (k, v) for k, v in (headers or {}).items()})
        default_port = 443 if parts.scheme.lower() == "https" else 80
        name = f"[{host}]" if ":" in host else host
        out = [("Host", name if port == default_port else f"{name}:{port}")]
        if parts.username is not None and "authorization" not in merged:
            user, password = unquote(parts.username), unquote(parts.password or "")
            cred = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            out.append(("Authorization", f"Basic {cred}"))
        if "accept-encoding" not in merged:
            out.append(("Accept-Encoding", "gzip, deflate"))
        for k, v in merged.values():
            if k.lower() not in ("host", "content-length", "transfer-encoding"):
                out.append((k, v))
        if body is not None or method in ("POST", "PUT", "PATCH"):
            out.append(("Content-Length", str(len(body or b""))))
        return out

    async def _send(self, key: _Key, method: str, target: str, head: list[tuple[str, str]],
                    body: bytes | None) -> tuple[Connection, int, Headers]:
        """Send on an idle or a new connection and read the answer's head; a kept-alive connection
        the server had closed (no byte of an answer) is replaced once."""
        while True:
            conn, reused = await self._connection(key)
            try:
                await conn.send(method, target, head, body)
                status, headers = await conn.read_head()
            except StaleConnection:
                conn.close()
                if reused:
                    continue
                raise ClientError("the server closed the connection without answering") from None
            except BaseException:
                conn.close()
                raise
            return conn, status, headers

    async def _connection(self, key: _Key) -> tuple[Connection, bool]:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.usable(KEEPALIVE_S):
                return conn, True
            conn.close()
        scheme, host, port, server_hostname = key
        ctx = None
        if scheme == "https":
            ctx = self.ssl_context if self.ssl_context is not None else default_ssl_context()
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=ctx, server_hostname=(server_hostname or host) if ctx else None)
        except TimeoutError:
            raise TimeoutError(f"connecting to {host}:{port} took longer than {self.connect_timeout:g}s") from None
        except OSError as e:  # refused, DNS (socket.gaierror), TLS (ssl.SSLError)
            raise ClientError(f"cannot connect to {host}:{port}: {type(e).__name__}: {e}") from e
        return Connection(reader, writer), False

    def _release(self, key: _Key, conn: Connection) -> None:
        if self._closed or not conn.reusable():
            conn.close()
            return
        idle = self._idle.setdefault(key, [])
        if len(idle) >= MAX_IDLE:
            conn.close()
            return
        idle.append(conn)


async def _closed(conn: Connection) -> None:
    try:
        await conn.writer.wait_closed()
    except (OSError, ssl.SSLError):
        pass
