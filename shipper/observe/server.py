"""The agent's own HTTP endpoints: ``/metrics``, ``/healthz`` and ``/ready``.

The standard library's ``ThreadingHTTPServer`` on a thread of its own, not an asyncio HTTP
server: it costs no more than http.server's imports (docs/performance-footprint.md).
``/healthz`` and ``/ready`` still prove that *the event loop* answers: their handlers run a
coroutine on the loop and wait for it (5 s at most), so a stuck loop -- the one that runs every
source and sink -- fails them and Kubernetes / systemd can restart the agent; a thread answering
on its own would keep saying "ok".

* ``/metrics``: ``shipper.observe.metrics.REGISTRY`` in the Prometheus text format (or
  OpenMetrics when the scraper asks for it), plus the process and platform collectors
  (``process_resident_memory_bytes``, ``process_open_fds``, ``python_info``...) registered into
  that same registry here, so a single scrape tells memory, file descriptors and CPU too.
* ``/healthz``: liveness. 200 ``ok`` whenever the loop runs this handler. Nothing else is
  checked on purpose: a sink being down is no reason to restart the agent (a restart would not
  bring Loki back, and the spool keeps the events meanwhile).
* ``/ready``: readiness. 200 when the agent has started, no source has crashed or is in the
  supervisor's crash backoff (shipper/observe/health.py), no sink worker task has ended, no sink
  has been failing for longer than ``sink_failure_grace`` seconds or has had events waiting
  without acknowledging any for ``ready.stall_after`` (a worker stuck in whatever it waits on),
  and no state write fails; otherwise 503 with a JSON body that names each part that is not
  ready and why. A few failed requests (a Loki restart, one 429) do not flip it: only a failure
  that lasts.
* ``POST /-/reload``: the SIGHUP reload (as Prometheus and Alloy have it), for images without
  ``kill``; loopback clients only; 400 with the errors when the new config is broken.

The listen address is ``host:port`` (``127.0.0.1:9377`` by default: loopback unless the user
says otherwise; ``[::1]:9377`` for IPv6; ``:9377`` or ``0.0.0.0:9377`` for every interface, as
Kubernetes probes need); ``""`` disables the server. A malformed address or a port already in
use is a :class:`~shipper.config.ConfigError` naming ``metrics.listen``, so ``run`` exits 2 with
a clear message instead of a traceback.
"""

from __future__ import annotations

import asyncio
import inspect
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import TimeoutError as FutureTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from ..config import ConfigError
from ..pipeline import state_guard
from . import metrics
from .exposition import choose_encoder
from .health import DEFAULT_STALL_AFTER

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:9377"
#: a sink may fail this long (seconds) before /ready says so: rides out a Loki restart
DEFAULT_SINK_FAILURE_GRACE = 60.0
#: source states that count as ready ("done": a source that finished its work, e.g. a one-shot)
READY_SOURCE_STATES = frozenset({"running", "idle", "done"})
#: how long /healthz and /ready wait for the event loop to run their coroutine
LOOP_TIMEOUT = 5.0

Status = dict[str, Any]
StatusFn = Callable[[], Status | Awaitable[Status]]


def _register_runtime_collectors() -> None:
    """Add process/platform/GC metrics to the agent's registry, once.

    They live in prometheus_client's *default* registry normally; the agent serves its own
    registry (so tests and embedders never see two agents' metrics mixed), hence new
    instances registered into ``metrics.REGISTRY``. Registering twice raises ``ValueError``
    (duplicated timeseries), which is what a re-import or a second call hits: ignored.
    """
    for make in (
        lambda: ProcessCollector(registry=metrics.REGISTRY),
        lambda: PlatformCollector(registry=metrics.REGISTRY),
        lambda: GCCollector(registry=metrics.REGISTRY),
    ):
        try:
            make()
        except ValueError:
            pass


_register_runtime_collectors()


