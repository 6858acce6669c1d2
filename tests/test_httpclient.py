"""The sinks' HTTP client (shipper/util/httpclient.py) against raw asyncio servers that misbehave
the way real servers and gateways do: idle keep-alive connections closed, answers cut short,
chunked and gzip answers, answers that never come."""

from __future__ import annotations

import asyncio
import base64
import gzip
import time

import pytest

from shipper.util.httpclient import ClientError, HTTPClient


class RawServer:
    """A TCP server whose handler gets each connection's request heads and decides what to send."""

    def __init__(self, answer):
        self.answer = answer  # async (reader, writer, head: bytes, body: bytes) -> bool keep-alive
        self.connections = 0
        self.requests: list[tuple[bytes, bytes]] = []

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append((head, body))
                if not await self.answer(reader, writer, head, body):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def ok_204(reader, writer, head, body) -> bool:
    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    await writer.drain()
    return True


def run(coro):
    return asyncio.run(coro)


def test_two_requests_share_one_kept_alive_connection():
    async def main():
        async with RawServer(ok_204) as srv, HTTPClient(timeout=5) as c:
            r1 = await c.post(srv.url + "/loki/api/v1/push", b"one")
            r2 = await c.post(srv.url + "/loki/api/v1/push", b"two")
            return srv, r1, r2

    srv, r1, r2 = run(main())
    assert (r1.status, r2.status) == (204, 204)
    assert srv.connections == 1
    assert [b for _, b in srv.requests] == [b"one", b"two"]
    assert srv.requests[0][0].startswith(b"POST /loki/api/v1/push HTTP/1.1\r\n")
    assert b"content-length: 3" in srv.requests[0][0].lower()


def test_an_idle_connection_found_closed_is_not_used():
    async def close_after_answering(reader, writer, head, body) -> bool:
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")  # keep-alive by HTTP/1.1's default...
        await writer.drain()
        return False  # ...but the server closes it, as an idle timeout would

    async def main():
        async with RawServer(close_after_answering) as srv, HTTPClient(timeout=5) as c:
            await c.post(srv.url + "/x", b"first")
            await asyncio.sleep(0.1)
            r = await c.post(srv.url + "/x", b"second")
            return srv, r

    srv, r = run(main())
    assert r.status == 204
    assert [b for _, b in srv.requests] == [b"first", b"second"]
    assert srv.connections == 2


def test_a_request_the_server_closed_a_kept_alive_connection_on_is_sent_once_more_on_a_new_one():
    """The race of an idle timeout: the server closes just as the request goes out, unanswered."""
    per_connection: dict[int, int] = {}

    async def answer_once_per_connection(reader, writer, head, body) -> bool:
        n = per_connection[id(writer)] = per_connection.get(id(writer), 0) + 1
        if n > 1:
            return False  # closes without a byte of an answer
        writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        await writer.drain()
        return True

    async def main():
        async with RawServer(answer_once_per_connection) as srv, HTTPClient(timeout=5) as c:
            await c.post(srv.url + "/x", b"first")
            r = await c.post(srv.url + "/x", b"second")
            return srv, r

    srv, r = run(main())
    assert r.status == 204
    assert [b for _, b in srv.requests] == [b"first", b"second", b"second"]
    assert srv.connections == 2


def test_an_answer_cut_short_is_an_error_and_is_not_sent_again():
    async def half_an_answer(reader, writer, head, body) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()
        return False

    async def main():
        async with RawServer(half_an_answer) as srv, HTTPClient(timeout=5) as c:
            with pytest.raises(ClientError):
                await c.post(srv.url + "/x", b"body")
            return srv

    srv = run(main())
    assert len(srv.requests) == 1


def test_a_connection_closed_without_any_answer_on_a_new_connection_is_an_error():
    async def no_answer(reader, writer, head, body) -> bool:
        return False

    async def main():
        async with RawServer(no_answer) as srv, HTTPClient(timeout=5) as c:
            with pytest.raises(ClientError, match="without answering"):
                await c.post(srv.url + "/x", b"body")
            return srv

    assert len(run(main()).requests) == 1


