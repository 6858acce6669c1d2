"""The agent's footprint on the Redis host: idle RSS and CPU, and start-up CPU (issues 15 and 16).

    python bench/footprint.py                                  # local, loki, loki+kubernetes; 1 run each
    python bench/footprint.py --only loki --repeat 3
    python bench/footprint.py --baseline /tmp/main             # before/after: another checkout, same run
    python bench/footprint.py --baseline-env MALLOC_ARENA_MAX=2  # a setting against its absence
    python bench/footprint.py --baseline-env REDIS_SHIPPER_TUNING=off
    python bench/footprint.py --json /tmp/footprint.json

Each configuration is ``redis-shipper run`` with two ``type: file`` sources (two real Redis 7.0 logs
from sample-logs/, read from the start: shipped at start-up, then nothing is written), /metrics on,
and a sink:

- **local**: the embedded local sink;
- **loki**: the real Loki 3.4.6 (``../shared/tools/loki/unpack``, started once for the whole run);
- **loki+kubernetes**: the same and a ``type: kubernetes`` source against the real kube-apiserver
  (``../shared/tools/kube/start-envtest``, started once): one Redis pod on the source's node, listed
  and then watched, its kubelet-layout log file (CRI lines) followed; the agent authenticates as a
  DaemonSet's pod does (a service account's token minted by the server, allowed get/list/watch on
  pods, the cluster's CA, ``KUBERNETES_SERVICE_HOST``/``PORT``).

Measured for each run: **start-up CPU** (utime + stime of the agent's process tree from spawn to
the first line shipped: the local sink's first event file, or Loki's distributor counting the
run's first line), then, after ``--settle`` s (the agent gives its free heap back once nothing moved
for a minute: the default waits for that), the **idle** figures over ``--window`` s: % of a core,
the tree's VmRSS (median and peak of 1 s samples) and, for the agent process, smaps_rollup's Pss,
anonymous and file-backed shares and the number of threads.

Every figure is printed beside what was measured in the same run: the baseline agent when one is
given (``--baseline DIR`` a checkout of another commit, e.g. ``git worktree add /tmp/main main``;
``--baseline-env K=V`` this checkout with an environment setting), interleaved run by run, and the
floors (``python -c pass``: start-up CPU; an idle interpreter: RSS), and the target (issue 16:
idle <= 55 MB and <= 0.3 % of a core). The machine's load average and calibration
(bench/calibrate.py) are printed before and after.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from agent_bench import ROOT, TreeSampler, ensure_bytecode, proc_children, proc_mem  # noqa: E402
from calibrate import calibration_ns  # noqa: E402
from realloki import Loki, free_port, json_dump, unpack  # noqa: E402

CONFIGS = ("local", "loki", "loki+kubernetes")
#: issue 16's idle targets (MB = 10^6 bytes, as the issue's figures)
TARGET_RSS_MB = 55.0
TARGET_CPU_PCT = 0.3
LOGS = ("replication-master.log", "misc.log")
ENVTEST = ROOT.parent / "shared" / "tools" / "kube" / "start-envtest"
NODE = "footprint-node"
STARTED: list[subprocess.Popen[bytes]] = []


# ============================================================================ servers
class Kube:
    """The real kube-apiserver + etcd (start-envtest) with one running Redis pod on ``NODE``."""

    def __init__(self, workdir: Path) -> None:
        import json
        import ssl

        if not ENVTEST.exists():
            raise SystemExit(f"{ENVTEST} not found: the real kube-apiserver lives in ../shared/tools/kube/")
        self.dir = workdir
        out = subprocess.run([str(ENVTEST), str(workdir)], capture_output=True, text=True, timeout=180)
        if out.returncode != 0:
            raise SystemExit(f"start-envtest failed:\n{out.stdout}{out.stderr}")
        env = dict(line.removeprefix("export ").split("=", 1)
                   for line in (workdir / "env.sh").read_text().splitlines() if line.startswith("export "))
        self.url, self.token, self.kubeconfig = env["KUBE_URL"], env["KUBE_TOKEN"], env["KUBECONFIG"]
        ctx = ssl.create_default_context(cafile=env["KUBE_CA"])

        def call(method: str, path: str, body: Any, ctype: str = "application/json") -> Any:
            req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method=method)
            req.add_header("Authorization", f"Bearer {self.token}")
            req.add_header("Content-Type", ctype)
            with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                return json.loads(r.read())

        call("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "cache"}})
        pod = call("POST", "/api/v1/namespaces/cache/pods", {
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "redis-0", "labels": {"app": "redis"}},
            "spec": {"nodeName": NODE, "containers": [{"name": "redis", "image": "redis:7.0"}]}})
        self.uid = pod["metadata"]["uid"]
        # the agent's credentials as a DaemonSet's pod has them: a service account allowed
        # get/list/watch on pods, its token minted by the server (TokenRequest), the cluster's CA
        call("POST", "/api/v1/namespaces/cache/serviceaccounts",
             {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "agent"}})
        call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "agent"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]})
        call("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "agent"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "agent"},
            "subjects": [{"kind": "ServiceAccount", "name": "agent", "namespace": "cache"}]})
        token = call("POST", "/api/v1/namespaces/cache/serviceaccounts/agent/token", {
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 7200}})
        self.sa_dir = workdir / "serviceaccount"
        self.sa_dir.mkdir()
        (self.sa_dir / "token").write_text(token["status"]["token"])
        (self.sa_dir / "namespace").write_text("cache")
        shutil.copy(env["KUBE_CA"], self.sa_dir / "ca.crt")
        u = urllib.parse.urlsplit(self.url)
        #: what the kubelet puts in every pod's environment
        self.env = {"KUBERNETES_SERVICE_HOST": str(u.hostname), "KUBERNETES_SERVICE_PORT": str(u.port)}
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        call("PATCH", "/api/v1/namespaces/cache/pods/redis-0/status", {"status": {
            "phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}],
            "containerStatuses": [{"name": "redis", "ready": True, "restartCount": 0, "image": "redis:7.0",
                                   "imageID": "", "state": {"running": {"startedAt": now}}}]}},
             "application/merge-patch+json")

    def write_pod_log(self, log_root: Path) -> int:
        """The pod's container log as the kubelet lays it out, CRI-wrapped real Redis lines."""
        d = log_root / f"cache_redis-0_{self.uid}" / "redis"
        d.mkdir(parents=True, exist_ok=True)
        lines = [x for x in (ROOT / "sample-logs" / "redis-7.0" / "startup-shutdown.log").read_text().splitlines()
                 if x.strip()]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
        (d / "0.log").write_text("".join(f"{stamp} stdout F {x}\n" for x in lines))
        return len(lines)

    def stop(self) -> None:
        subprocess.run([str(self.dir / "stop.sh")], capture_output=True, timeout=60)