def parse_listen(listen: str) -> tuple[str, int] | None:
    """``host:port`` -> ``(host, port)``; ``""`` -> ``None`` (disabled); else ValueError.

    ``:9377`` means every interface (``0.0.0.0``), like Go's ``net.Listen`` that Prometheus
    exporters use; a bare port is refused because the default is loopback and a user who
    means "every interface" should say it.
    """
    listen = listen.strip()
    if not listen:
        return None
    if listen.startswith("["):
        host, sep, rest = listen[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{listen!r}: expected [ipv6]:port, e.g. [::1]:9377")
        port_s = rest[1:]
    else:
        host, sep, port_s = listen.rpartition(":")
        if not sep:
            raise ValueError(f"{listen!r}: expected host:port, e.g. 127.0.0.1:9377 (or 0.0.0.0:9377 for every "
                             "interface)")
        if ":" in host:
            raise ValueError(f"{listen!r}: write an IPv6 address in brackets, e.g. [::1]:9377")
    if not port_s.isdigit() or not 0 <= int(port_s) < 65536:
        raise ValueError(f"{listen!r}: the port must be a number from 1 to 65535 (0: any free port)")
    return (host or "0.0.0.0", int(port_s))


def readiness(status: Status, *, now: float | None = None,
              sink_failure_grace: float = DEFAULT_SINK_FAILURE_GRACE) -> tuple[bool, dict[str, Any]]:
    """Decide readiness from a status dict; return ``(ready, body)``.

    ``body["not_ready"]`` lists one ``{"part", "reason"}`` per problem, so an operator reading
    ``kubectl describe`` or ``curl /ready`` sees at once which sink or source is the cause.
    """
    now = time.time() if now is None else now
    problems: list[dict[str, str]] = []
    if not status.get("started"):
        problems.append({"part": "agent", "reason": "not started yet"})
    for name, s in sorted((status.get("sinks") or {}).items()):
        if not isinstance(s, dict):
            continue
        since = s.get("failing_since")
        if s.get("healthy", True) or since is None:
            continue
        failing_for = max(0.0, now - float(since))
        if failing_for > sink_failure_grace:
            pending = s.get("pending")
            error = s.get("last_error")
            problems.append({
                "part": f"sink:{name}",
                "reason": f"failing for {failing_for:.0f}s (more than {sink_failure_grace:g}s)"
                          + (f"; {pending} events waiting in the spool" if pending is not None else "")
                          + (f"; last error: {error}" if error else ""),
            })
    named = {p["part"] for p in problems}
    stall_after = float(status.get("stall_after") or DEFAULT_STALL_AFTER)
    for name, s in sorted((status.get("sinks") or {}).items()):
        if not isinstance(s, dict) or f"sink:{name}" in named:
            continue
        pending = s.get("pending")
        waiting = f"; {pending} events waiting in the spool" if pending is not None else ""
        if s.get("last_error"):
            waiting += f"; last error: {s['last_error']}"
        if s.get("dead"):
            problems.append({"part": f"sink:{name}", "reason": f"worker stopped: {s['dead']}{waiting}"})
        elif float(s.get("stalled_for") or 0.0) > stall_after:
            problems.append({"part": f"sink:{name}",
                             "reason": f"stuck: nothing acknowledged for {float(s['stalled_for']):.0f}s "
                                       f"(ready.stall_after {stall_after:.0f}s){waiting}"})
    for part, reason in sorted(state_guard.failing().items()):
        problems.append({"part": f"state:{part}", "reason": reason})
    for name, state in sorted((status.get("sources") or {}).items()):
        if state not in READY_SOURCE_STATES:
            problems.append({"part": f"source:{name}", "reason": str(state)})
    body: dict[str, Any] = {"ready": not problems}
    if problems:
        body["not_ready"] = problems
    return not problems, body


def agent_status(agent: Any) -> Status:
    """The status dict of a running :class:`shipper.pipeline.runtime.Agent`, read without touching it.

    Duck-typed on purpose (observe must not import the runtime): ``agent.started`` (an
    ``asyncio.Event``), ``agent.workers`` (each with ``.sink.name``, ``.healthy``,
    ``.failing_since``) and ``agent.sink_tasks`` (same order; one that ended while
    ``agent.stop_sinks`` is not set is a dead worker), ``agent.spool.pending(name)`` and
    ``.stalled_for(name)``, ``agent.cfg.ready.stall_after``, ``agent.sources`` and
    ``agent.source_tasks`` (same order), ``agent.health`` (sources in crash backoff). A source
    task that ended with an exception is "crashed"; one still running is "running" unless the
    supervisor reported it in crash backoff (the supervisor restarts crashed sources, so a
    "crashed" state is rare and shows a source that gave up).
    """
    started = getattr(agent, "started", None)
    status: Status = {"started": bool(started is not None and started.is_set()), "sinks": {}, "sources": {}}
    ready_cfg = getattr(getattr(agent, "cfg", None), "ready", None)
    status["stall_after"] = float(getattr(ready_cfg, "stall_after", DEFAULT_STALL_AFTER))
    grace = getattr(ready_cfg, "sink_failure_grace", None)
    if grace is not None:
        status["sink_failure_grace"] = float(grace)
    spool = getattr(agent, "spool", None)
    stopping = getattr(agent, "stop_sinks", None)
    sink_tasks = list(getattr(agent, "sink_tasks", []) or [])
    for i, w in enumerate(getattr(agent, "workers", []) or []):
        name = w.sink.name
        try:
            pending: int | None = int(spool.pending(name)) if spool is not None else None
        except Exception:  # noqa: BLE001 - a closed spool must not break /ready
            pending = None
        stalled_for = getattr(spool, "stalled_for", None)
        try:
            stalled = float(stalled_for(name)) if stalled_for is not None else 0.0
        except Exception:  # noqa: BLE001 - same
            stalled = 0.0
        entry: dict[str, Any] = {"healthy": bool(w.healthy), "failing_since": w.failing_since, "pending": pending,
                                 "stalled_for": stalled, "last_error": getattr(w, "last_error", None)}
        task = sink_tasks[i] if i < len(sink_tasks) else None
        if task is not None and task.done() and not (stopping is not None and stopping.is_set()):
            entry["dead"] = _ended(task)
        status["sinks"][name] = entry
    dynamic = getattr(agent, "dynamic", None)
    if dynamic is not None and hasattr(dynamic, "running"):  # every source, also those added at run time
        pairs = [(r.source, r.task) for r in list(dynamic.running.values())]
        sources, tasks = [p[0] for p in pairs], [p[1] for p in pairs]
    else:
        sources = list(getattr(agent, "sources", []) or [])
        tasks = list(getattr(agent, "source_tasks", []) or [])
    health = getattr(agent, "health", None)
    for i, src in enumerate(sources):
        name = getattr(src, "name", f"source{i}")
        if i >= len(tasks):
            state = "not started"
        else:
            t = tasks[i]
            if not t.done():
                state = "running"
            elif t.cancelled():
                state = "stopped"
            elif t.exception() is not None:
                state = "crashed"
            else:
                state = "done"
        if state == "running" and health is not None:  # between two crashes the task runs on
            state = health.source_problem(name) or state
        status["sources"][name] = state
    return status


def _ended(task: asyncio.Task[Any]) -> str:
    """How a task that should still run ended: its exception, cancelled, or returned."""
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    if exc is not None:
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    return "returned while the agent runs"


class ObserveServer:
    """``/metrics``, ``/healthz`` and ``/ready`` (see module docstring).

    Wiring (shipper/pipeline/runtime.py or commands/run.py)::

        server = ObserveServer(cfg.metrics.listen, lambda: agent_status(agent))
        await server.start()      # ConfigError("metrics.listen: ...") if it cannot listen
        ...
        await server.close()      # after agent.shutdown(): /metrics answers during the flush
    """

    def __init__(self, listen: str, status: StatusFn, *,
                 sink_failure_grace: float = DEFAULT_SINK_FAILURE_GRACE) -> None:
        try:
            self.address = parse_listen(listen)
        except ValueError as e:
            raise ConfigError([("metrics.listen", str(e))]) from None
        self.listen = listen
        self.status = status
        self.sink_failure_grace = sink_failure_grace
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: the bound port (useful with port 0 in tests)
        self.port: int | None = None
        self.bound: tuple[str, int] | None = None
        #: ``POST /-/reload`` (loopback clients only): returns None once a reload is requested, else
        #: why not (the new config's errors); None here: the endpoint answers 404
        self.reload: Callable[[], str | None] | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def url(self) -> str | None:
        """``http://host:port`` of the running server (loopback when bound to every interface)."""
        if self.address is None or self.port is None:
            return None
        host = self.address[0]
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve; a no-op when disabled (``listen: ""``)."""
        if self.address is None:
            return
        host, port = self.address
        self._loop = asyncio.get_running_loop()
        server = self

        class Handler(_Handler):
            observe = server

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        try:
            httpd = Server((host, port), Handler)
        except OSError as e:
            reason = e.strerror or str(e)
            hint = ""
            if e.errno in (98, 48):  # EADDRINUSE (Linux, macOS)
                hint = " (another redis-shipper running? choose another port or set metrics.listen: \"\")"
            elif e.errno in (99, 49):  # EADDRNOTAVAIL
                hint = " (that address is not on this host)"
            raise ConfigError([("metrics.listen", f"cannot listen on {self.listen}: {reason}{hint}")]) from None
        self._httpd = httpd
        #: (host, port) the listening socket is bound to
        self.bound = tuple(httpd.socket.getsockname()[:2])  # type: ignore[assignment]
        self.port = self.bound[1] if self.bound else port
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.5},
                                        name="observe-http", daemon=True)
        self._thread.start()
        log.info("serving /metrics, /healthz and /ready on %s", self.url, extra={"listen": self.listen})

    async def close(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            await asyncio.to_thread(httpd.shutdown)  # waits for serve_forever to return
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # --- what the handlers ask the loop -------------------------------------------------------
    def on_loop(self, coro: Awaitable[Any]) -> Any:
        """Run ``coro`` on the agent's loop from the HTTP thread; TimeoutError if the loop does
        not get to it within LOOP_TIMEOUT (it is stuck), RuntimeError if it is gone."""
        if self._loop is None or self._loop.is_closed():
            raise RuntimeError("the event loop is not running")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        try:
            return fut.result(timeout=LOOP_TIMEOUT)
        except FutureTimeout:
            fut.cancel()
            raise TimeoutError(f"the event loop did not answer within {LOOP_TIMEOUT:.0f}s") from None

    async def ready_body(self) -> tuple[bool, dict[str, Any]]:
        try:
            st = self.status()
            if inspect.isawaitable(st):
                st = await st
            grace = st.get("sink_failure_grace")
            return readiness(st, sink_failure_grace=self.sink_failure_grace if grace is None else float(grace))
        except Exception as e:  # noqa: BLE001 - a broken status() means "not ready", not a 500
            log.warning("/ready: status() failed: %s", e)
            return False, {"ready": False, "not_ready": [{"part": "agent", "reason": f"status error: {e}"}]}


async def _alive() -> bool:
    return True


class _Handler(BaseHTTPRequestHandler):
    """GET /metrics, /healthz, /ready, / on the HTTP thread (see ObserveServer)."""

    observe: ObserveServer
    server_version = "redis-shipper"

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            encoder, content_type = choose_encoder(self.headers.get("Accept", ""))
            self._send(200, encoder(metrics.REGISTRY), content_type)
        elif path == "/healthz":
            try:
                self.observe.on_loop(_alive())
                self._send(200, b"ok\n", "text/plain; charset=utf-8")
            except (TimeoutError, RuntimeError) as e:
                self._send(503, f"not alive: {e}\n".encode(), "text/plain; charset=utf-8")
        elif path == "/ready":
            try:
                ready, body = self.observe.on_loop(self.observe.ready_body())
            except (TimeoutError, RuntimeError) as e:
                ready, body = False, {"ready": False, "not_ready": [{"part": "agent", "reason": str(e)}]}
            self._send(200 if ready else 503, orjson.dumps(body) + b"\n", "application/json")
        elif path == "/":
            self._send(200, b"redis-shipper: /metrics /healthz /ready\n", "text/plain; charset=utf-8")
        else:
            self._send(404, b"404: not found\n", "text/plain; charset=utf-8")

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        """``/-/reload`` as Prometheus and Alloy have it: the same reload as SIGHUP, for images
        without ``kill``; loopback clients only (``kubectl exec``), whatever metrics.listen is."""
        text = "text/plain; charset=utf-8"
        if self.path.split("?", 1)[0] != "/-/reload" or self.observe.reload is None:
            self._send(404, b"404: not found\n", text)
        elif not ipaddress.ip_address(self.client_address[0].removeprefix("::ffff:")).is_loopback:
            self._send(403, b"/-/reload: loopback clients only\n", text)
        else:
            problem = self.observe.reload()
            if problem is None:
                self._send(200, b"reloading\n", text)
            else:
                self._send(400, f"reload refused, keeping the running config:\n{problem}\n".encode(), text)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the http.server name
        """No access log (Prometheus scrapes every few seconds)."""
