"""The pods of one node, kept current by list + watch against the Kubernetes API.

The informer pattern of client-go, reduced to what the agent needs:

1. **list** ``/api/v1/pods?fieldSelector=spec.nodeName=<node>`` (and the label selector): the
   whole current set, and the ``resourceVersion`` it was read at;
2. **watch** from that version, with bookmarks (the server sends the newest version now and then,
   so a reconnect after a quiet hour does not start from a version the server has forgotten);
   a watch that the server ends (its ``timeoutSeconds``) resumes from the last version seen;
3. **410 Gone** (the version is older than the server keeps, e.g. after an etcd compaction):
   relist, and the set replaces the old one whole, so a pod deleted while we were not watching is
   noticed (lightkube's own watch would restart without a version, which replays the pods that
   exist but never says which ones went away);
4. any other failure (API server down, 5xx, a torn connection): backoff (``util.backoff``), logged
   once per outage and counted, then relist.

After every change the whole set is handed to ``on_pods``: reconciling a node's few dozen pods is
cheaper than reasoning about event order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson

from shipper.config import KubernetesSourceConfig
from shipper.observe import metrics
from shipper.util.backoff import Backoff
from shipper.util.waits import wait_or_stop

from .pods import essentials

log = logging.getLogger("redis_shipper.kubernetes")

OnPods = Callable[[dict[str, dict[str, Any]]], Awaitable[None]]

#: the pods of every namespace (the node's field selector narrows them)
PODS_PATH = "/api/v1/pods"


class WatchExpired(Exception):
    """The server answered 410 Gone: the resourceVersion is too old; relist."""


class ApiError(Exception):
    """The API server refused a request: its HTTP status code and the message of the ``Status`` it
    sent (which names the user, verb and resource refused)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"HTTP {code}: {message}")
        self.code = code
        self.message = message


def api_error(code: int, body: bytes | str) -> ApiError:
    """An :class:`ApiError` from a refused request's status and body (a ``Status`` object, or text)."""
    try:
        status = orjson.loads(body)
        message = str(status.get("message") or "") if isinstance(status, dict) else ""
    except orjson.JSONDecodeError:
        message = ""
    if not message:
        message = (body.decode("utf-8", "replace") if isinstance(body, bytes) else body).strip()[:300]
    return ApiError(code, message)


def make_client(cfg: KubernetesSourceConfig) -> Any:
    """A client for the API server: the kubeconfig when one is configured (through
    lightkube's configuration layer: contexts, client certificates, exec plugins as kubectl uses
    them, an ``httpx2.AsyncClient``), else the pod's service account (:mod:`.incluster`, on the
    agent's own HTTP client; token re-read on 401, as client-go does: bound tokens rotate), else
    ``$KUBECONFIG`` (lightkube again). The requests and their decoding are ours
    (:class:`PodWatcher`): lightkube's typed models cost memory and CPU for fields the agent never
    reads (docs/dependencies.md)."""
    if not cfg.kubeconfig:
        from . import incluster

        if incluster.available(cfg.service_account_dir):
            return incluster.client(cfg.service_account_dir, cfg.timeout)
    import httpx2 as httpx

    # httpx logs every request at INFO: a watch's reconnects every few minutes are not news
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    from lightkube.config.client_adapter import AsyncClient, ConnectionParams
    from lightkube.config.kubeconfig import KubeConfig

    if cfg.kubeconfig:
        import os

        kc = KubeConfig.from_file(os.path.expanduser(cfg.kubeconfig))
    else:
        kc = KubeConfig.from_env(service_account=cfg.service_account_dir)
    return AsyncClient(kc.get(), ConnectionParams(timeout=httpx.Timeout(cfg.timeout), trust_env=False))


def _key(pod: dict[str, Any]) -> str | None:
    meta = pod.get("metadata") or {}
    ns, name = meta.get("namespace"), meta.get("name")
    return f"{ns}/{name}" if isinstance(ns, str) and isinstance(name, str) else None


