"""A small asyncio HTTP/1.1 client: h11's protocol state machine on asyncio streams.

Why not aiohttp or httpx: the agent makes one kind of request (a POST of a compressed body, or a
GET, to a few servers, one at a time per sink) and lives beside Redis, where its memory is
counted. aiohttp costs 13.5 MB of RSS and 0.15 s of CPU to import and make its first request,
httpx2 11.4 MB; h11 on asyncio's streams 0.6 MB and 0.02 s (docs/dependencies.md has the
measurement). h11 (python-hyper, also the core of httpcore and uvicorn) does the part that is easy
to get wrong, the HTTP/1.1 framing: chunked or sized bodies, keep-alive, the end of a message.
This module only opens connections, keeps idle ones and applies timeouts.

The contract:

* :meth:`HTTPClient.request` sends one request and reads the whole answer; any status is a
  :class:`Response`, never an exception. Transport trouble (refused, reset, DNS, TLS, a
  malformed answer) raises :class:`ClientError`, an :class:`OSError`; the ``timeout`` (connect,
  send and read together) raises :class:`TimeoutError`.
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
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import SplitResult, unquote, urlencode, urlsplit

import h11

#: how long an idle kept-alive connection is kept (servers close theirs after 60-120 s; a
#: connection the server closed first costs one resend, see the module docstring)
KEEPALIVE_S = 15.0
#: idle connections kept per server
MAX_IDLE = 4
#: the largest answer read (Loki query pages and Elasticsearch search pages are the big ones)
MAX_BODY = 256 * 1024 * 1024
_READ = 65536


class ClientError(OSError):
    """The request did not get an answer: connection refused or reset, DNS, TLS, a bad answer."""


class Headers(dict[str, str]):
    """An answer's headers, looked up without regard to case (names are stored lower-case)."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


