"""Redis Cluster lines: every message class of the real cluster corpora is known.

The corpora are 7-node clusters recorded by ``sample-logs/generate.py`` (Redis 7.0 and Valkey 9, notice
and verbose): create, automatic and manual failovers, a takeover, a reshard, a node added and removed, and
a cluster that fails for lack of a majority.
"""

from __future__ import annotations

from datetime import UTC

import pytest

from parsers.catalogue import classify
from parsers.logfile import LogParser

from conftest import SAMPLE_LOGS

CORPORA = ["cluster-7.0", "cluster-valkey-9"]


def _events(path):  # type: ignore[no-untyped-def]
    lp = LogParser(tz=UTC)
    out, off = [], 0
    for line in path.read_bytes().split(b"\n")[:-1]:
        out += lp.feed(line, off)
        off += len(line) + 1
    return out + lp.flush()


@pytest.mark.parametrize("corpus", CORPORA)
def test_at_most_two_percent_of_cluster_log_lines_are_unrecognized(corpus: str) -> None:
    files = sorted((SAMPLE_LOGS / corpus).glob("*.log"))
    assert len(files) == 14
    total = unknown = 0
    for f in files:
        for ev in _events(f):
            total += ev["lines"]
            if ev["event"] == "unrecognized":
                unknown += ev["lines"]
    assert total > 1000
    assert unknown / total <= 0.02, (unknown, total)


def _line(corpus: str, needle: str) -> str:
    """The message of the first real line of ``corpus`` that holds ``needle``."""
    for f in sorted((SAMPLE_LOGS / corpus).glob("*.log")):
        for line in f.read_text().splitlines():
            if needle in line:
                return line.split(" ", 6)[6]
    raise AssertionError(f"{needle!r} not in {corpus}")


NAMED = [
    ("cluster-7.0", "reported node", "node_reported_unreachable", "as not reachable"),
    ("cluster-7.0", "is back online", "node_reported_back_online", None),
    ("cluster-valkey-9", "is back online", "node_reported_back_online", None),
    ("cluster-7.0", "Manual failover requested by replica", "manual_failover_requested", None),
    ("cluster-valkey-9", "Manual failover requested by replica", "manual_failover_requested", None),
    ("cluster-7.0", "via CLUSTER SET-CONFIG-EPOCH", "config_epoch_set", None),
    ("cluster-7.0", "has old slots configuration", "stale_slots_update_sent", None),
    ("cluster-valkey-9", "has old slots configuration", "stale_slots_update_sent", None),
    ("cluster-7.0", "Accepting cluster node connection", "cluster_link_accepted", None),
    ("cluster-7.0", "Connection with Node", "cluster_link_failed", None),
    ("cluster-valkey-9", "Connection with Node", "cluster_link_failed", None),
    ("cluster-7.0", "IP address for this node updated", "node_ip_updated", None),
]


@pytest.mark.parametrize(("corpus", "needle", "event", "also"), NAMED)
def test_named_cluster_line_class_is_classified(corpus: str, needle: str, event: str, also: str | None) -> None:
    message = _line(corpus, needle if also is None else also)
    res = classify(message)
    assert res is not None, message
    assert res[0] == "cluster" and res[1] == event, (message, res)


def test_gossip_line_gives_both_node_ids() -> None:
    message = _line("cluster-7.0", "as not reachable")
    _c, _e, fields = classify(message)  # type: ignore[misc]
    ids = message.split()
    assert fields["sender_id"] == ids[1] and fields["node_id"] == ids[4]


def test_config_epoch_via_set_config_epoch_gives_the_epoch() -> None:
    message = _line("cluster-7.0", "via CLUSTER SET-CONFIG-EPOCH")
    _c, _e, fields = classify(message)  # type: ignore[misc]
    assert fields["epoch"] == int(message.split()[3])


# --- the failover summary --------------------------------------------------------------------------------

RUNS = [(c, lvl) for c in CORPORA for lvl in ("notice", "verbose")]


def _summaries(corpus: str, level: str) -> list[tuple[str, dict]]:  # type: ignore[type-arg]
    out = []
    for f in sorted((SAMPLE_LOGS / corpus).glob(f"{level}-node-*.log")):
        out += [(f.name, ev) for ev in _events(f) if ev["event"].startswith("cluster_failover_")]
    return out


@pytest.mark.parametrize(("corpus", "level"), RUNS)
def test_one_summary_per_failover_the_scenario_made(corpus: str, level: str) -> None:
    """The scenario makes one automatic failover, one CLUSTER FAILOVER, one TAKEOVER and one CLUSTER
    FAILOVER that times out: exactly four summaries, one each, in the log of the replica concerned."""
    kinds = sorted(
        (ev["event"], ev["fields"]["manual"], ev["fields"]["takeover"]) for _f, ev in _summaries(corpus, level)
    )
    assert kinds == [
        ("cluster_failover_completed", False, False),
        ("cluster_failover_completed", True, False),
        ("cluster_failover_completed", True, True),
        ("cluster_failover_failed", True, False),
    ]


@pytest.mark.parametrize(("corpus", "level"), RUNS)
def test_automatic_failover_names_the_failed_master_and_the_epoch(corpus: str, level: str) -> None:
    (name, ev), = [(n, e) for n, e in _summaries(corpus, level) if not e["fields"]["manual"]]
    text = (SAMPLE_LOGS / corpus / name).read_text()
    f = ev["fields"]
    assert f"about {f['failed_node']}" in text or f"Marking node {f['failed_node']}" in text
    assert f"Starting a failover election for epoch {f['epoch']}" in text
    assert f"offset {f['offset']})" in text
    assert 0 <= f["duration_ms"] < 10_000
    assert ev["lines"] == 0


@pytest.mark.parametrize(("corpus", "level"), RUNS)
def test_manual_failover_that_times_out_is_a_failed_summary(corpus: str, level: str) -> None:
    (ev,) = [e for _n, e in _summaries(corpus, level) if e["event"] == "cluster_failover_failed"]
    assert ev["fields"]["reason"] == "manual failover timed out"
    assert 5000 <= ev["fields"]["duration_ms"] < 6000  # CLUSTER_MF_TIMEOUT is 5 s
