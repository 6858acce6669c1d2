"""The agent's own HTTP endpoints: ``/metrics``, ``/healthz`` and ``/ready``.

Why an aiohttp server on the agent's event loop and not prometheus_client's
``start_http_server`` thread: ``/healthz`` must prove that *the loop* answers. A thread would
keep saying "ok" while the loop that runs every source and sink is stuck; on the loop, a stuck
agent stops answering and Kubernetes / systemd's watchdog can restart it.

* ``/metrics``: ``shipper.observe.metrics.REGISTRY`` in the Prometheus text format (or
  OpenMetrics when the scraper asks for it), plus the process and platform collectors
  (``process_resident_memory_bytes``, ``process_open_fds``, ``python_info``...) registered into
  that same registry here, so a single scrape tells memory, file descriptors and CPU too.
* ``/healthz``: liveness. 200 ``ok`` whenever the loop runs this handler. Nothing else is
  checked on purpose: a sink being down is no reason to restart the agent (a restart would not
  bring Loki back, and the spool keeps the events meanwhile).
* ``/ready``: readiness. 200 when the agent has started, no source has crashed and no sink has
  been failing for longer than ``sink_failure_grace`` seconds; otherwise 503 with a JSON body
  that names each part that is not ready and why. A few failed requests (a Loki restart, one
  429) do not flip it: only a failure that lasts.

The listen address is ``host:port`` (``127.0.0.1:9377`` by default: loopback unless the user
says otherwise; ``[::1]:9377`` for IPv6; ``:9377`` or ``0.0.0.0:9377`` for every interface, as
Kubernetes probes need); ``""`` disables the server. A malformed address or a port already in
use is a :class:`~shipper.config.ConfigError` naming ``metrics.listen``, so ``run`` exits 2 with
a clear message instead of a traceback.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder

from ..config import ConfigError
from . import metrics

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:9377"
#: a sink may fail this long (seconds) before /ready says so: rides out a Loki restart
DEFAULT_SINK_FAILURE_GRACE = 60.0
#: source states that count as ready ("done": a source that finished its work, e.g. a one-shot)
READY_SOURCE_STATES = frozenset({"running", "idle", "done"})

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
            problems.append({
                "part": f"sink:{name}",
                "reason": f"failing for {failing_for:.0f}s (more than {sink_failure_grace:.0f}s)"
                          + (f"; {pending} events waiting in the spool" if pending is not None else ""),
            })
    for name, state in sorted((status.get("sources") or {}).items()):
        if state not in READY_SOURCE_STATES:
            problems.append({"part": f"source:{name}", "reason": str(state)})
    body: dict[str, Any] = {"ready": not problems}
    if problems:
        body["not_ready"] = problems
    return not problems, body


def agent_status(agent: Any) -> Status:
    """The status dict of a running :class:`shipper.runtime.Agent`, read without touching it.

    Duck-typed on purpose (observe must not import the runtime): ``agent.started`` (an
    ``asyncio.Event``), ``agent.workers`` (each with ``.sink.name``, ``.healthy``,
    ``.failing_since``), ``agent.spool.pending(name)``, ``agent.sources`` and
    ``agent.source_tasks`` (same order). A source task that ended with an exception is
    "crashed"; one still running is "running" (the runtime's supervisor restarts crashed
    sources, so a "crashed" state is rare and shows a source that gave up).
    """
    started = getattr(agent, "started", None)
    status: Status = {"started": bool(started is not None and started.is_set()), "sinks": {}, "sources": {}}
    spool = getattr(agent, "spool", None)
    for w in getattr(agent, "workers", []) or []:
        name = w.sink.name
        try:
            pending: int | None = int(spool.pending(name)) if spool is not None else None
        except Exception:  # noqa: BLE001 - a closed spool must not break /ready
            pending = None
        status["sinks"][name] = {"healthy": bool(w.healthy), "failing_since": w.failing_since, "pending": pending}
    tasks = list(getattr(agent, "source_tasks", []) or [])
    for i, src in enumerate(getattr(agent, "sources", []) or []):
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
        status["sources"][name] = state
    return status


class ObserveServer:
    """``/metrics``, ``/healthz`` and ``/ready`` on the agent's loop (see module docstring).

    Wiring (shipper/runtime.py or commands/run.py)::

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
        self._runner: web.AppRunner | None = None
        #: the bound port (useful with port 0 in tests)
        self.port: int | None = None
        self.bound: tuple[str, int] | None = None

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

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/ready", self._ready)
        app.router.add_get("/", self._index)
        return app

    async def start(self) -> None:
        """Bind and serve; a no-op when disabled (``listen: ""``)."""
        if self.address is None:
            return
        host, port = self.address
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError as e:
            await runner.cleanup()
            reason = e.strerror or str(e)
            hint = ""
            if e.errno in (98, 48):  # EADDRINUSE (Linux, macOS)
                hint = " (another redis-shipper running? choose another port or set metrics.listen: \"\")"
            elif e.errno in (99, 49):  # EADDRNOTAVAIL
                hint = " (that address is not on this host)"
            raise ConfigError([("metrics.listen", f"cannot listen on {self.listen}: {reason}{hint}")]) from None
        self._runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        #: (host, port) the listening socket is bound to
        self.bound: tuple[str, int] | None = tuple(sockets[0].getsockname()[:2]) if sockets else None
        self.port = self.bound[1] if self.bound else port
        log.info("serving /metrics, /healthz and /ready on %s", self.url, extra={"listen": self.listen})

    async def close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    # --- handlers ---------------------------------------------------------------------------
    async def _metrics(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        body = encoder(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n", content_type="text/plain")

    async def _ready(self, request: web.Request) -> web.Response:
        try:
            st = self.status()
            if inspect.isawaitable(st):
                st = await st
            ready, body = readiness(st, sink_failure_grace=self.sink_failure_grace)
        except Exception as e:  # noqa: BLE001 - a broken status() means "not ready", not a 500
            log.warning("/ready: status() failed: %s", e)
            ready, body = False, {"ready": False, "not_ready": [{"part": "agent", "reason": f"status error: {e}"}]}
        return web.Response(body=orjson.dumps(body) + b"\n", status=200 if ready else 503,
                            content_type="application/json")

    async def _index(self, request: web.Request) -> web.Response:
        return web.Response(text="redis-shipper: /metrics /healthz /ready\n", content_type="text/plain")
