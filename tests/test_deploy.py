"""deploy/ holds what people copy into production: it must parse, validate with the real tools
(promtool, systemd-analyze, kubectl kustomize), and name only metrics, labels and events that
exist -- checked against a real scrape of the agent's /metrics and of the Debian
prometheus-redis-exporter in front of real Redis processes, and against the parsers' vocabulary.
"""

from __future__ import annotations

import ast
import asyncio
import configparser
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from parsers.events import CATEGORIES, LEVELS, SOURCES, dumps, make_event
from shipper.config import parse_config
from shipper.observe.server import ObserveServer, parse_listen
from shipper.sinks.loki import METADATA_KEYS

from servers import free_port, redis_server, require

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
RULES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "redis-events.json"
K8S = DEPLOY / "kubernetes"
COMPOSE = DEPLOY / "compose"
PROMTOOL = shutil.which("promtool") or ("/usr/bin/promtool" if os.path.exists("/usr/bin/promtool") else None)
EXPORTER = "/usr/bin/prometheus-redis-exporter"

#: series Prometheus itself adds to every scrape (not in any /metrics output)
PROMETHEUS_SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"}
#: labels Prometheus adds to every scraped series (target labels)
TARGET_LABELS = {"job", "instance"}
#: stream labels of the agent's Loki entries: the configured labels used in deploy/ plus the sink's
#: per-event ``stream_labels`` default (source, level); see shipper/sinks/loki.py
LOKI_STREAM_LABELS = {"job", "instance", "node", "source", "level"}
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool",
                   "offset", "inf", "nan"}


# --- what exists ------------------------------------------------------------------------------
def exposition_names(text: str) -> tuple[set[str], set[str]]:
    """(series names, label names) of a Prometheus text exposition, families without samples too."""
    names: set[str] = set()
    labels: set[str] = set()
    for fam in text_string_to_metric_families(text):
        suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_sum", "_count", "_created"],
                    "summary": ["_sum", "_count", "_created", ""], "info": ["_info"]}.get(fam.type, [""])
        names.update(fam.name + s for s in suffixes)
        for s in fam.samples:
            names.add(s.name)
            labels.update(s.labels)
    labels.discard("le")
    labels.discard("quantile")
    return names, labels


@pytest.fixture(scope="module")
def agent_metrics() -> tuple[set[str], set[str]]:
    """Scrape the agent's real /metrics endpoint (ObserveServer over the agent's registry)."""
    from prometheus_client.metrics import MetricWrapperBase

    from shipper.observe import metrics

    async def scrape() -> str:
        srv = ObserveServer("127.0.0.1:0", lambda: {"started": True})
        await srv.start()
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                None, lambda: urllib.request.urlopen(f"{srv.url}/metrics", timeout=10).read().decode())
        finally:
            await srv.close()

    names, labels = exposition_names(asyncio.run(scrape()))
    # label names of families that have no sample yet in this process (declared, always exported)
    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            labels.update(obj._labelnames)
    assert "redis_shipper_spool_bytes" in names and "process_resident_memory_bytes" in names
    return names, labels