# ============================================================================ one agent run
def agent_config(d: Path, sink: str, loki_url: str | None, kube: Kube | None, name: str) -> Path:
    logs = []
    for f in LOGS:
        p = d / f
        shutil.copy(ROOT / "sample-logs" / "redis-7.0" / f, p)
        logs.append(p)
    srcs = "".join(f"  - type: file\n    path: {p}\n    start_at: beginning\n" for p in logs)
    if kube is not None:
        kube.write_pod_log(d / "pods")
        srcs += (f"  - type: kubernetes\n    node: {NODE}\n    service_account_dir: {kube.sa_dir}\n"
                 f"    log_root: {d / 'pods'}\n")
    out = "  - type: local\n" if sink == "local" else f"  - type: loki\n    url: {loki_url}\n"
    cfg = (f"state_dir: {d / 'state'}\ntimezone: UTC\nlabels: {{job: footprint, run: {name}}}\n"
           f"metrics: {{listen: '127.0.0.1:{free_port()}'}}\nsources:\n{srcs}sinks:\n{out}")
    path = d / "agent.yaml"
    path.write_text(cfg)
    return path


def smaps(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        k, _, v = line.partition(":")
        if v.strip().endswith("kB"):
            out[k] = int(v.split()[0]) * 1024
    return out


def tree_rss(pid: int) -> int:
    total = 0
    for p in [pid, *proc_children(pid)]:
        try:
            total += proc_mem(p)["VmRSS"]
        except (OSError, KeyError):
            pass
    return total


def run_agent(args: argparse.Namespace, tmp: Path, config: str, variant: str, i: int,
              loki: Loki | None, kube: Kube | None) -> dict[str, Any]:
    name = f"{config.replace('+', '-')}-{variant}-{i}"
    d = tmp / name
    d.mkdir(parents=True)
    cfg = agent_config(d, "local" if config == "local" else "loki", loki.url if loki else None, kube, name)
    tree, env = ROOT, {**os.environ, **(kube.env if kube else {})}
    env.pop("KUBECONFIG", None)
    if variant == "baseline":
        if args.baseline:
            tree = Path(args.baseline)
            env["PYTHONPATH"] = str(tree)
        for kv in args.baseline_env:
            k, _, v = kv.partition("=")
            env[k] = v
    received0 = loki.lines_received() if loki else 0
    err = open(d / "stderr", "wb")  # noqa: SIM115 - closed below
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "shipper.cli", "run", "--config", str(cfg)], cwd=tree, env=env,
                            stdout=subprocess.DEVNULL, stderr=err)
    STARTED.append(proc)
    sampler = TreeSampler(proc.pid)

    def check() -> None:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited {proc.returncode}:\n{(d / 'stderr').read_bytes()[-3000:].decode()}")

    def shipped() -> bool:
        if loki is not None:
            return loki.lines_received() > received0
        events = d / "state" / "events"
        return events.is_dir() and any(p.stat().st_size > 0 for p in events.iterdir())

    try:
        while not shipped():
            check()
            if time.monotonic() - t0 > 120:
                raise SystemExit(f"{name}: nothing shipped within 120 s")
            time.sleep(0.02)
        sampler.sample()
        startup_cpu = sum(sampler.cpu.values())
        startup_wall = time.monotonic() - t0
        time.sleep(max(0.0, args.settle - (time.monotonic() - t0)))
        check()
        sampler.sample()
        c0, w0 = sum(sampler.cpu.values()), time.monotonic()
        rss: list[int] = []
        while time.monotonic() - w0 < args.window:
            rss.append(tree_rss(proc.pid))
            time.sleep(1.0)
        check()
        sampler.sample()
        cpu_pct = (sum(sampler.cpu.values()) - c0) / (time.monotonic() - w0) * 100
        sm = smaps(proc.pid)
        threads = len(list(Path(f"/proc/{proc.pid}/task").iterdir()))
    finally:
        sampler.halt.set()
        sampler.join()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        err.close()
    return {"startup_cpu_s": startup_cpu, "startup_wall_s": startup_wall, "cpu_pct": cpu_pct,
            "rss_mb": statistics.median(rss) / 1e6, "rss_peak_mb": max(rss) / 1e6,
            "pss_mb": sm.get("Pss", 0) / 1e6, "anon_mb": sm.get("Anonymous", 0) / 1e6,
            "file_mb": sm.get("Pss_File", 0) / 1e6, "threads": threads}


