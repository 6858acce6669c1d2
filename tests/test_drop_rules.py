"""``drop:`` rules per source: noise not shipped, counted per rule, and no gap in the audit chain."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from test_cli_run import read_out, start_agent, wait_for

from shipper.config import ConfigError, parse_config
from shipper.config.drop import DropRule
from shipper.observe import metrics
from shipper.pipeline.drop import Dropper

from conftest import SAMPLE_LOGS

SAMPLE = SAMPLE_LOGS / "redis-7.0" / "replication-master.log"


def ev(**kw: str) -> dict:
    return {"event": "x", "category": "other", "level": "notice", "message": "", **kw}


def test_a_rule_matches_only_when_every_condition_it_gives_holds() -> None:
    d = Dropper("test-drop-unit", [DropRule(category="persistence", level=["notice", "verbose"]),
                                   DropRule(name="saved", message=r"^DB saved on disk$")])
    events = [ev(category="persistence", level="notice"), ev(category="persistence", level="warning"),
              ev(message="DB saved on disk"), ev(message="DB saved on disk twice")]
    kept = d.filter(events)
    assert kept == [events[1], events[3]]
    assert d.dropped == {"rule0": 1, "saved": 1}
    assert metrics.EVENTS_DROPPED.labels("test-drop-unit", "saved")._value.get() == 1


def test_a_rule_without_conditions_or_with_a_bad_regex_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config({"sources": [{"type": "file", "path": "x", "drop": [{"name": "all"}, {"message": "("}]}]})
    keys = [k for k, _ in e.value.problems]
    assert keys == ["sources[0].drop[0]", "sources[0].drop[1].message"]


def test_dropped_events_are_not_shipped_and_the_rest_keep_a_gapless_sequence(tmp_path: Path) -> None:
    log = tmp_path / "redis.log"
    shutil.copy(SAMPLE, log)
    out = tmp_path / "out.jsonl"
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\ntimezone: UTC\nmetrics: {{listen: ''}}\n"
                   f"sources:\n  - type: file\n    path: {log}\n    drop:\n"
                   "      - {name: persistence, category: persistence}\n"
                   f"sinks:\n  - type: file\n    path: {out}\n  - type: local\n")
    p = start_agent(cfg)
    try:
        assert wait_for(lambda: any(e.get("event") == "replica_sync_succeeded" for e in read_out(out)), 60)
        # the log's last line is held until the idle flush: wait until the stream's events settle
        assert wait_for(lambda: len([e for e in read_out(out) if e.get("source") != "agent"]) >= 20, 60)
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0
    events = [e for e in read_out(out) if e.get("file") == str(log)]
    assert events and not [e for e in events if e["category"] == "persistence"]
    seqs = sorted(e["seq"] for e in events if "seq" in e)
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a dropped event must not look like a gap"
    # the anchors account for what was dropped: as many as the sample has persistence events
    parsed = subprocess.run([sys.executable, "-m", "shipper.cli", "parse", "--timezone", "UTC", str(SAMPLE)],
                            capture_output=True, text=True, timeout=60).stdout.splitlines()
    expected = sum(1 for line in parsed if orjson.loads(line)["category"] == "persistence")
    assert expected > 0
    anchors = [e for e in read_out(out) if e.get("event") == "chain_anchor"]
    recorded = sum(n for a in anchors for rules in a["fields"].get("dropped", {}).values() for n in rules.values())
    assert recorded == expected
    v = subprocess.run([sys.executable, "-m", "shipper.cli", "verify", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=120)
    assert v.returncode == 0, v.stdout + v.stderr
    assert f"dropped by drop: rules (recorded in the anchors, not gaps): persistence {expected}" in v.stdout
