"""The pods of one node, kept current by list + watch against the Kubernetes API (lightkube).

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
from collections.abc import Awaitable, Callable
from typing import Any

from shipper.config import KubernetesSourceConfig
from shipper.observe import metrics
from shipper.util.backoff import Backoff
from shipper.util.waits import wait_or_stop

log = logging.getLogger("redis_shipper.kubernetes")

OnPods = Callable[[dict[str, dict[str, Any]]], Awaitable[None]]


class WatchExpired(Exception):
    """The server answered 410 Gone: the resourceVersion is too old; relist."""


def make_client(cfg: KubernetesSourceConfig) -> Any:
    """A lightkube ``AsyncClient``: the kubeconfig when one is configured, else the pod's service
    account (token re-read on 401, as client-go does: bound tokens rotate), else ``$KUBECONFIG``."""
    import httpx2 as httpx
    from lightkube import AsyncClient, KubeConfig

    # httpx logs every request at INFO: a watch's reconnects every few minutes are not news
    logging.getLogger("httpx2").setLevel(logging.WARNING)

    if cfg.kubeconfig:
        import os

        kc = KubeConfig.from_file(os.path.expanduser(cfg.kubeconfig))
    else:
        kc = KubeConfig.from_env(service_account=cfg.service_account_dir)
    return AsyncClient(kc, timeout=httpx.Timeout(cfg.timeout), trust_env=False)


def _key(pod: dict[str, Any]) -> str | None:
    meta = pod.get("metadata") or {}
    ns, name = meta.get("namespace"), meta.get("name")
    return f"{ns}/{name}" if isinstance(ns, str) and isinstance(name, str) else None


class PodWatcher:
    """Keeps ``pods`` (``namespace/name`` -> pod dict) equal to the API server's view of the node."""

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

    def _request(self, *, watch: bool) -> Any:
        """A list or watch request of the node's pods. Built with lightkube's generic client: its
        public ``list``/``watch`` take label selectors as dicts only (a user's ``in (...)`` selector
        is kubectl syntax) and cannot ask for bookmarks."""
        from lightkube import ALL_NS
        from lightkube.core.selector import build_selector
        from lightkube.resources.core_v1 import Pod

        params: dict[str, Any] = {
            "fieldSelector": build_selector({"spec.nodeName": self.cfg.node}, for_fields=True),
            "labelSelector": self.cfg.selector or None,
        }
        if watch:
            params.update(timeoutSeconds=int(self.cfg.watch_timeout), resourceVersion=self.resource_version,
                          allowWatchBookmarks="true")
        return self._client._client.prepare_request("list", res=Pod, namespace=ALL_NS, watch=watch, params=params)

    async def _list(self) -> None:
        it = self._client._client.list(self._request(watch=False))
        pods: dict[str, dict[str, Any]] = {}
        async for obj in it:
            d = obj.to_dict()
            k = _key(d)
            if k is not None:
                pods[k] = d
        self.resource_version = it.resourceVersion
        self.pods = pods
        self.relists += 1
        await self.on_pods(dict(self.pods))

    async def _watch_once(self) -> None:
        """One watch request, until the server ends it; raises WatchExpired on 410."""
        import httpx2
        from lightkube.core.exceptions import ApiError

        try:
            async for kind, obj in self._client._client.watch(self._request(watch=True)):
                d = obj.to_dict()
                rv = (d.get("metadata") or {}).get("resourceVersion")
                if isinstance(rv, str) and rv:
                    self.resource_version = rv
                if kind == "BOOKMARK":
                    continue
                k = _key(d)
                if k is None:
                    continue
                if kind == "DELETED":
                    self.pods.pop(k, None)
                else:
                    self.pods[k] = d
                await self.on_pods(dict(self.pods))
        except ApiError as e:  # a 410 the server sends inside the watch stream
            if getattr(e.status, "code", None) == 410:
                raise WatchExpired(str(e)) from e
            raise
        except httpx2.HTTPStatusError as e:  # a 410 as the HTTP status: lightkube's watch raises
            if e.response.status_code == 410:  # its HTTP client's error for it, not ApiError
                raise WatchExpired(str(e)) from e
            raise

    async def run(self, stop: asyncio.Event) -> None:
        """List, then watch; resume a broken watch from the last version seen (as client-go's
        reflector does: a relist of every pod after each blip would be a storm on a big cluster),
        relist on 410; back off on failure; return when ``stop`` is set."""
        backoff = Backoff(1.0, 30.0)
        need_list = True
        while not stop.is_set():
            try:
                if self._client is None:
                    self._client = self._client_factory(self.cfg)
                if need_list:
                    await self._until_stopped(self._list(), stop)
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
                await client.close()
            except Exception:
                pass
