"""Every LogQL expression the project ships (docs/explore-queries.md, the Grafana dashboard, the
data source correlation, the ``logql`` annotations of the Prometheus alerting rules) runs on the
real Loki against the sample logs, and the log queries return the events and categories they name."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from test_real_loki_sink import ALL_END, START, parsed, send, sink, wait_entries

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.real_loki, pytest.mark.integration]
TENANT = "queries"
INSTANCE = "redis://10.0.0.5:6379"
FILES = ["redis-7.0/startup-shutdown.log", "redis-7.0/config-set-rewrite.log", "redis-7.0/replication-master.log",
         "redis-7.0/security.log", "redis-7.0/crash-segfault.log", "sentinel-7.0/sentinel-1.log",
         # cluster nodes: one won an election, one gave up (logged on 2026-12-07)
         "cluster-7.0/notice-node-6.log", "cluster-7.0/notice-node-5.log"]
#: the sample logs span 2026-11-25 to 2026-12-07: every query covers them all
END = ALL_END


def shipped_queries() -> list[tuple[str, str]]:
    """(where, LogQL) of every query in the docs and deploy files."""
    out: list[tuple[str, str]] = []
    doc = (ROOT / "docs" / "explore-queries.md").read_text()
    for block in re.findall(r"```logql\n(.*?)```", doc, re.S):
        out += [("explore-queries.md", q) for q in block.splitlines() if q.strip() and not q.startswith("#")]
    dash = orjson.loads((ROOT / "deploy" / "grafana" / "dashboards" / "redis-events.json").read_bytes())

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if isinstance(x.get("expr"), str) and "loki" in str(x.get("datasource", "")):
                out.append(("redis-events.json", x["expr"]))
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(dash.get("panels", []))
    provisioning = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "redis-shipper.yaml"
    ds = yaml.safe_load(provisioning.read_text())
    for d in ds["datasources"]:
        for c in d.get("correlations", []):
            if c["targetUID"] == "loki":
                out.append(("datasources correlation", c["config"]["target"]["expr"]))
    for rules in sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml")):
        for g in yaml.safe_load(rules.read_text())["groups"]:
            out += [(rules.name, r["annotations"]["logql"]) for r in g["rules"] if "logql" in r.get("annotations", {})]
    return out


def concrete(q: str) -> str:
    """Grafana's variables, and the alert templates, as they would be filled for the sample logs."""
    return (q.replace("{{ $labels.job }}", "redis").replace("{{ $labels.instance }}", INSTANCE)
            .replace("$__auto", "5m").replace("$__range", "1h").replace("${job}", "redis").replace("$job", "redis")
            .replace("${instance}", INSTANCE).replace("$instance", ".+"))


@pytest.fixture(scope="module")
def shipped(loki_session):  # type: ignore[no-untyped-def]
    """The sample logs as one Redis (``job="redis"``, ``instance`` of the docs), one push per file."""
    from parsers.events import dumps
    from shipper.api import SpooledEvent

    out = []
    for f in FILES:
        batch = []
        for se in parsed(f, job="redis"):
            se.event["labels"]["instance"] = INSTANCE
            batch.append(SpooledEvent(se.seq, se.event, dumps(se.event)))
        assert send(sink(loki_session.url, TENANT), batch).rejected == []
        out += batch
    wait_entries(loki_session, TENANT, '{job="redis"}', len(out), end=END)
    return out


def test_the_shipped_queries_are_found_and_many(loki):
    qs = shipped_queries()
    assert sum(w == "explore-queries.md" for w, _ in qs) >= 20
    assert sum(w == "redis-events.json" for w, _ in qs) >= 5
    assert sum(w.endswith(".rules.yml") for w, _ in qs) >= 15


@pytest.mark.parametrize("where,query", shipped_queries(), ids=lambda v: v[:60] if isinstance(v, str) else v)
def test_every_shipped_logql_query_runs_on_the_real_loki(loki, shipped, where, query):
    result = loki.query_range(TENANT, concrete(query), START, END)
    names = set(re.findall(r'event=~?"([^"]+)"', query))
    wanted = {n for alt in names for n in alt.split("|")}
    present = {se.event["event"] for se in shipped}
    if query.lstrip().startswith("{") and wanted & present and "instance_restarted" not in query:
        got = {orjson.loads(v[1])["event"] for st in result for v in st["values"]}
        assert got, f"{where}: {query} returned nothing"
        assert got <= wanted | {"role_changed"} or "or" in query, got - wanted
    categories = {c for alt in re.findall(r'\| category=~?"([^"]+)"', query) for c in alt.split("|")}
    if query.lstrip().startswith("{") and categories & {se.event["category"] for se in shipped}:
        got = {orjson.loads(v[1])["category"] for st in result for v in st["values"]}
        assert got, f"{where}: {query} returned nothing"
        assert got <= categories, got - categories


def test_most_shipped_queries_return_entries_for_the_sample_logs(loki, shipped):
    """A query that parses but matches nothing proves little: most of them must find events."""
    hits = [q for _, q in shipped_queries() if loki.query_range(TENANT, concrete(q), START, END)]
    # slowlog, ACL, poller and agent events are not in sample-logs/: those queries are empty here
    assert len(hits) >= 15, f"only {len(hits)} of {len(shipped_queries())} queries found events"
