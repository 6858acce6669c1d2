"""The pod's own service account as the API client's credentials (client-go's ``InClusterConfig``).

A DaemonSet's agent reaches the API server at ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``,
trusts the cluster's CA from ``<service_account_dir>/ca.crt`` and sends the token of
``<service_account_dir>/token``, which the kubelet rotates: it is read again on a 401 (as
lightkube's and client-go's token-file auth do), so a rotated token is picked up without a restart.

This is the whole of what the in-cluster case needs, written here rather than taken from lightkube:
importing any part of lightkube imports all of it (its package imports its client and its typed
models), 188 modules, ~0.15 s of CPU and ~3.3 MiB of RSS the agent would never use
(docs/dependencies.md has the measurement). A kubeconfig (out of the cluster: exec plugins, client
certificates, contexts) still goes through lightkube's configuration layer and its httpx2 client
(:func:`.watch.make_client`). httpx2 itself costs ~4 MiB more than the agent's own HTTP client
(docs/dependencies.md).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from shipper.util.httpclient import HTTPClient, StreamedResponse


def available(service_account_dir: str) -> bool:
    """Whether the pod's service account is mounted (its token and namespace files), the condition
    under which lightkube's ``KubeConfig.from_env`` chooses it too."""
    return all(os.path.isfile(os.path.join(service_account_dir, f)) for f in ("token", "namespace"))


def server_url() -> str:
    """The API server's address as the kubelet gives it to every pod."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ValueError("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: not inside a pod? "
                         "Outside the cluster, set the source's kubeconfig")
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


@dataclass
class Answer:
    """A whole answer, named as httpx names it (``status_code``, ``content``)."""

    status_code: int
    content: bytes


class WatchAnswer:
    """A streamed answer, named as httpx names it (``status_code``, ``aread``, ``aiter_lines``)."""

    def __init__(self, resp: StreamedResponse) -> None:
        self._resp = resp
        self.status_code = resp.status

    async def aread(self) -> bytes:
        return await self._resp.read()

    async def aiter_lines(self) -> AsyncIterator[str]:
        async for line in self._resp.iter_lines():
            yield line.decode("utf-8", "replace")


class InClusterClient:
    """The API server with the pod's service account, on :class:`~shipper.util.httpclient.HTTPClient`.

    It offers the part of httpx's ``AsyncClient`` that :class:`.watch.PodWatcher` uses (``get``,
    ``stream``, ``aclose``), so the watcher speaks the same way to it and to lightkube's client for
    a kubeconfig. ``Authorization: Bearer <token file>``, read again when the server answers 401.
    """

    def __init__(self, base_url: str, ssl_context: ssl.SSLContext, timeout: float, token_file: str) -> None:
        self.base_url = base_url
        self.token_file = token_file
        self._http = HTTPClient(timeout=timeout, ssl_context=ssl_context, headers={"Accept": "application/json"})
        self._bearer: str | None = None

    def _auth(self, reread: bool = False) -> dict[str, str]:
        if self._bearer is None or reread:
            with open(self.token_file, encoding="utf-8") as f:
                self._bearer = f"Bearer {f.read().strip()}"
        return {"Authorization": self._bearer}

    async def get(self, path: str, *, params: Mapping[str, str] | None = None) -> Answer:
        resp = await self._http.get(self.base_url + path, params=params, headers=self._auth())
        if resp.status == 401:  # rotated by the kubelet since we read it
            resp = await self._http.get(self.base_url + path, params=params, headers=self._auth(reread=True))
        return Answer(resp.status, resp.body)

    @asynccontextmanager
    async def stream(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                     timeout: object = None) -> AsyncIterator[WatchAnswer]:
        """The answer streamed: the head within the client's timeout, the body without a bound
        (``timeout`` is accepted for httpx's signature; a watch has no read timeout here)."""
        url = self.base_url + path
        async with self._http.stream(method, url, params=params, headers=self._auth()) as resp:
            if resp.status != 401:
                yield WatchAnswer(resp)
                return
        async with self._http.stream(method, url, params=params, headers=self._auth(reread=True)) as resp:
            yield WatchAnswer(resp)

    async def aclose(self) -> None:
        await self._http.close()


def client(service_account_dir: str, timeout: float) -> InClusterClient:
    """A client for the API server with the pod's service account."""
    ctx = ssl.create_default_context(cafile=os.path.join(service_account_dir, "ca.crt"))
    return InClusterClient(server_url(), ctx, timeout, os.path.join(service_account_dir, "token"))
