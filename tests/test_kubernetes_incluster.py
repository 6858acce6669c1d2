"""In a pod, the agent reaches the API server with its service account: the address the kubelet
puts in the environment, the cluster's CA, and the token file, read again when the server answers
401 (the kubelet rotates bound tokens). The real-server path is tested in
test_kubernetes_discovery.py and test_kubernetes_deploy.py; these are the rules in isolation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx2
import pytest

from shipper.sources.kubernetes import incluster


def service_account(tmp_path: Path, token: str) -> Path:
    d = tmp_path / "serviceaccount"
    d.mkdir()
    (d / "token").write_text(token + "\n")
    (d / "namespace").write_text("cache")
    return d


def test_a_rotated_token_is_read_again_when_the_server_answers_401(tmp_path: Path) -> None:
    sa = service_account(tmp_path, "first")
    seen: list[str] = []

    def server(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers["Authorization"])
        ok = request.headers["Authorization"] == "Bearer second"
        return httpx2.Response(200 if ok else 401, json={"kind": "PodList", "items": []})

    async def scenario() -> list[int]:
        auth = incluster.TokenFileAuth(str(sa / "token"))
        async with httpx2.AsyncClient(base_url="https://api", auth=auth, transport=httpx2.MockTransport(server)) as c:
            first = (await c.get("/api/v1/pods")).status_code
            (sa / "token").write_text("second")  # the kubelet rotates it
            second = (await c.get("/api/v1/pods")).status_code
            third = (await c.get("/api/v1/pods")).status_code
        return [first, second, third]

    assert asyncio.run(scenario()) == [401, 200, 200]
    # a 401 retries once with the file read again (still the old token: the answer stays 401);
    # after the rotation, the 401 brings the new token, kept for every request after
    assert seen == ["Bearer first", "Bearer first", "Bearer first", "Bearer second", "Bearer second"]


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