# ============================================================================ floors
def floors(n: int = 5) -> dict[str, float]:
    """``python -c pass``'s CPU (median of ``n``) and an idle interpreter's RSS (asyncio imported)."""
    cpus = []
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    p = subprocess.Popen([sys.executable, "-c", "import asyncio, time; print(flush=True); time.sleep(30)"],
                         stdout=subprocess.PIPE)
    assert p.stdout is not None
    p.stdout.readline()
    rss = proc_mem(p.pid)["VmRSS"]
    p.kill()
    p.wait()
    return {"python_pass_cpu_s": statistics.median(cpus), "python_asyncio_rss_mb": rss / 1e6}


# ============================================================================ report
COLUMNS = [("start-up CPU s", "startup_cpu_s", "{:.3f}"), ("idle % core", "cpu_pct", "{:.3f}"),
           ("RSS MB", "rss_mb", "{:.1f}"), ("peak RSS MB", "rss_peak_mb", "{:.1f}"), ("Pss MB", "pss_mb", "{:.1f}"),
           ("anon MB", "anon_mb", "{:.1f}"), ("file MB", "file_mb", "{:.1f}"), ("threads", "threads", "{:.0f}")]


def med(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def report(results: dict[str, dict[str, list[dict[str, Any]]]], fl: dict[str, float]) -> None:
    print(f"\nfloors (same run): python -c pass {fl['python_pass_cpu_s']:.3f} s of CPU; "
          f"an idle interpreter with asyncio {fl['python_asyncio_rss_mb']:.1f} MB RSS")
    print(f"targets: idle RSS <= {TARGET_RSS_MB:.0f} MB, idle CPU <= {TARGET_CPU_PCT} % of a core\n")
    head = f"{'config':17s} {'agent':9s} " + " ".join(f"{c[0]:>14s}" for c in COLUMNS)
    print(head)
    print("-" * len(head))
    for config, variants in results.items():
        for variant, rows in variants.items():
            cells = " ".join(f"{c[2].format(med(rows, c[1])):>14s}" for c in COLUMNS)
            print(f"{config:17s} {variant:9s} {cells}")
        if "baseline" in variants:
            this, base = variants["this"], variants["baseline"]
            cells = " ".join(f"{(med(this, c[1]) / med(base, c[1]) if med(base, c[1]) else 0):>13.2f}x"
                             for c in COLUMNS)
            print(f"{'':17s} {'this/base':9s} {cells}")
        this = variants["this"]
        print(f"{'':17s} {'vs target':9s} RSS {med(this, 'rss_mb'):.1f} / {TARGET_RSS_MB:.0f} MB "
              f"({'met' if med(this, 'rss_mb') <= TARGET_RSS_MB else 'NOT met'}), CPU {med(this, 'cpu_pct'):.3f} / "
              f"{TARGET_CPU_PCT} % ({'met' if med(this, 'cpu_pct') <= TARGET_CPU_PCT else 'NOT met'}); start-up "
              f"{med(this, 'startup_cpu_s') - fl['python_pass_cpu_s']:.3f} s above python -c pass")
        if len(this) > 1:
            print(f"{'':17s} {'range':9s} RSS {min(r['rss_mb'] for r in this):.1f}-{max(r['rss_mb'] for r in this):.1f}"
                  f" MB, start-up {min(r['startup_cpu_s'] for r in this):.3f}-"
                  f"{max(r['startup_cpu_s'] for r in this):.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=CONFIGS, action="append")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each agent per configuration (interleaved)")
    ap.add_argument("--settle", type=float, default=135.0, help="s from spawn to the idle window")
    ap.add_argument("--window", type=float, default=30.0, help="s of idle measured")
    ap.add_argument("--baseline", help="another checkout, run as a second agent (before/after)")
    ap.add_argument("--baseline-env", action="append", default=[], metavar="K=V",
                    help="the baseline agent's environment setting (this checkout unless --baseline)")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    configs = args.only or list(CONFIGS)
    variants = ["this"] + (["baseline"] if args.baseline or args.baseline_env else [])
    ensure_bytecode()
    if args.baseline:
        import compileall

        for sub in ("shipper", "parsers"):
            compileall.compile_dir(str(Path(args.baseline) / sub), quiet=1)
    print(f"load average {os.getloadavg()}, calibration {calibration_ns():.1f} ns (lower is faster)")
    tmp = Path(tempfile.mkdtemp(prefix="footprint-"))
    loki: Loki | None = None
    kube: Kube | None = None
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        if any(c != "local" for c in configs):
            (tmp / "loki").mkdir()
            loki = Loki(unpack(), tmp / "loki")
        if "loki+kubernetes" in configs:
            kube = Kube(tmp / "kube")
        fl = floors()
        for config in configs:
            results[config] = {v: [] for v in variants}
            for i in range(args.repeat):
                for v in variants:
                    row = run_agent(args, tmp, config, v, i, loki if config != "local" else None,
                                    kube if config == "loki+kubernetes" else None)
                    results[config][v].append(row)
                    print(f"  {config} {v} #{i}: " + ", ".join(f"{c[0]} {c[2].format(row[c[1]])}" for c in COLUMNS),
                          flush=True)
        report(results, fl)
        print(f"\nload average {os.getloadavg()}, calibration {calibration_ns():.1f} ns")
        if args.json:
            Path(args.json).write_bytes(json_dump({"floors": fl, "results": results}))
    finally:
        for p in STARTED:
            if p.poll() is None:
                p.kill()
        if kube is not None:
            kube.stop()
        if loki is not None:
            loki.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
