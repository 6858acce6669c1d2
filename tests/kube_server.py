"""A real Kubernetes API server for tests: kube-apiserver 1.20.2 + Debian's etcd (``start-envtest``).

No kubelet: pods are API objects the tests create, patch (``status.podIP``, ``containerStatuses``)
and delete themselves, while the agent watches them. ``KubeAPI`` speaks plain JSON over HTTPS with
the admin token, so a test reads like the kubectl commands it stands for.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servers import free_port, require

REPO = Path(__file__).resolve().parent.parent


def envtest_script() -> Path | None:
    """``start-envtest``: ``$KUBE_ENVTEST``, else ``../shared/tools/kube/start-envtest`` beside the repo."""
    env = os.environ.get("KUBE_ENVTEST")
    for p in ([Path(env)] if env else []) + [REPO.parent / "shared" / "tools" / "kube" / "start-envtest"]:
        if p.is_file() and os.access(p, os.X_OK):
            return p
    return None


def require_envtest() -> Path:
    script = envtest_script()
    require("kube-apiserver (start-envtest)", script is not None, "set KUBE_ENVTEST or provide ../shared/tools/kube")
    require("etcd", shutil.which("etcd") is not None, "apt-get install etcd-server")
    assert script is not None
    return script


@dataclass
class KubeAPI:
    """The admin's view of a running API server."""

    url: str
    token: str
    ca: str
    dir: Path

    def _ctx(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def request(self, method: str, path: str, body: Any = None, *, token: str | None = None,
                content_type: str = "application/json") -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token or self.token}")
        if data is not None:
            req.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(req, context=self._ctx(), timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, out = self.request(method, path, body, **kw)
        assert 200 <= status < 300, f"{method} {path}: {status} {out}"
        return out

    # ---- what the tests do, in kubectl's words -------------------------------------------------
    def create_namespace(self, ns: str) -> None:
        self.ok("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    def create_pod(self, ns: str, name: str, *, node: str, containers: list[tuple[str, str]],
                   labels: dict[str, str] | None = None) -> dict[str, Any]:
        return self.ok("POST", f"/api/v1/namespaces/{ns}/pods", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"nodeName": node, "containers": [{"name": c, "image": img} for c, img in containers]},
        })

    def set_running(self, ns: str, name: str, ip: str, containers: list[str]) -> dict[str, Any]:
        """What the kubelet reports once the containers started."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return self.ok("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", {"status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
            "containerStatuses": [{"name": c, "ready": True, "restartCount": 0, "image": "x", "imageID": "",
                                   "state": {"running": {"startedAt": now}}} for c in containers],
        }}, content_type="application/merge-patch+json")

    def set_phase(self, ns: str, name: str, phase: str) -> dict[str, Any]:
        return self.ok("PATCH", f"/api/v1/namespaces/{ns}/pods/{name}/status", {"status": {"phase": phase}},
                       content_type="application/merge-patch+json")

    def delete_pod(self, ns: str, name: str) -> None:
        # no kubelet to confirm termination: delete at once, as a force delete does
        self.ok("DELETE", f"/api/v1/namespaces/{ns}/pods/{name}?gracePeriodSeconds=0")

    def service_account_token(self, ns: str, sa: str, *, verbs: list[str]) -> str:
        """A ServiceAccount whose ClusterRole allows ``verbs`` on pods, and a token for it minted by
        the server (TokenRequest): what a DaemonSet's pod gets from its projected volume."""
        self.ok("POST", f"/api/v1/namespaces/{ns}/serviceaccounts",
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}})
        role = f"{ns}-{sa}"
        self.ok("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": role},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": verbs}]})
        self.ok("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]})
        out = self.ok("POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
                      {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                       "spec": {"expirationSeconds": 3600}})
        return out["status"]["token"]

    def kubeconfig(self, path: Path, token: str) -> Path:
        """A kubeconfig file for ``token`` (the out-of-cluster way in)."""
        import yaml

        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "t",
            "clusters": [{"name": "t", "cluster": {"server": self.url, "certificate-authority": self.ca}}],
            "users": [{"name": "t", "user": {"token": token}}],
            "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
        }))
        return path

    def service_account_dir(self, path: Path, token: str, ns: str) -> Path:
        """The files a pod's service-account volume holds (token, ca.crt, namespace)."""
        path.mkdir(parents=True, exist_ok=True)
        (path / "token").write_text(token)
        (path / "namespace").write_text(ns)
        shutil.copy(self.ca, path / "ca.crt")
        return path


class Envtest:
    """etcd + kube-apiserver started by ``start-envtest`` in ``dir``; ``stop``/``start`` again on the
    same ports (the API server away for a while, etcd's data kept)."""

    def __init__(self, script: Path, dir: Path) -> None:
        self.script = script
        self.dir = dir
        #: API server, etcd client, etcd peer: fixed, so a restart comes back where the agent looks
        self.ports = [str(free_port()) for _ in range(3)]

    def _apiserver_wrapper(self) -> Path:
        """The real kube-apiserver with its watch cache off: watches are then served by etcd itself,
        so compacting etcd (:meth:`compact`) makes an old resourceVersion answer 410 Gone, which a
        test can cause at will (the watch cache keeps recent changes however many there are)."""
        real = subprocess.run([str(self.script.parent / "unpack")], capture_output=True, text=True, timeout=120)
        assert real.returncode == 0, real.stderr
        self.dir.mkdir(parents=True, exist_ok=True)
        wrapper = self.dir / "kube-apiserver-no-watch-cache"
        wrapper.write_text(f'#!/bin/sh\nexec {real.stdout.strip()}/kube-apiserver --watch-cache=false "$@"\n')
        wrapper.chmod(0o755)
        return wrapper

    def compact(self) -> int:
        """Compact etcd up to its current revision; returns it."""
        etcd = f"http://127.0.0.1:{self.ports[1]}"

        def post(path: str, body: dict[str, Any]) -> Any:
            req = urllib.request.Request(etcd + path, data=json.dumps(body).encode(), method="POST")
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())

        rev = int(post("/v3/kv/range", {"key": "Lw=="})["header"]["revision"])
        post("/v3/kv/compaction", {"revision": str(rev), "physical": True})
        return rev

    def start(self) -> KubeAPI:
        env = {**os.environ, "KUBE_APISERVER": str(self._apiserver_wrapper())}
        out = subprocess.run([str(self.script), str(self.dir), *self.ports], capture_output=True, text=True,
                             timeout=120, env=env)
        assert out.returncode == 0, out.stdout + out.stderr
        env = dict(line.removeprefix("export ").split("=", 1)
                   for line in (self.dir / "env.sh").read_text().splitlines() if line.startswith("export "))
        return KubeAPI(env["KUBE_URL"], env["KUBE_TOKEN"], env["KUBE_CA"], self.dir)

    def stop(self) -> None:
        """Stop both processes and wait until they are gone. ``stop.sh`` waits 5 s at most, and the
        API server's graceful termination takes longer (measured: still running 10 s after SIGTERM),
        so a restart on the same port would find the old one: SIGKILL after 3 s."""
        import signal

        for name in ("kube-apiserver.pid", "etcd.pid"):
            f = self.dir / name
            if not f.exists():
                continue
            pid = int(f.read_text().strip() or 0)
            if pid:
                _terminate(pid, signal.SIGTERM, 3.0) or _terminate(pid, signal.SIGKILL, 10.0)
            f.unlink(missing_ok=True)


def _terminate(pid: int, sig: int, wait: float) -> bool:
    """Send ``sig``; True once the process is gone (within ``wait`` seconds)."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False
