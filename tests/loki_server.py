"""The real Grafana Loki (3.4.6 in CI, unpacked by scripts/test into ``LOKI_BIN``) for the
``real_loki`` tests: one single-binary Loki per pytest session on free loopback ports, in its
own directory, with filesystem storage.

It runs with ``auth_enabled: true``, so every request names a tenant (``X-Scope-OrgID``): each
test uses its own tenant and its own labels, and tests cannot see each other's entries. Tenants
with small limits come from the runtime config file (``overrides:``), so the same server gives
real 429 and 400 answers: ``slow`` (a tiny ingestion rate) and ``small`` (``max_line_size`` and
``max_label_names_per_series``). The compactor runs with ``deletion_mode: filter-and-delete`` so
that entries can be removed with the delete API.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import requests

from servers import free_port

#: the tenants with their own limits (the runtime config's ``overrides:``)
OVERRIDES = {
    "slow": {"ingestion_rate_mb": 0.01, "ingestion_burst_size_mb": 0.01},
    "small": {"max_line_size": 4000, "max_label_names_per_series": 4},
}


def config_text(d: Path, port: int, grpc_port: int) -> str:
    return f"""
auth_enabled: true
server: {{http_listen_address: 127.0.0.1, http_listen_port: {port}, grpc_listen_address: 127.0.0.1,
          grpc_listen_port: {grpc_port}, log_level: warn}}
common:
  instance_addr: 127.0.0.1
  compactor_address: http://127.0.0.1:{port}
  path_prefix: {d}/data
  storage: {{filesystem: {{chunks_directory: {d}/data/chunks, rules_directory: {d}/data/rules}}}}
  replication_factor: 1
  ring: {{kvstore: {{store: inmemory}}}}
schema_config: {{configs: [{{from: 2024-01-01, store: tsdb, object_store: filesystem, schema: v13,
                            index: {{prefix: index_, period: 24h}}}}]}}
limits_config: {{allow_structured_metadata: true, reject_old_samples: false, deletion_mode: filter-and-delete}}
ingester: {{query_store_max_look_back_period: -1, lifecycler: {{min_ready_duration: 0s, final_sleep: 0s}}}}
compactor: {{working_directory: {d}/data/compactor, compaction_interval: 2s, retention_enabled: true,
            delete_request_store: filesystem, delete_request_cancel_period: 1s, retention_delete_delay: 1s}}
runtime_config: {{file: {d}/overrides.yaml, period: 1s}}
analytics: {{reporting_enabled: false}}
"""


class LokiServer:
    """A running Loki: ``url``, query helpers per tenant, and outage controls."""

    def __init__(self, binary: str, workdir: Path):
        self.binary, self.dir = binary, workdir
        self.port, self.grpc_port = free_port(), free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "overrides.yaml").write_bytes(orjson.dumps({"overrides": OVERRIDES}))
        self.conf = workdir / "loki.yaml"
        self.conf.write_text(config_text(workdir, self.port, self.grpc_port))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> None:
        log = open(self.dir / "loki.log", "ab")  # noqa: SIM115 - kept by the process
        self.proc = subprocess.Popen([self.binary, f"-config.file={self.conf}"], cwd=self.dir,
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = (self.dir / "loki.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"loki exited with {self.proc.returncode}: {tail}")
            try:
                if requests.get(self.url + "/ready", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"loki on port {self.port} not ready after {timeout} s")

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: what the WAL (in this server's dir) survives; :meth:`start` brings it back."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.proc.kill()
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    # ------------------------------------------------------------------ the HTTP API, per tenant
    def get(self, tenant: str, path: str, **params: Any) -> dict[str, Any]:
        r = requests.get(self.url + path, params=params, headers={"X-Scope-OrgID": tenant}, timeout=30)
        if r.status_code != 200:
            raise AssertionError(f"loki {path} {params}: HTTP {r.status_code}: {r.text[:500]}")
        return r.json()

    def query_range(self, tenant: str, query: str, start_ns: int, end_ns: int,
                    limit: int = 5000) -> list[dict[str, Any]]:
        """The ``result`` of a query_range (streams or matrix), oldest first."""
        return self.get(tenant, "/loki/api/v1/query_range", query=query, start=str(start_ns), end=str(end_ns),
                        limit=str(limit), direction="forward")["data"]["result"]

    def entries(self, tenant: str, query: str, start_ns: int, end_ns: int) -> list[tuple[dict[str, str], int, str]]:
        """(labels incl. structured metadata, timestamp ns, line) of every entry, in time order."""
        out = [(st["stream"], int(ts), line) for st in self.query_range(tenant, query, start_ns, end_ns)
               for ts, line, *_ in st["values"]]
        return sorted(out, key=lambda e: (e[1], e[2]))

    def series(self, tenant: str, match: str, start_ns: int, end_ns: int) -> list[dict[str, str]]:
        return self.get(tenant, "/loki/api/v1/series", **{"match[]": match, "start": str(start_ns),
                                                          "end": str(end_ns)})["data"]

    def delete(self, tenant: str, query: str, start_s: int, end_s: int) -> None:
        r = requests.post(self.url + "/loki/api/v1/delete", params={"query": query, "start": start_s, "end": end_s},
                          headers={"X-Scope-OrgID": tenant}, timeout=30)
        assert r.status_code == 204, f"delete: HTTP {r.status_code}: {r.text}"


def wait_for(what: str, cond: Callable[[], Any], timeout: float = 90) -> Any:
    """Poll ``cond`` until it returns something truthy (and return that), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.3)