def test_chunked_and_gzip_answers_are_read_whole_and_decompressed():
    doc = b'{"errors":false,"items":[' + b",".join([b'{"create":{"status":201}}'] * 500) + b"]}"
    packed = gzip.compress(doc)

    async def chunked_gzip(reader, writer, head, body) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n"
                     b"Content-Type: application/json\r\n\r\n")
        for i in range(0, len(packed), 100):
            part = packed[i:i + 100]
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    async def main():
        async with RawServer(chunked_gzip) as srv, HTTPClient(timeout=5) as c:
            return await c.post(srv.url + "/_bulk", b"{}\n")

    r = run(main())
    assert r.status == 200 and r.body == doc
    assert r.headers.get("Content-Type") == "application/json"  # any case


def test_an_answer_larger_than_max_body_is_refused():
    async def big(reader, writer, head, body) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n" + b"x" * 300000)
        await writer.drain()
        return True

    async def main():
        async with RawServer(big) as srv, HTTPClient(timeout=5, max_body=100_000) as c:
            with pytest.raises(ClientError, match="larger than 100000"):
                await c.get(srv.url + "/")

    run(main())


def test_a_server_that_never_answers_gives_a_timeout_within_the_bound():
    async def silent(reader, writer, head, body) -> bool:
        await asyncio.sleep(30)
        return False

    async def main():
        async with RawServer(silent) as srv, HTTPClient(timeout=0.5) as c:
            t0 = time.monotonic()
            with pytest.raises(TimeoutError):
                await c.post(srv.url + "/x", b"body")
            return time.monotonic() - t0

    assert run(main()) < 3


def test_a_refused_connection_is_a_client_error_naming_the_address():
    async def main():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        async with HTTPClient(timeout=5) as c:
            with pytest.raises(ClientError, match=f"127.0.0.1:{port}"):
                await c.get(f"http://127.0.0.1:{port}/ready")

    run(main())


def test_credentials_in_the_url_become_a_basic_authorization_header_and_query_params_are_encoded():
    async def main():
        async with RawServer(ok_204) as srv, HTTPClient(timeout=5) as c:
            url = srv.url.replace("http://", "http://prom%40user:p%3Ass@") + "/api/v1/query"
            await c.get(url, params={"query": 'redis_up{job="a b"}'})
            return srv

    head = run(main()).requests[0][0].decode()
    cred = base64.b64encode(b"prom@user:p:ss").decode()
    assert f"authorization: basic {cred}".lower() in head.lower()
    assert head.startswith("GET /api/v1/query?query=redis_up%7Bjob%3D%22a+b%22%7D HTTP/1.1")
    assert "prom%40user" not in head


def test_a_request_header_wins_over_the_clients_default_and_host_carries_the_port():
    async def main():
        async with RawServer(ok_204) as srv, HTTPClient(timeout=5, headers={"X-Scope-OrgID": "a"}) as c:
            await c.post(srv.url + "/x", b"", headers={"x-scope-orgid": "b"})
            return srv

    srv = run(main())
    head = srv.requests[0][0].decode().lower()
    assert "x-scope-orgid: b" in head and "x-scope-orgid: a" not in head
    assert f"host: {srv.url.removeprefix('http://')}" in head


def test_a_closed_client_refuses_requests():
    async def main():
        c = HTTPClient(timeout=1)
        await c.close()
        with pytest.raises(ClientError, match="closed"):
            await c.get("http://127.0.0.1:1/")

    run(main())


def test_a_streamed_answer_gives_its_lines_as_they_arrive_without_a_time_bound_on_the_body():
    release = asyncio.Event()

    async def watch(reader, writer, head, body) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (b'{"type":"ADDED"}\n{"type":', b'"MODIFIED"}\n'):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
            await asyncio.sleep(0.3)  # longer than the client's timeout: a quiet watch is not an error
        await release.wait()
        writer.write(b'8\r\n{"x":1}\n\r\n0\r\n\r\n')
        await writer.drain()
        return False

    async def main():
        async with RawServer(watch) as srv, HTTPClient(timeout=0.2) as c:
            got = []
            async with c.stream("GET", srv.url + "/api/v1/pods", params={"watch": "true"}) as r:
                assert r.status == 200
                async for line in r.iter_lines():
                    got.append(line)
                    if len(got) == 2:
                        release.set()
            return got

    assert run(main()) == [b'{"type":"ADDED"}', b'{"type":"MODIFIED"}', b'{"x":1}']
