"""The pod's own service account as the API client's credentials (client-go's ``InClusterConfig``).

A DaemonSet's agent reaches the API server at ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``,
trusts the cluster's CA from ``<service_account_dir>/ca.crt`` and sends the token of
``<service_account_dir>/token``, which the kubelet rotates: it is read again on a 401 (as
lightkube's and client-go's token-file auth do), so a rotated token is picked up without a restart.

This is the whole of what the in-cluster case needs, written here rather than taken from lightkube:
importing any part of lightkube imports all of it (its package imports its client and its typed
models), 188 modules, ~0.15 s of CPU and ~3.3 MiB of RSS the agent would never use
(docs/dependencies.md has the measurement). A kubeconfig (out of the cluster: exec plugins, client
certificates, contexts) still goes through lightkube's configuration layer (:func:`.watch.make_client`).
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Generator

import httpx2 as httpx


def available(service_account_dir: str) -> bool:
    """Whether the pod's service account is mounted (its token and namespace files), the condition
    under which lightkube's ``KubeConfig.from_env`` chooses it too."""
    return all(os.path.isfile(os.path.join(service_account_dir, f)) for f in ("token", "namespace"))


class TokenFileAuth(httpx.Auth):
    """``Authorization: Bearer <token file>``, read again when the server answers 401."""

    def __init__(self, token_file: str) -> None:
        self.token_file = token_file
        self._bearer: str | None = None

    def _read(self) -> str:
        with open(self.token_file, encoding="utf-8") as f:
            return f"Bearer {f.read().strip()}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._bearer is None:
            self._bearer = self._read()
        request.headers["Authorization"] = self._bearer
        response = yield request
        if response.status_code == 401:  # rotated by the kubelet since we read it
            self._bearer = self._read()
            request.headers["Authorization"] = self._bearer
            yield request


def server_url() -> str:
    """The API server's address as the kubelet gives it to every pod."""
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ValueError("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: not inside a pod? "
                         "Outside the cluster, set the source's kubeconfig")
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def client(service_account_dir: str, timeout: float) -> httpx.AsyncClient:
    """An HTTP client for the API server with the pod's service account."""
    ctx = ssl.create_default_context(cafile=os.path.join(service_account_dir, "ca.crt"))
    return httpx.AsyncClient(base_url=server_url(), verify=ctx, timeout=httpx.Timeout(timeout), trust_env=False,
                             auth=TokenFileAuth(os.path.join(service_account_dir, "token")))