@pytest.fixture(scope="module")
def exporter_metrics(tmp_path_factory: pytest.TempPathFactory) -> tuple[set[str], set[str]]:
    """Scrape the Debian redis_exporter in multi-target mode in front of a real master and replica."""
    require("prometheus-redis-exporter", os.access(EXPORTER, os.X_OK), EXPORTER)
    tmp = tmp_path_factory.mktemp("exporter")
    text = ""
    with redis_server("redis7", tmp, name="master") as master, \
            redis_server("redis7", tmp, name="replica", config={"replicaof": f"127.0.0.1 {master.port}"}) as replica:
        port = free_port()
        log = open(tmp / "exporter.log", "wb")  # noqa: SIM115 - closed below
        proc = subprocess.Popen([EXPORTER, "-redis.addr=", f"-web.listen-address=127.0.0.1:{port}"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 15
            while True:
                try:
                    for rp in (master, replica):
                        url = f"http://127.0.0.1:{port}/scrape?target=redis://127.0.0.1:{rp.port}"
                        text += urllib.request.urlopen(url, timeout=5).read().decode() + "\n"
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise
                    time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(10)
            log.close()
    names, labels = set(), set()
    # two scrapes concatenated repeat HELP/TYPE lines: parse each block separately
    for block in text.split("\n\n"):
        if block.strip():
            n, lab = exposition_names(block + "\n")
            names |= n
            labels |= lab
    assert "redis_up" in names and "redis_master_link_up" in names, "the replica was not scraped"
    return names, labels


def event_vocabulary() -> set[str]:
    """Every string constant in parsers/ and shipper/: an event name in a query must be one of them."""
    out: set[str] = set()
    for py in [*ROOT.joinpath("parsers").rglob("*.py"), *ROOT.joinpath("shipper").rglob("*.py")]:
        if "_proto" in py.parts:
            continue
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and re.fullmatch(r"[a-z_]+", node.value):
                out.add(node.value)
    return out


# --- query parsing ----------------------------------------------------------------------------
_STR = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_SELECTOR = re.compile(r"\{([^{}]*)\}")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|==|=)\s*("(?:[^"\\]|\\.)*")')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) used by a PromQL expression."""
    labels: set[str] = set()
    for sel in _SELECTOR.findall(expr):
        labels.update(m[0] for m in _MATCHER.findall(sel))
    body = _SELECTOR.sub(" ", expr)
    for _, group in _GROUPING.findall(body):
        labels.update(x.strip() for x in group.split(",") if x.strip())
    body = _GROUPING.sub(" ", body)
    body = _STR.sub(" ", body)
    body = re.sub(r"\[[^\]]*\]", " ", body)  # ranges: [5m], [$__rate_interval]
    metrics = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", body):
        name = m.group(1)
        if name.lower() in PROMQL_KEYWORDS or re.fullmatch(r"\d.*", name):
            continue
        metrics.add(name)
    return metrics, labels


def logql_parts(query: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]], set[str], set[str]]:
    """(stream matchers, pipeline label filters, grouping labels, labels extracted by | json)."""
    stream = [m for sel in _SELECTOR.findall(query) for m in _MATCHER.findall(sel)]
    rest = _SELECTOR.sub(" ", query)
    extracted: set[str] = set()
    for params in re.findall(r"\|\s*json\s+((?:[a-zA-Z_]\w*\s*=\s*\"[^\"]*\"\s*,?\s*)+)", rest):
        extracted.update(re.findall(r"([a-zA-Z_]\w*)\s*=", params))
    rest = re.sub(r"\|\s*json\s+((?:[a-zA-Z_]\w*\s*=\s*\"[^\"]*\"\s*,?\s*)+)", " ", rest)
    groups = {x.strip() for _, g in _GROUPING.findall(rest) for x in g.split(",") if x.strip()}
    filters = _MATCHER.findall(rest)
    return stream, filters, groups, extracted


def alternatives(value: str) -> list[str]:
    """The literal alternatives of a matcher value (``"a|b"`` -> a, b); templated values -> []."""
    v = value[1:-1]
    if "{{" in v or "$" in v:
        return []
    return [a for a in v.split("|") if a]


def check_logql(query: str, where: str, vocabulary: set[str]) -> list[str]:
    problems: list[str] = []
    query = re.sub(r"\{\{[^{}]*\}\}", "$tmpl", query)  # alert templates: {{ $labels.job }}
    stream, filters, groups, extracted = logql_parts(query)
    if not stream:
        problems.append(f"{where}: no stream selector in {query!r}")
    pipeline_labels = set(METADATA_KEYS) | LOKI_STREAM_LABELS | extracted
    for name, _, _ in stream:
        if name not in LOKI_STREAM_LABELS:
            problems.append(f"{where}: stream label {name!r} is not one the agent sends")
    for name, _, _ in filters:
        if name not in pipeline_labels:
            problems.append(f"{where}: label {name!r} is neither a stream label nor structured metadata")
    for name in groups:
        if name not in pipeline_labels:
            problems.append(f"{where}: grouping by unknown label {name!r}")
    allowed = {"category": set(CATEGORIES), "source": set(SOURCES), "level": set(LEVELS), "event": vocabulary}
    for name, _, value in stream + filters:
        for alt in alternatives(value) if name in allowed else []:
            if alt not in allowed[name]:
                problems.append(f"{where}: {name}={alt!r} is not a known {name}")
    return problems


def rule_entries() -> Iterator[tuple[str, dict[str, Any]]]:
    for f in RULES:
        for group in yaml.safe_load(f.read_text())["groups"]:
            for rule in group["rules"]:
                yield f"{f.name}:{rule.get('alert') or rule.get('record')}", rule