@dataclass
class Response:
    """An HTTP answer, read whole."""

    status: int
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    def text(self, limit: int | None = None) -> str:
        return (self.body if limit is None else self.body[:limit]).decode("utf-8", "replace")


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    h11: h11.Connection
    idle_since: float = 0.0

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof() \
            and time.monotonic() - self.idle_since < KEEPALIVE_S

    def close(self) -> None:
        self.writer.close()


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
        self._idle: dict[tuple[str, str, int, str | None], list[_Conn]] = {}
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
        host = parts.hostname
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if params:
            target += ("&" if parts.query else "?") + urlencode(params)
        head = self._head(method, host, port, scheme, parts, body, headers)
        key = (scheme, host, port, server_hostname)
        async with asyncio.timeout(self.timeout):
            while True:
                conn, reused = await self._connection(key)
                try:
                    resp = await self._exchange(conn, method, target, head, body)
                except _StaleConnection:
                    conn.close()
                    if reused:
                        continue  # the server closed an idle connection: once more on a new one
                    raise ClientError("the server closed the connection without answering") from None
                except BaseException:
                    conn.close()
                    raise
                self._release(key, conn)
                return resp

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

    def _head(self, method: str, host: str, port: int, scheme: str, parts: SplitResult, body: bytes | None,
              headers: Mapping[str, str] | None) -> list[tuple[str, str]]:
        merged = {k.lower(): (k, v) for k, v in self.headers.items()}
        merged.update({k.lower(): (k, v) for k, v in (headers or {}).items()})
        default_port = 443 if scheme == "https" else 80
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

    async def _connection(self, key: tuple[str, str, int, str | None]) -> tuple[_Conn, bool]:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.usable():
                return conn, True
            conn.close()
        scheme, host, port, server_hostname = key
        ctx = None
        if scheme == "https":
            ctx = self.ssl_context if self.ssl_context is not None else default_ssl_context()
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=ctx, server_hostname=(server_hostname or host) if ctx else None,
                    limit=_READ)
        except TimeoutError:
            raise TimeoutError(f"connecting to {host}:{port} took longer than {self.connect_timeout:g}s") from None
        except OSError as e:  # refused, DNS (socket.gaierror), TLS (ssl.SSLError)
            raise ClientError(f"cannot connect to {host}:{port}: {type(e).__name__}: {e}") from e
        return _Conn(reader, writer, h11.Connection(h11.CLIENT)), False

    def _release(self, key: tuple[str, str, int, str | None], conn: _Conn) -> None:
        c = conn.h11
        if self._closed or conn.writer.is_closing() or c.our_state is not h11.DONE or c.their_state is not h11.DONE:
            conn.close()
            return
        try:
            c.start_next_cycle()
        except h11.LocalProtocolError:
            conn.close()
            return
        idle = self._idle.setdefault(key, [])
        if len(idle) >= MAX_IDLE:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def _exchange(self, conn: _Conn, method: str, target: str, head: list[tuple[str, str]],
                        body: bytes | None) -> Response:
        c = conn.h11
        try:
            data = [c.send(h11.Request(method=method, target=target, headers=head))]
            if body:
                data.extend(c.send_with_data_passthrough(h11.Data(data=body)))
            data.append(c.send(h11.EndOfMessage()))
        except h11.LocalProtocolError as e:
            raise ClientError(f"cannot send this request: {e}") from None
        unsent: BaseException | None = None
        try:
            conn.writer.writelines(data)
            await conn.writer.drain()
        except (ConnectionError, ssl.SSLError) as e:
            # a server may answer (413, 401) and close before reading a large body: its answer,
            # if there is one, is still to be read; if there is none, the connection was stale
            unsent = e
        resp = await self._read_response(conn)
        if unsent is not None:
            conn.close()
        return resp

    async def _read_response(self, conn: _Conn) -> Response:
        c = conn.h11
        status = 0
        headers = Headers()
        chunks: list[bytes] = []
        size = 0
        got_any = False
        while True:
            try:
                ev = c.next_event()
            except h11.RemoteProtocolError as e:
                if not got_any:
                    raise _StaleConnection() from e
                raise ClientError(f"malformed HTTP answer: {e}") from None
            if ev is h11.NEED_DATA:
                try:
                    data = await conn.reader.read(_READ)
                except (ConnectionError, ssl.SSLError) as e:
                    if not got_any:
                        raise _StaleConnection() from e
                    raise ClientError(f"connection lost while reading the answer: {type(e).__name__}: {e}") from e
                if data:
                    got_any = True
                c.receive_data(data)  # b"" tells h11 the server closed
                continue
            if isinstance(ev, h11.InformationalResponse):
                continue
            if isinstance(ev, h11.Response):
                status = ev.status_code
                for k, v in ev.headers:
                    name = k.decode("latin-1").lower()
                    value = v.decode("latin-1")
                    headers[name] = f"{headers[name]}, {value}" if name in headers else value
            elif isinstance(ev, h11.Data):
                size += len(ev.data)
                if size > self.max_body:
                    raise ClientError(f"answer larger than {self.max_body} bytes")
                chunks.append(bytes(ev.data))
            elif isinstance(ev, h11.EndOfMessage):
                break
            elif isinstance(ev, h11.ConnectionClosed):
                if not got_any:
                    raise _StaleConnection()
                raise ClientError("the server closed the connection mid-answer")
        body = b"".join(chunks)
        encoding = (headers.get("content-encoding") or "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate") and body:
            try:
                d = zlib.decompressobj(wbits=47 if encoding != "deflate" else 15)
                body = d.decompress(body, self.max_body)
                if d.unconsumed_tail:
                    raise ClientError(f"answer larger than {self.max_body} bytes once decompressed")
            except zlib.error as e:
                raise ClientError(f"cannot decompress a {encoding} answer: {e}") from None
        return Response(status, headers, body)


async def _closed(conn: _Conn) -> None:
    try:
        await conn.writer.wait_closed()
    except (OSError, ssl.SSLError):
        pass


class _StaleConnection(Exception):
    """The connection ended before any byte of an answer."""
