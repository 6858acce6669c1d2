"""One HTTP/1.1 connection of :mod:`shipper.util.httpclient`: h11's state machine on an asyncio stream.

Sends a request, then reads its answer in two steps, the head and then the body, so that the
client can read a body whole (a push's answer) or as it comes (a Kubernetes watch).
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib

import h11

#: bytes asked of the socket per read
READ_SIZE = 65536


class ClientError(OSError):
    """The request did not get an answer: connection refused or reset, DNS, TLS, a bad answer."""


class StaleConnection(Exception):
    """The connection ended before any byte of an answer: the request may be sent again."""


class Headers(dict[str, str]):
    """An answer's headers, looked up without regard to case (names are stored lower-case)."""

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class Connection:
    """A connection to one server; one request at a time, kept alive when both sides allow it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = time.monotonic()
        self._got_any = False
        self._broken = False

    def usable(self, keepalive: float) -> bool:
        """Whether an idle connection may carry the next request."""
        return not self.writer.is_closing() and not self.reader.at_eof() \
            and time.monotonic() - self.idle_since < keepalive

    def reusable(self) -> bool:
        """After an answer read whole: whether both sides are done and the connection stays open."""
        c = self.h11
        if self._broken or self.writer.is_closing() or c.our_state is not h11.DONE or c.their_state is not h11.DONE:
            return False
        try:
            c.start_next_cycle()
        except h11.LocalProtocolError:
            return False
        self.idle_since = time.monotonic()
        return True

    def close(self) -> None:
        self.writer.close()

    async def send(self, method: str, target: str, head: list[tuple[str, str]], body: bytes | None) -> None:
        """Write the request. A connection reset while writing is not an error yet: a server may
        answer (413, 401) and close before reading a large body; the answer says."""
        c = self.h11
        self._got_any = False
        try:
            data = [c.send(h11.Request(method=method, target=target, headers=head))]
            if body:
                data.extend(c.send_with_data_passthrough(h11.Data(data=body)))
            data.append(c.send(h11.EndOfMessage()))
        except h11.LocalProtocolError as e:
            raise ClientError(f"cannot send this request: {e}") from None
        try:
            self.writer.writelines(data)
            await self.writer.drain()
        except (ConnectionError, ssl.SSLError):
            self._broken = True  # what the server answered can still be read; the connection ends after

    async def _event(self) -> h11.Event | type[h11.PAUSED]:
        """The next event of the answer, reading from the socket as needed."""
        c = self.h11
        while True:
            try:
                ev = c.next_event()
            except h11.RemoteProtocolError as e:
                if not self._got_any:
                    raise StaleConnection() from e
                raise ClientError(f"malformed HTTP answer: {e}") from None
            if ev is not h11.NEED_DATA:
                if isinstance(ev, h11.ConnectionClosed):
                    if not self._got_any:
                        raise StaleConnection()
                    raise ClientError("the server closed the connection mid-answer")
                return ev
            try:
                data = await self.reader.read(READ_SIZE)
            except (ConnectionError, ssl.SSLError) as e:
                if not self._got_any:
                    raise StaleConnection() from e
                raise ClientError(f"connection lost while reading the answer: {type(e).__name__}: {e}") from e
            if data:
                self._got_any = True
            c.receive_data(data)  # b"" tells h11 the server closed

    async def read_head(self) -> tuple[int, Headers]:
        """The answer's status and headers (informational 1xx answers skipped)."""
        while True:
            ev = await self._event()
            if isinstance(ev, h11.Response):
                headers = Headers()
                for k, v in ev.headers:
                    name, value = k.decode("latin-1").lower(), v.decode("latin-1")
                    headers[name] = f"{headers[name]}, {value}" if name in headers else value
                return ev.status_code, headers
            if not isinstance(ev, h11.InformationalResponse):
                raise ClientError(f"unexpected {type(ev).__name__} before the answer's head")

    async def next_chunk(self) -> bytes | None:
        """The body's next bytes as they arrive; ``None`` at its end."""
        while True:
            ev = await self._event()
            if isinstance(ev, h11.Data):
                if ev.data:
                    return bytes(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                return None

    async def read_body(self, headers: Headers, max_body: int) -> bytes:
        """The whole body, decompressed when the server compressed it; at most ``max_body`` bytes."""
        chunks: list[bytes] = []
        size = 0
        while (chunk := await self.next_chunk()) is not None:
            size += len(chunk)
            if size > max_body:
                raise ClientError(f"answer larger than {max_body} bytes")
            chunks.append(chunk)
        return decompress(b"".join(chunks), headers.get("content-encoding"), max_body)


def decompress(body: bytes, encoding: str | None, max_body: int) -> bytes:
    """A gzip or deflate body decompressed (at most ``max_body`` bytes); any other as it is."""
    encoding = (encoding or "").strip().lower()
    if encoding not in ("gzip", "x-gzip", "deflate") or not body:
        return body
    try:
        d = zlib.decompressobj(wbits=47 if encoding != "deflate" else 15)
        out = d.decompress(body, max_body)
    except zlib.error as e:
        raise ClientError(f"cannot decompress a {encoding} answer: {e}") from None
    if d.unconsumed_tail:
        raise ClientError(f"answer larger than {max_body} bytes once decompressed")
    return out
