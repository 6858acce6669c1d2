"""The real Loki 3.4.6 and promtail 3.4.6 for bench/promtail_compare.py: start, query, tail, stop.

The binaries come from ``../shared/tools/loki/unpack`` (its README has the single-binary config
used here); they are unpacked into a cache directory, never beside the repository. Everything
listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
UNPACK = ROOT.parent / "shared" / "tools" / "loki" / "unpack"


def unpack(dest: str | None = None) -> Path:
    """The directory holding ``loki`` and ``promtail`` (checked against their SHA-256 each time)."""
    script = Path(os.environ.get("LOKI_UNPACK", str(UNPACK)))
    if not script.exists():
        raise SystemExit(f"{script} not found: the real Loki binaries live in ../shared/tools/loki/")
    target = dest or os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "loki-3.4.6")
    out = subprocess.run(["sh", str(script), target], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Loki:
    """One single-binary Loki on loopback with filesystem storage; limits raised so that neither
    agent meets a 429 (the bench measures the agents, not Loki's default 4 MB/s tenant limit)."""

    def __init__(self, bindir: Path, workdir: Path) -> None:
        self.dir = workdir
        self.port, self.grpc = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        d = workdir
        cfg = f"""auth_enabled: false
server: {{http_listen_address: 127.0.0.1, http_listen_port: {self.port}, grpc_listen_address: 127.0.0.1,
  grpc_listen_port: {self.grpc}, log_level: warn, grpc_server_max_recv_msg_size: 104857600}}
common:
  instance_addr: 127.0.0.1
  path_prefix: {d}
  storage: {{filesystem: {{chunks_directory: {d}/chunks, rules_directory: {d}/rules}}}}
  replication_factor: 1
  ring: {{kvstore: {{store: inmemory}}}}
schema_config: {{configs: [{{from: 2024-01-01, store: tsdb, object_store: filesystem, schema: v13,
  index: {{prefix: index_, period: 24h}}}}]}}
limits_config: {{allow_structured_metadata: true, reject_old_samples: false, ingestion_rate_mb: 1000,
  ingestion_burst_size_mb: 1000, per_stream_rate_limit: 1000MB, per_stream_rate_limit_burst: 1000MB,
  max_entries_limit_per_query: 100000, max_concurrent_tail_requests: 100}}
ingester: {{query_store_max_look_back_period: -1, lifecycler: {{min_ready_duration: 0s, final_sleep: 0s}}}}
analytics: {{reporting_enabled: false}}
"""
        (d / "loki.yaml").write_text(cfg)
        self.log = open(d / "loki.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen([str(bindir / "loki"), f"-config.file={d / 'loki.yaml'}"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        end = time.monotonic() + 120
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise SystemExit(f"loki exited {self.proc.returncode}:\n{(d / 'loki.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/ready", timeout=5) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit("loki was not ready within 120 s")

    def _get(self, path: str, **params: str) -> bytes:
        q = ("?" + urllib.parse.urlencode(params)) if params else ""
        with urllib.request.urlopen(self.url + path + q, timeout=60) as r:
            return bytes(r.read())

    def lines_received(self) -> int:
        """``loki_distributor_lines_received_total`` summed over tenants: every line that reached
        the distributor (a re-sent batch counts twice; the exact check is :meth:`count`)."""
        total = 0.0
        for line in self._get("/metrics").decode().splitlines():
            if line.startswith("loki_distributor_lines_received_total"):
                total += float(line.rsplit(" ", 1)[1])
        return int(total)

    def count(self, selector: str, seconds: int = 3 * 86400) -> int:
        """Entries Loki holds for ``selector`` in the last ``seconds`` (``count_over_time``, exact:
        Loki drops a byte-identical replay, so a retried batch is not counted twice)."""
        body = orjson.loads(self._get("/loki/api/v1/query", query=f"sum(count_over_time({selector}[{seconds}s]))",
                                      time=str(time.time_ns() + 60_000_000_000)))
        res = body["data"]["result"]
        return int(float(res[0]["value"][1])) if res else 0

    def pause(self) -> None:
        """An outage: Loki stops (SIGSTOP); connections hang as they do on an unreachable host."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Tail(threading.Thread):
    """Loki's live tail (``/loki/api/v1/tail``, websocket) of one selector: the arrival time of each
    entry and its own timestamp. Freshness = arrival - timestamp when the line's timestamp is the
    time it was written (bench Writer lines are), to the millisecond."""

    def __init__(self, loki: Loki, selector: str) -> None:
        super().__init__(daemon=True, name="tail")
        self.url = (loki.url.replace("http://", "ws://") + "/loki/api/v1/tail?"
                    + urllib.parse.urlencode({"query": selector, "delay_for": "0", "limit": "5000",
                                              "start": str(time.time_ns())}))
        self.latencies: list[float] = []
        self.dropped = 0
        self.ready = threading.Event()
        self.error: str | None = None
        self._halt = threading.Event()
        self.start()
        self.ready.wait(30)

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        import aiohttp

        try:
            async with aiohttp.ClientSession() as s, s.ws_connect(self.url, max_msg_size=0) as ws:
                self.ready.set()
                while not self._halt.is_set():
                    try:
                        msg = await ws.receive(timeout=0.5)
                    except TimeoutError:
                        continue
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                            self.error = f"tail closed: {msg.type}"
                            return
                        continue
                    now = time.time()
                    body = orjson.loads(msg.data)
                    for st in body.get("streams") or []:
                        self.latencies.extend(now - int(ts) / 1e9 for ts, *_ in st["values"])
                    self.dropped += len(body.get("dropped_entries") or [])
        except Exception as e:  # noqa: BLE001 - reported by the bench, never hidden
            self.error = f"tail failed: {e!r}"
            self.ready.set()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


#: promtail's pipeline: the Filebeat-grok equivalent for Redis 5.0+ lines (pid, role, time, level)
PROMTAIL_STAGES = r"""    pipeline_stages:
      - regex:
          expression: '^(?P<pid>\d+):(?P<role>[XCSM]) (?P<ts>\d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2}\.\d{3}) (?P<level>[.\-*#]) (?P<msg>.*)$'
      - labels:
          role:
          level:
      - timestamp:
          source: ts
          format: '02 Jan 2006 15:04:05.000'
          location: UTC
"""  # noqa: E501 - the regex reads best whole


def promtail_config(workdir: Path, loki_url: str, files: list[Path], labels: dict[str, str]) -> Path:
    """promtail at its defaults (batch 1 s / 1 MiB), one static target per file."""
    lab = "".join(f"          {k}: {orjson.dumps(v).decode()}\n" for k, v in labels.items())
    targets = "".join(f"      - targets: [localhost]\n        labels:\n{lab}          __path__: {p}\n" for p in files)
    cfg = (f"server: {{http_listen_address: 127.0.0.1, http_listen_port: {free_port()}, grpc_listen_port: 0, "
           f"log_level: warn}}\n"
           f"positions: {{filename: {workdir / 'positions.yaml'}}}\n"
           f"clients:\n  - url: {loki_url}/loki/api/v1/push\n"
           f"scrape_configs:\n  - job_name: redis\n    static_configs:\n{targets}{PROMTAIL_STAGES}")
    path = workdir / "promtail.yaml"
    path.write_text(cfg)
    return path


def agent_config(workdir: Path, loki_url: str, files: list[Path], labels: dict[str, str]) -> Path:
    """``redis-shipper run`` with a ``type: loki`` sink at its defaults, /metrics on."""
    srcs = "".join(f"  - type: file\n    path: {p}\n    start_at: beginning\n" for p in files)
    cfg = (f"state_dir: {workdir / 'state'}\ntimezone: UTC\nlabels: {orjson.dumps(labels).decode()}\n"
           f"metrics: {{listen: '127.0.0.1:{free_port()}'}}\nsources:\n{srcs}"
           f"sinks:\n  - type: loki\n    url: {loki_url}\n")
    path = workdir / "agent.yaml"
    path.write_text(cfg)
    return path


def command(agent: str, bindir: Path, config: Path, python: str) -> list[str]:
    if agent == "promtail":
        return [str(bindir / "promtail"), f"-config.file={config}"]
    return [python, "-m", "shipper.cli", "run", "--config", str(config)]


def selector(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def json_dump(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_INDENT_2)
