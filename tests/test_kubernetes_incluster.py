"""In a pod, the agent reaches the API server with its service account: the address the kubelet
puts in the environment, the cluster's CA, and the token file, read again when the server answers
401 (the kubelet rotates bound tokens). The real-server path is tested in
test_kubernetes_discovery.py and test_kubernetes_deploy.py; these are the rules in isolation."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from shipper.sources.kubernetes import incluster


def service_account(tmp_path: Path, token: str) -> Path:
    d = tmp_path / "serviceaccount"
    d.mkdir()
    (d / "token").write_text(token + "\n")
    (d / "namespace").write_text("cache")
    return d


class FakeApiServer:
    """A TLS-less stand-in for the API server's authentication: 200 for the current token, else 401.

    (The real kube-apiserver path, with a minted token and the cluster's CA, is tested in
    test_kubernetes_discovery.py and test_kubernetes_deploy.py.)"""

    def __init__(self, accepted: str) -> None:
        self.accepted = accepted
        self.seen: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode()
                auth = next(line.split(": ", 1)[1] for line in head.split("\r\n")
                            if line.lower().startswith("authorization:"))
                self.seen.append(auth)
                ok = auth == f"Bearer {self.accepted}"
                body = b'{"kind":"PodList","items":[]}\n' if ok else b'{"kind":"Status","code":401}'
                writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n%s" % (200 if ok else 401, len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def test_a_rotated_token_is_read_again_when_the_server_answers_401(tmp_path: Path) -> None:
    sa = service_account(tmp_path, "first")
    api = FakeApiServer(accepted="second")

    async def scenario() -> list[int]:
        server = await asyncio.start_server(api.handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        c = incluster.InClusterClient(url, ssl.create_default_context(), 5.0, str(sa / "token"))
        try:
            first = (await c.get("/api/v1/pods")).status_code
            (sa / "token").write_text("second")  # the kubelet rotates it
            second = (await c.get("/api/v1/pods")).status_code
            third = (await c.get("/api/v1/pods")).status_code
            (sa / "token").write_text("third")
            api.accepted = "third"
            async with c.stream("GET", "/api/v1/pods", params={"watch": "true"}) as w:
                watched = w.status_code, [line async for line in w.aiter_lines()]
        finally:
            await c.aclose()
            server.close()
        return [first, second, third, watched]

    assert asyncio.run(scenario()) == [401, 200, 200, (200, ['{"kind":"PodList","items":[]}'])]
    # a 401 retries once with the file read again (still the old token: the answer stays 401);
    # after the rotation, the 401 brings the new token, kept for every request after; a watch
    # refused with 401 is opened again with the token read again
    assert api.seen == ["Bearer first", "Bearer first", "Bearer first", "Bearer second", "Bearer second",
                        "Bearer second", "Bearer third"]


def test_the_service_account_is_used_when_its_token_and_namespace_are_mounted(tmp_path: Path) -> None:
    assert not incluster.available(str(tmp_path))
    assert incluster.available(str(service_account(tmp_path, "t")))


def test_the_api_server_address_comes_from_the_pods_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert incluster.server_url() == "https://10.96.0.1:443"
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00:10:96::1")
    assert incluster.server_url() == "https://[fd00:10:96::1]:443"


def test_outside_a_pod_the_missing_address_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    with pytest.raises(ValueError, match="set the source's kubeconfig"):
        incluster.server_url()