class PodWatcher:
    """Keeps ``pods`` (``namespace/name`` -> the pod's :func:`.pods.essentials`) equal to the API
    server's view of the node."""

    def __init__(self, cfg: KubernetesSourceConfig, on_pods: OnPods, *, name: str,
                 client_factory: Callable[[KubernetesSourceConfig], Any] = make_client) -> None:
        self.cfg = cfg
        self.on_pods = on_pods
        self.name = name
        self.pods: dict[str, dict[str, Any]] = {}
        self.resource_version: str | None = None
        self._client_factory = client_factory
        self._client: Any = None
        self._down_since: float | None = None
        #: counters a test or /metrics reads: relists after 410, failures
        self.relists = 0
        self.expired = 0
        self.failures = 0

    def connect(self) -> None:
        """Build the API client if there is none yet (the credentials are read then)."""
        if self._client is None:
            self._client = self._client_factory(self.cfg)

    def _params(self, *, watch: bool) -> dict[str, str]:
        """The query of the node's pods: ``fieldSelector=spec.nodeName=<node>``, the user's label
        selector as written (kubectl syntax, ``in (...)`` included), and for a watch the version to
        resume from, bookmarks and the server-side timeout."""
        params = {"fieldSelector": f"spec.nodeName={self.cfg.node}"}
        if self.cfg.selector:
            params["labelSelector"] = self.cfg.selector
        if watch:
            params.update(watch="true", allowWatchBookmarks="true", timeoutSeconds=str(int(self.cfg.watch_timeout)))
            if self.resource_version:
                params["resourceVersion"] = self.resource_version
        return params

    async def list_once(self) -> None:
        """List the node's pods: ``pods`` becomes that set whole, ``resource_version`` the version it
        was read at, and ``on_pods`` is called. Raises :class:`ApiError` when the server refuses."""
        self.connect()
        resp = await self._client.get(PODS_PATH, params=self._params(watch=False))
        if resp.status_code != 200:
            raise api_error(resp.status_code, resp.content)
        body = orjson.loads(resp.content)
        pods: dict[str, dict[str, Any]] = {}
        for item in body.get("items") or []:
            d = essentials(item)
            k = _key(d)
            if k is not None:
                pods[k] = d
        rv = (body.get("metadata") or {}).get("resourceVersion")
        self.resource_version = rv if isinstance(rv, str) and rv else None
        self.pods = pods
        self.relists += 1
        await self.on_pods(dict(self.pods))

    @asynccontextmanager
    async def open_watch(self) -> AsyncIterator[Any]:
        """The watch request of the node's pods from ``resource_version``, open once the server has
        accepted it (HTTP 200: the event stream begins); yields the streaming response, closed on
        exit. Raises :class:`WatchExpired` on 410 Gone, :class:`ApiError` on any other refusal."""
        from .incluster import InClusterClient

        self.connect()
        # no read timeout: a watch of a quiet node is silent until a bookmark or the server's timeout
        # (the in-cluster client never bounds a streamed body; httpx's must be told)
        kw: dict[str, Any] = {}
        if not isinstance(self._client, InClusterClient):
            import httpx2 as httpx

            kw["timeout"] = httpx.Timeout(self.cfg.timeout, read=None)
        async with self._client.stream("GET", PODS_PATH, params=self._params(watch=True), **kw) as resp:
            if resp.status_code != 200:
                body = await resp.aread()
                if resp.status_code == 410:  # a too-old version refused before the stream starts
                    raise WatchExpired(api_error(410, body).message)
                raise api_error(resp.status_code, body)
            yield resp

    async def _watch_once(self) -> None:
        """One watch request, until the server ends it; raises WatchExpired on 410."""
        async with self.open_watch() as resp:
            async for line in resp.aiter_lines():
                if not line.strip():
                    continue
                event = orjson.loads(line)
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":  # a Status inside the stream: 410 when the version expired meanwhile
                    code = obj.get("code") if isinstance(obj, dict) else None
                    message = str(obj.get("message") or "") if isinstance(obj, dict) else str(obj)
                    if code == 410:
                        raise WatchExpired(message)
                    raise ApiError(code if isinstance(code, int) else 500, message)
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if isinstance(rv, str) and rv:
                    self.resource_version = rv
                if kind == "BOOKMARK":
                    continue
                d = essentials(obj)
                k = _key(d)
                if k is None:
                    continue
                if kind == "DELETED":
                    self.pods.pop(k, None)
                else:
                    self.pods[k] = d
                await self.on_pods(dict(self.pods))

    async def run(self, stop: asyncio.Event) -> None:
        """List, then watch; resume a broken watch from the last version seen (as client-go's
        reflector does: a relist of every pod after each blip would be a storm on a big cluster),
        relist on 410; back off on failure; return when ``stop`` is set."""
        backoff = Backoff(1.0, 30.0)
        need_list = True
        while not stop.is_set():
            try:
                self.connect()
                if need_list:
                    await self._until_stopped(self.list_once(), stop)
                    need_list = False
                    self._recovered()
                await self._until_stopped(self._watch_once(), stop)
                self._recovered()
                backoff.reset()
            except WatchExpired as e:
                need_list = True
                self.expired += 1
                metrics.KUBERNETES_WATCH_EXPIRED.labels(source=self.name).inc()
                log.info("kubernetes source %s: watch expired (%s); listing the node's pods again",
                         self.name, e, extra={"source": self.name})
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the API server down, 5xx, 403, a torn stream: retry
                self.failures += 1
                self._failed(e)
                await wait_or_stop(stop, backoff.next())
        await self.close()

    async def _until_stopped(self, coro: Awaitable[None], stop: asyncio.Event) -> None:
        """Run ``coro`` until it ends or ``stop`` is set (a watch can be silent for minutes)."""
        task = asyncio.ensure_future(coro)
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task.done() and not task.cancelled():
            task.result()

    def _failed(self, e: BaseException) -> None:
        import time

        metrics.KUBERNETES_API_ERRORS.labels(source=self.name).inc()
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("kubernetes source %s: the API server is not answering as expected (%s: %s); "
                        "retrying with backoff, the pods' sources keep running",
                        self.name, type(e).__name__, str(e)[:300], extra={"source": self.name})

    def _recovered(self) -> None:
        import time

        if self._down_since is not None:
            log.warning("kubernetes source %s: the API server answers again after %.1f s; pods relisted",
                        self.name, time.monotonic() - self._down_since, extra={"source": self.name})
            self._down_since = None

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            try:
                await client.aclose()
            except Exception:
                pass