def dashboard_queries() -> Iterator[tuple[str, str, str]]:
    """(where, datasource type, query) of every panel target, variable and annotation."""
    d = json.loads(DASHBOARD.read_text())
    for p in d["panels"]:
        for t in p.get("targets", []):
            ds = (t.get("datasource") or p.get("datasource") or {}).get("type")
            yield f"panel {p['title']!r}", ds, t["expr"]
    for v in d["templating"]["list"]:
        if v["type"] == "query":
            q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
            yield f"variable {v['name']}", v["datasource"]["type"], q
    for a in d["annotations"]["list"]:
        if "expr" in a:
            yield f"annotation {a['name']!r}", a["datasource"]["type"], a["expr"]


def doc_blocks(path: Path, lang: str) -> list[str]:
    """The fenced code blocks of one language in a markdown doc; one query per non-comment line."""
    if not path.exists():
        return []
    out: list[str] = []
    for block in re.findall(rf"```{lang}\n(.*?)```", path.read_text(), re.S):
        out.extend(line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#"))
    return out


# --- everything parses ------------------------------------------------------------------------
def test_every_yaml_and_json_file_in_deploy_parses() -> None:
    files = [p for p in DEPLOY.rglob("*") if p.is_file() and not p.is_symlink()]
    parsed = 0
    for f in files:
        if f.suffix in (".yml", ".yaml"):
            docs = list(yaml.safe_load_all(f.read_text()))
            assert docs and all(d is not None for d in docs), f"{f}: empty YAML document"
            parsed += 1
        elif f.suffix == ".json":
            json.loads(f.read_text())
            parsed += 1
    assert parsed >= 15


def test_promtool_checks_the_rule_files() -> None:
    require("promtool", PROMTOOL is not None)
    r = subprocess.run([PROMTOOL, "check", "rules", *map(str, RULES)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(RULES) == 2


def test_alerts_fire_on_what_they_are_written_for_promtool_unit_tests() -> None:
    require("promtool", PROMTOOL is not None)
    r = subprocess.run([PROMTOOL, "test", "rules", "rules.test.yml"], cwd=DEPLOY / "prometheus" / "tests",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_promtool_checks_the_compose_prometheus_config() -> None:
    require("promtool", PROMTOOL is not None)
    r = subprocess.run([PROMTOOL, "check", "config", "prometheus/prometheus.yml"], cwd=COMPOSE,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 rule files found" in r.stdout


# --- names exist ------------------------------------------------------------------------------
def test_rules_use_only_metrics_and_labels_that_exist(agent_metrics: tuple[set[str], set[str]],
                                                      exporter_metrics: tuple[set[str], set[str]]) -> None:
    names = agent_metrics[0] | exporter_metrics[0] | PROMETHEUS_SYNTHETIC
    labels = agent_metrics[1] | exporter_metrics[1] | TARGET_LABELS
    problems = []
    used_agent = used_exporter = 0
    for where, rule in rule_entries():
        metrics, labs = promql_names(rule["expr"])
        problems += [f"{where}: unknown metric {m}" for m in metrics - names]
        problems += [f"{where}: unknown label {x}" for x in labs - labels]
        for templ in re.findall(r"\$labels\.(\w+)", json.dumps(rule.get("annotations", {}))):
            if templ not in labels:
                problems.append(f"{where}: annotation uses unknown label {templ}")
        used_agent += any(m.startswith("redis_shipper_") for m in metrics)
        used_exporter += any(m in exporter_metrics[0] for m in metrics)
    assert not problems, "\n".join(problems)
    assert used_agent >= 8 and used_exporter >= 8


def test_rule_annotations_link_to_events_that_exist() -> None:
    vocabulary = event_vocabulary()
    problems, linked = [], 0
    for where, rule in rule_entries():
        q = rule.get("annotations", {}).get("logql")
        if q:
            linked += 1
            problems += check_logql(q, where, vocabulary)
    assert not problems, "\n".join(problems)
    redis_rules = [r for w, r in rule_entries() if w.startswith("redis.rules")]
    assert all("logql" in r["annotations"] for r in redis_rules), "every Redis alert links to its events"
    assert {"RedisDown", "RedisMissingMaster", "RedisTooManyMasters", "RedisReplicationBroken",
            "RedisRejectedConnections", "RedisOutOfConfiguredMaxmemory"} <= {r["alert"] for r in redis_rules}
    assert linked >= len(redis_rules)


def test_dashboard_uses_only_metrics_labels_and_events_that_exist(
        agent_metrics: tuple[set[str], set[str]], exporter_metrics: tuple[set[str], set[str]]) -> None:
    names = agent_metrics[0] | exporter_metrics[0] | PROMETHEUS_SYNTHETIC
    labels = agent_metrics[1] | exporter_metrics[1] | TARGET_LABELS
    vocabulary = event_vocabulary()
    problems: list[str] = []
    kinds = {"prometheus": 0, "loki": 0}
    for where, ds, q in dashboard_queries():
        assert ds in kinds, f"{where}: datasource type {ds!r}"
        kinds[ds] += 1
        if ds == "loki":
            problems += check_logql(q, where, vocabulary)
            continue
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", q)
        if m:
            metrics, labs = promql_names(m.group(1))
            labs.add(m.group(2))
        else:
            metrics, labs = promql_names(q)
        problems += [f"{where}: unknown metric {x}" for x in metrics - names]
        problems += [f"{where}: unknown label {x}" for x in labs - labels]
    assert not problems, "\n".join(problems)
    assert kinds["prometheus"] >= 10 and kinds["loki"] >= 6


def test_dashboard_annotates_failovers_restarts_and_config_changes() -> None:
    d = json.loads(DASHBOARD.read_text())
    ann = {a["name"]: a["expr"] for a in d["annotations"]["list"] if "expr" in a}
    assert "failover_completed" in ann["Failovers"] and "sentinel_switch_master" in ann["Failovers"]
    assert "ready_to_accept_connections" in ann["Restarts"] and "shutdown" in ann["Restarts"]
    assert "config_changed" in ann["Config changes"]
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert "redis_instance_info" in variables["job"]["query"]["query"]
    assert "redis_instance_info" in variables["instance"]["query"]["query"]
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    assert {"logs"} <= {p["type"] for p in d["panels"]}


def test_explore_queries_in_the_docs_use_known_labels_and_events() -> None:
    doc = ROOT / "docs" / "explore-queries.md"
    queries = doc_blocks(doc, "logql")
    assert len(queries) >= 8, "docs/explore-queries.md has ready-made LogQL queries"
    vocabulary = event_vocabulary()
    problems = [p for i, q in enumerate(queries) for p in check_logql(q, f"logql #{i + 1}", vocabulary)]
    assert not problems, "\n".join(problems)


def test_kql_queries_in_the_docs_use_fields_of_the_index_template() -> None:
    template = json.loads((DEPLOY / "elasticsearch" / "index-template.json").read_text())
    fields: set[str] = set()

    def walk(props: dict[str, Any], prefix: str = "") -> None:
        for k, v in props.items():
            if "properties" in v:
                walk(v["properties"], f"{prefix}{k}.")
            else:
                fields.add(prefix + k)

    walk(template["template"]["mappings"]["properties"])
    queries = doc_blocks(ROOT / "docs" / "explore-queries.md", "kql")
    assert len(queries) >= 5
    problems = []
    for q in queries:
        for name in re.findall(r"([a-zA-Z_@][\w.@]*)\s*:", _STR.sub('""', q)):
            ok = name in fields or name.startswith(("labels.", "redis_shipper.fields."))
            if not ok:
                problems.append(f"{q!r}: field {name!r} is not mapped by the index template")
    assert not problems, "\n".join(problems)


def test_loki_derived_field_finds_the_instance_in_a_real_event_line() -> None:
    ds = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "redis-shipper.yaml").read_text())
    by_name = {d["name"]: d for d in ds["datasources"]}
    derived = {f["name"]: f for f in by_name["Loki"]["jsonData"]["derivedFields"]}
    ev = make_event(timestamp="2024-01-01T00:00:00.000000Z", source="slowlog", category="slowlog",
                    event="slowlog_entry", fields={"run_id": "a" * 40, "command": "get"})
    ev["labels"] = {"job": "redis", "instance": "redis://10.0.0.5:6379"}
    line = dumps(ev).decode()
    assert re.search(derived["instance"]["matcherRegex"], line).group(1) == "redis://10.0.0.5:6379"
    assert re.search(derived["run_id"]["matcherRegex"], line).group(1) == "a" * 40
    uids = {d["uid"] for d in ds["datasources"]}
    for d in ds["datasources"]:
        for c in d.get("correlations", []):
            assert c["targetUID"] in uids
        for f in d.get("jsonData", {}).get("derivedFields", []) + d.get("jsonData", {}).get("dataLinks", []):
            assert f["datasourceUid"] in uids
    assert {"prometheus", "loki", "elasticsearch"} <= {d["type"] for d in ds["datasources"]}


# --- Kubernetes ---------------------------------------------------------------------------------
#: the two ways to deploy (deploy/kubernetes/<mode>): Redis in pods (discovery), Redis on the nodes
K8S_MODES = ["pods", "host-files"]
#: what the downward API gives each DaemonSet's container (daemonset.yaml ``env``)
DOWNWARD = {"NODE_NAME": "worker-1", "POD_NAME": "redis-shipper-x7k2p", "POD_IP": "10.244.1.9",
            "HOST_IP": "10.0.0.21"}


def _k8s_objects(mode: str) -> list[dict[str, Any]]:
    from kustomize_lite import render

    return render(K8S / mode)


def _k8s_docs(mode: str = "host-files") -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in _k8s_objects(mode)}


def _configmap_config(env: dict[str, str], mode: str = "host-files") -> Any:
    cm = _k8s_docs(mode)["ConfigMap"]
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return parse_config(yaml.safe_load(cm["data"]["config.yaml"]), "configmap")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _canonical(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(d, sort_keys=True) for d in objects)


@pytest.mark.parametrize("mode", K8S_MODES)
def test_kustomization_resources_exist_and_render(mode: str) -> None:
    objects = _k8s_objects(mode)
    expected = {"pods": ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet", "Namespace",
                         "ServiceAccount"],
                "host-files": ["ConfigMap", "DaemonSet", "Namespace", "ServiceAccount"]}[mode]
    assert sorted(d["kind"] for d in objects) == expected
    ns = yaml.safe_load((K8S / mode / "kustomization.yaml").read_text())["namespace"]
    for d in objects:
        assert d["apiVersion"] and d["metadata"]["name"]
        assert d["metadata"].get("namespace") == (None if d["kind"] in ("Namespace", "ClusterRole",
                                                                      "ClusterRoleBinding") else ns)
        assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "redis-observability"
    # kubectl is not a Debian package (scripts/test does not install it): where it is here, the
    # objects tests/kustomize_lite.py renders are exactly kubectl's
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        r = subprocess.run([kubectl, "kustomize", str(K8S / mode)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert _canonical([d for d in yaml.safe_load_all(r.stdout) if d]) == _canonical(objects)


def test_both_modes_replace_each_other_rather_than_run_two_agents_on_one_spool() -> None:
    """Both DaemonSets keep their spool in the node's /var/lib/redis-shipper: applying the other
    mode must replace the DaemonSet and its ConfigMap (same names), never add a second agent."""
    pods, host = _k8s_docs("pods"), _k8s_docs("host-files")
    for kind in ("DaemonSet", "ConfigMap", "ServiceAccount", "Namespace"):
        assert (pods[kind]["metadata"]["name"], pods[kind]["metadata"].get("namespace")) == \
            (host[kind]["metadata"]["name"], host[kind]["metadata"].get("namespace")), kind
    assert pods["ServiceAccount"] == host["ServiceAccount"]  # one base


@pytest.mark.parametrize("mode", K8S_MODES)
def test_the_configmap_config_passes_redis_shipper_check(mode: str, tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(_k8s_docs(mode)["ConfigMap"]["data"]["config.yaml"])
    beside = Path(sys.executable).parent / "redis-shipper"
    exe = [str(beside)] if beside.exists() else [sys.executable, "-m", "shipper.cli"]
    r = subprocess.run([*exe, "check", "--config", str(cfg)], capture_output=True, text=True, timeout=60,
                       env={**os.environ, **DOWNWARD})
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{cfg}: valid" in r.stdout
    assert "error" not in r.stderr.lower(), r.stderr


@pytest.mark.parametrize("mode", K8S_MODES)
def test_daemonset_probes_port_grace_period_and_hardening_match_the_configmap(mode: str) -> None:
    docs = _k8s_docs(mode)
    pod = docs["DaemonSet"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env_names = {e["name"] for e in c["env"]}
    assert {"NODE_NAME", "POD_IP", "POD_NAME"} <= env_names
    assert all("fieldRef" in e["valueFrom"] for e in c["env"])
    # every ${VAR} of the ConfigMap is provided by the pod
    used = set(re.findall(r"\$\{([A-Z_]+)", docs["ConfigMap"]["data"]["config.yaml"]))
    assert used <= env_names, used - env_names
    cfg = _configmap_config({n: "10.0.0.1" for n in env_names}, mode)
    from shipper.pipeline.labels import Labeler

    Labeler(cfg)  # the labels rules hold too
    host, port = parse_listen(cfg.metrics.listen)  # type: ignore[misc]
    assert host not in ("127.0.0.1", "localhost", "::1"), "the kubelet cannot probe a loopback address"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/ready")):
        get = c[probe]["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == port
    assert pod["terminationGracePeriodSeconds"] > cfg.shutdown_timeout
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["privileged"] is False
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    assert "add" not in sc["capabilities"]
    assert c["resources"]["requests"] and c["resources"]["limits"]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    host_paths = {v["hostPath"]["path"]: n for n, v in volumes.items() if "hostPath" in v}
    state = host_paths["/var/lib/redis-shipper"]
    assert mounts[state]["mountPath"] == cfg.state_dir
    # every other hostPath is read-only, at the node's own path (Docker's symlinks resolve)
    for path, name in host_paths.items():
        if name != state:
            assert mounts[name]["readOnly"] is True and mounts[name]["mountPath"] == path, path
    # the config file the agent is told to read is where the ConfigMap is mounted
    config_arg = c["args"][c["args"].index("--config") + 1]
    cm_mount = next(m for m in c["volumeMounts"] if volumes[m["name"]].get("configMap"))
    assert config_arg == os.path.join(cm_mount["mountPath"], "config.yaml")
    assert pod["serviceAccountName"] == docs["ServiceAccount"]["metadata"]["name"]
    types = [src.type for src in cfg.sources]
    if mode == "pods":
        assert types == ["kubernetes"]
        (k8s,) = cfg.sources
        assert k8s.node == "10.0.0.1"  # ${NODE_NAME}
        assert set(host_paths) == {"/var/lib/redis-shipper", "/var/log/pods", "/var/lib/docker/containers",
                                   "/etc/localtime"}
        assert mounts[host_paths[k8s.log_root]]["mountPath"] == k8s.log_root
        # the token the source lists and watches pods with (rbac.yaml limits it to that)
        assert pod["automountServiceAccountToken"] is True
        binding = docs["ClusterRoleBinding"]
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": pod["serviceAccountName"],
                                        "namespace": docs["DaemonSet"]["metadata"]["namespace"]}]
        assert binding["roleRef"]["name"] == docs["ClusterRole"]["metadata"]["name"]
        assert docs["ClusterRole"]["rules"] == [{"apiGroups": [""], "resources": ["pods"],
                                                 "verbs": ["get", "list", "watch"]}]
    else:
        assert "kubernetes" not in types
        assert sc["runAsNonRoot"] is True
        # no Kubernetes API: no token in the pod
        assert pod.get("automountServiceAccountToken", docs["ServiceAccount"].get("automountServiceAccountToken")) \
            is False
        logs = host_paths["/var/log/redis"]
        for src in cfg.sources:
            if src.type == "file":
                assert src.path.startswith(mounts[logs]["mountPath"] + "/")


# --- systemd ------------------------------------------------------------------------------------
def _unit() -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read_string((DEPLOY / "systemd" / "redis-shipper.service").read_text())
    return cp


def _seconds(v: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|s|min|m)?", v.strip())
    assert m, v
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "min": 60, "m": 60, None: 1}[m.group(2)]


def test_systemd_unit_is_hardened_and_matches_its_config(monkeypatch: pytest.MonkeyPatch) -> None:
    svc = _unit()["Service"]
    for key, value in {"ProtectSystem": "strict", "NoNewPrivileges": "yes", "ProtectHome": "yes",
                       "PrivateTmp": "yes", "KillSignal": "SIGTERM", "DynamicUser": "yes",
                       "StateDirectory": "redis-shipper"}.items():
        assert svc.get(key) == value, key
    assert "-/var/log/redis" in svc["ReadOnlyPaths"].split()
    assert svc["ExecReload"] == "/bin/kill -HUP $MAINPID"
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/redis-shipper.service")
    cfg = parse_config(yaml.safe_load((DEPLOY / "systemd" / "config.yaml").read_text()), "systemd config")
    assert _seconds(svc["TimeoutStopSec"]) > cfg.shutdown_timeout
    assert cfg.state_dir == f"/var/lib/{svc['StateDirectory']}"
    assert parse_listen(cfg.metrics.listen)[0] == "127.0.0.1"  # type: ignore[index]
    for src in cfg.sources:
        if src.type == "file":
            assert src.path.startswith("/var/log/redis/")


def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    text = (DEPLOY / "systemd" / "redis-shipper.service").read_text()
    assert "ExecStart=/usr/local/bin/redis-shipper " in text
    assert set(_unit().sections()) == {"Unit", "Service", "Install"}
    sa = shutil.which("systemd-analyze")
    if sa is None:  # containers without systemd: the configparser checks above and in the hardening test
        return
    # the entry point of the environment running the tests (scripts/test does not put .venv/bin on PATH)
    beside = Path(sys.executable).parent / "redis-shipper"
    exe = str(beside) if beside.exists() else shutil.which("redis-shipper")
    assert exe, "redis-shipper is installed (pip install -e .)"
    # verify checks that ExecStart exists: point it at this environment's entry point
    unit = tmp_path / "redis-shipper.service"
    unit.write_text(text.replace("ExecStart=/usr/local/bin/redis-shipper", f"ExecStart={exe}"))
    r = subprocess.run([sa, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    noise = [ln for ln in r.stderr.splitlines() if ln.strip() and "redis-shipper.service" in ln]
    assert r.returncode == 0 and not noise, r.stderr  # unknown keys and bad values are only warnings


# --- container ----------------------------------------------------------------------------------
def test_dockerfile_is_non_root_read_only_friendly_and_copies_what_exists() -> None:
    text = (DEPLOY / "container" / "Dockerfile").read_text()
    lines = [ln.strip() for ln in re.sub(r"\\\n", " ", text).splitlines() if ln.strip() and not ln.startswith("#")]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert froms[-1].split()[1] == "python:3.11-slim"
    final = lines[lines.index(froms[-1]):]
    user = [ln.split()[1] for ln in final if ln.startswith("USER ")]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    env = " ".join(ln for ln in final if ln.startswith("ENV "))
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    volume = json.loads(next(ln for ln in final if ln.startswith("VOLUME "))[len("VOLUME "):])
    assert volume == [_configmap_config({n: "x" for n in ("NODE_NAME", "POD_IP", "POD_NAME", "HOST_IP")}).state_dir]
    for ln in lines:
        if ln.startswith("COPY ") and "--from" not in ln:
            for src in ln.split()[1:-1]:
                assert (ROOT / src).exists(), f"COPY {src}: not in the repository"
    assert json.loads(next(ln for ln in final if ln.startswith("ENTRYPOINT "))[len("ENTRYPOINT "):]) == \
        ["redis-shipper"]


# --- compose ------------------------------------------------------------------------------------
def _conf_value(path: Path, key: str) -> str | None:
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts and parts[0] == key:
            return parts[1]
    return None


def test_compose_demo_is_consistent() -> None:
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "sentinel-1", "sentinel-2", "sentinel-3", "redis-exporter", "prometheus", "loki", "grafana",
            "shipper"} <= set(services)
    named = set(compose["volumes"])
    produced: list[tuple[str, str]] = []  # (volume, path inside it) of every Redis/Sentinel log
    for name, s in services.items():
        for v in s.get("volumes", []):
            src, dst = v.split(":")[:2]
            if src.startswith("."):
                assert (COMPOSE / src).exists(), f"{name}: bind mount {src} does not exist"
            else:
                assert src in named, f"{name}: volume {src} is not declared"
        if s.get("image", "").startswith("redis:"):
            conf = next((COMPOSE / v.split(":")[0]) for v in s["volumes"] if v.split(":")[0].endswith(".conf"))
            logfile = _conf_value(conf, "logfile")
            assert logfile and logfile.startswith("/data/")
            vol = next(v.split(":")[0] for v in s["volumes"] if v.split(":")[1] == "/data")
            produced.append((vol, logfile[len("/data/"):]))
    agents = {n: s for n, s in services.items() if s.get("image", "").startswith("redis-shipper")}
    assert agents
    for name, s in agents.items():
        assert s["read_only"] is True and s["user"].split(":")[0] != "0"
        mounts = {v.split(":")[1]: v.split(":")[0] for v in s["volumes"]}
        cfg_file = next(src for dst, src in mounts.items() if dst == "/etc/redis-shipper/config.yaml")
        cfg = parse_config(yaml.safe_load((COMPOSE / cfg_file).read_text()), cfg_file)
        assert mounts[cfg.state_dir] in named
        visible = [f"{dst}/{rel}" for dst, src in mounts.items() for vol, rel in produced if src == vol]
        for src in cfg.sources:
            if src.type == "file":
                assert any(fnmatch.fnmatch(p, src.path) for p in visible), f"{name}: {src.path} matches no log"
        assert parse_listen(cfg.metrics.listen)[0] == "0.0.0.0"  # type: ignore[index]
    prom = yaml.safe_load((COMPOSE / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    targets = {t for sc in jobs["redis-shipper"]["static_configs"] for t in sc["targets"]}
    assert targets == {f"{n}:9377" for n in agents}


# --- scheduling, time zone, reload and permission traps ----------------------------------------
@pytest.mark.parametrize("mode", K8S_MODES)
def test_daemonset_has_no_scheduling_traps(mode: str) -> None:
    spec = _k8s_docs(mode)["DaemonSet"]["spec"]["template"]["spec"]
    assert "priorityClassName" not in spec  # system-node-critical is quota-limited outside kube-system
    text = (K8S / mode / "daemonset.yaml").read_text()
    if mode == "host-files":
        assert spec["nodeSelector"] == {"redis-shipper.io/redis-logs": "true"}
        assert "kubectl label node <node> redis-shipper.io/redis-logs=true" in text
    else:  # a Redis pod may be scheduled on any node
        assert "nodeSelector" not in spec and "affinity" not in spec
    for v in spec["volumes"]:
        if "hostPath" in v:  # type Directory/File leaves pods in ContainerCreating where the path is missing
            assert v["hostPath"].get("type", "") in ("", "DirectoryOrCreate", "FileOrCreate"), v
    assert "kill -HUP" not in text  # python:slim has no kill: the documented reload is POST /-/reload
    assert "/-/reload" in text


@pytest.mark.parametrize("mode", K8S_MODES)
def test_daemonset_mounts_the_node_zone_and_the_configmap_leaves_timezone_to_it(mode: str) -> None:
    from shipper.util.tz import host_timezone

    spec = _k8s_docs(mode)["DaemonSet"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    lt = mounts["/etc/localtime"]
    assert lt.get("readOnly") is True and volumes[lt["name"]]["hostPath"]["path"] == "/etc/localtime"
    cfg = _configmap_config(DOWNWARD, mode)
    assert cfg.timezone is None  # so host_timezone() reads the mounted /etc/localtime
    assert "/etc/localtime" in (host_timezone.__doc__ or "")


@pytest.mark.parametrize("mode", K8S_MODES)
def test_kubernetes_manifests_pass_kubernetes_validate_strict(mode: str) -> None:
    import kubernetes_validate

    for d in _k8s_objects(mode):
        kubernetes_validate.validate(d, "1.30", strict=True)


def test_systemd_unit_tolerates_a_missing_log_directory() -> None:
    text = (DEPLOY / "systemd" / "redis-shipper.service").read_text()
    ro = next(line for line in text.splitlines() if line.startswith("ReadOnlyPaths="))
    assert all(p.startswith("-") for p in ro.split("=", 1)[1].split()), ro


def test_compose_redis_logs_are_group_readable_by_the_agents() -> None:
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    services = compose["services"]
    for name, s in services.items():
        if s.get("image", "").startswith("redis:"):
            assert "umask 0027 &&" in " ".join(s["entrypoint"]), name  # not the entrypoint's 0077
        if s.get("image", "").startswith("redis-shipper"):
            assert "999" in [str(g) for g in s.get("group_add", [])], name  # the image's redis group


def test_compose_grafana_provisions_only_what_the_demo_runs() -> None:
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())
    services = compose["services"]
    mounts = dict(v.split(":")[1::-1] for v in services["grafana"]["volumes"])
    ds_file = next(src for dst, src in mounts.items() if "provisioning/datasources" in dst)
    ds = yaml.safe_load((COMPOSE / ds_file).read_text())["datasources"]
    hosts = {d["url"].split("//")[1].split(":")[0] for d in ds}
    assert hosts <= set(services), hosts
    uids = {d["uid"] for d in ds}
    for d in ds:
        assert {c["targetUID"] for c in d.get("correlations", [])} <= uids
    generic = {d["uid"]: d for d in yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "redis-shipper.yaml").read_text())["datasources"]}
    for d in ds:
        assert d["type"] == generic[d["uid"]]["type"] and d["url"] == generic[d["uid"]]["url"]
