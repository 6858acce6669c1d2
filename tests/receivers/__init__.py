"""In-process HTTP receivers that speak the real Loki and Elasticsearch contracts.

Each receiver runs an aiohttp.web app on its own event loop in a daemon thread, bound to a free
loopback port, so the same object serves a sync test, an asyncio test, a bench script, and an
agent started as a subprocess (it just posts to ``receiver.url``). Faults are injected from the
test thread; the receiver's state is guarded by one lock, and read through snapshot methods.

    with LokiReceiver() as loki:
        ... POST to loki.url ...
        loki.entries()            # what Loki would have stored

Each contract rule is cited in the receiver's module docstring; tests/test_receivers.py proves
the receivers refuse what the real servers refuse.

``max_body_bytes`` puts an nginx-like request size limit in front of either receiver (nginx's
``client_max_body_size`` is 1 MB by default, Elasticsearch's ``http.max_content_length`` 100 MB):
a body larger than that *as received* (compressed) is answered 413 before the handler decodes
anything. Set it on the object before or after ``start()``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: nginx's own error page for 413 (ngx_http_special_response.c), what a gateway sends back
NGINX_413_BODY = (
    "<html>\r\n<head><title>413 Request Entity Too Large</title></head>\r\n<body>\r\n"
    "<center><h1>413 Request Entity Too Large</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


@dataclass
class Fault:
    """One injected answer: the next request gets this status (and headers/body) instead."""

    status: int
    retry_after: str | None = None
    body: str = ""
    delay: float = 0.0
    #: when true the request is processed normally after ``delay`` (a slow server, not a failure)
    passthrough: bool = False


class ThreadedApp:
    """An aiohttp application served on 127.0.0.1:<port> from a background thread."""

    def __init__(self, port: int | None = None, *, ssl_context: ssl.SSLContext | None = None):
        self.port = port or free_port()
        #: serve HTTPS with this context (e.g. one that requires client certificates)
        self.ssl_context = ssl_context
        self.lock = threading.RLock()
        self._faults: list[Fault] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        #: refuse request bodies over this many bytes on the wire with 413, like a gateway (None: no limit)
        self.max_body_bytes: int | None = None
        #: with a limit set: (path, body bytes as received, refused with 413) of every request with a body
        self.sized_requests: list[tuple[str, int, bool]] = []

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    # -- to implement
    def make_app(self) -> web.Application:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- fault injection
    def fail_next(
        self, n: int = 1, status: int = 500, *, retry_after: str | float | None = None, body: str = "",
        delay: float = 0.0,
    ) -> None:
        """The next ``n`` requests are answered ``status`` (with Retry-After if given)."""
        ra = None if retry_after is None else str(retry_after)
        with self.lock:
            self._faults.extend(Fault(status, ra, body, delay) for _ in range(n))

    def delay_next(self, n: int, seconds: float) -> None:
        """The next ``n`` requests are held ``seconds`` before normal processing (client timeouts)."""
        with self.lock:
            self._faults.extend(Fault(0, delay=seconds, passthrough=True) for _ in range(n))

    def clear_faults(self) -> None:
        with self.lock:
            self._faults.clear()

    async def take_fault(self) -> web.Response | None:
        """Called by handlers first: an injected answer, or None to process the request."""
        with self.lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault is None:
            return None
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.passthrough:
            return None
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return self.fault_response(fault, headers)

    def fault_response(self, fault: Fault, headers: dict[str, str]) -> web.Response:
        return web.Response(status=fault.status, text=fault.body or f"injected {fault.status}", headers=headers)

    # -- request size limit (a gateway in front of the server)
    @web.middleware
    async def _size_limit(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """413 for a body over ``max_body_bytes``, counted on the compressed bytes, before the
        handler (and so before any decoding or injected fault), as nginx in front of Loki does.

        The body is read whole first: answering before the client has sent it all would make
        the client see a reset connection instead of the 413 (nginx discards the rest of the
        body itself, "lingering close"). ``request.read()`` caches it for the handler.
        """
        limit = self.max_body_bytes
        if limit is None or not request.body_exists:
            return await handler(request)
        raw = await request.read()
        refused = len(raw) > limit
        with self.lock:
            self.sized_requests.append((request.path, len(raw), refused))
        if refused:
            return web.Response(status=413, text=NGINX_413_BODY, content_type="text/html")
        return await handler(request)

    def refused_too_large(self) -> int:
        """How many requests the size limit refused with 413."""
        with self.lock:
            return sum(1 for _, _, refused in self.sized_requests if refused)

    # -- lifecycle
    def start(self) -> ThreadedApp:
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()
        if not self._started.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        if self._error is not None:
            raise RuntimeError(f"{type(self).__name__} failed to start") from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            # auto_decompress=False: the receivers see the bytes on the wire and apply
            # Content-Encoding themselves, with the real servers' rules
            app = self.make_app()
            app.middlewares.append(self._size_limit)
            self._runner = web.AppRunner(app, access_log=None, auto_decompress=False)
            loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=self.ssl_context)
            loop.run_until_complete(site.start())
        except BaseException as e:  # noqa: BLE001 - reported to start()
            self._error = e
            self._started.set()
            return
        self._started.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
