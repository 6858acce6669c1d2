"""``redis-shipper setup elasticsearch``: policy, template and data stream through the API, twice over."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from shipper.commands.setup import template_document

from conftest import ROOT
from receivers.elasticsearch import ElasticsearchReceiver


def setup(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shipper.cli", "setup", "elasticsearch", "--config", str(cfg)],
                          capture_output=True, text=True, timeout=120)


def config(tmp_path: Path, url: str, extra: str = "") -> Path:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\nsinks:\n  - type: elasticsearch\n    url: {url}\n{extra}")
    return cfg


@pytest.mark.parametrize("distribution", ["elasticsearch", "opensearch"])
def test_the_templates_in_the_wheel_equal_the_ones_in_deploy(distribution: str) -> None:
    shipped = json.loads((ROOT / "deploy" / distribution / "index-template.json").read_text())
    assert template_document(distribution) == shipped


def test_setup_installs_ilm_policy_template_and_data_stream_and_is_idempotent(tmp_path: Path) -> None:
    with ElasticsearchReceiver(flavor="8") as rx:
        cfg = config(tmp_path, rx.url)
        first, second = setup(cfg), setup(cfg)
        assert first.returncode == 0, first.stderr
        assert second.returncode == 0, second.stderr
        assert "data stream logs-redis.events-default created" in first.stdout
        assert "data stream logs-redis.events-default exists" in second.stdout
        assert rx.policies["redis-shipper"]["phases"]["delete"] == {"min_age": "30d", "actions": {"delete": {}}}
        t = rx.templates["redis-shipper"]
        assert t["settings"]["index"]["lifecycle"] == {"name": "redis-shipper"}
        assert t["mappings"] == template_document("elasticsearch")["template"]["mappings"]
        assert "logs-redis.events-default" in rx.data_streams


def test_setup_on_opensearch_creates_then_updates_the_ism_policy(tmp_path: Path) -> None:
    with ElasticsearchReceiver(flavor="opensearch") as rx:
        cfg = config(tmp_path, rx.url)
        first, second = setup(cfg), setup(cfg)
        assert first.returncode == 0, first.stderr
        assert second.returncode == 0, second.stderr  # a plain second PUT would be a 409
        assert "ISM policy redis-shipper created" in first.stdout
        assert "ISM policy redis-shipper updated" in second.stdout
        policy = rx.policies["redis-shipper"]
        assert policy["ism_template"][0]["index_patterns"] == ["logs-redis.events-*"]
        assert "lifecycle" not in (rx.templates["redis-shipper"]["settings"]["index"])


def test_a_plain_index_outside_the_patterns_gets_its_own_pattern_and_no_data_stream(tmp_path: Path) -> None:
    with ElasticsearchReceiver(flavor="8") as rx:
        cfg = config(tmp_path, rx.url, "    index: redis-events\n    data_stream: false\n")
        p = setup(cfg)
        assert p.returncode == 0, p.stderr
        t = rx.templates["redis-shipper"]
        assert t["index_patterns"] == ["redis-events*"] and t["data_stream"] is None
        assert rx.data_streams == {}


def test_an_unreachable_cluster_fails_with_exit_1_and_names_the_sink(tmp_path: Path) -> None:
    p = setup(config(tmp_path, "http://127.0.0.1:9"))
    assert p.returncode == 1
    assert p.stderr.startswith("FAIL sinks[0] http://127.0.0.1:9")


def test_a_config_without_an_elasticsearch_sink_is_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text("sinks: [{type: local}]\n")
    p = setup(cfg)
    assert p.returncode == 2 and "no elasticsearch sink" in p.stderr


def test_every_dependency_has_an_upper_bound_and_a_pin_in_the_constraints() -> None:
    import re
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {re.split(r"==", line)[0].lower().replace("_", "-")
            for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line}
    for req in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        spec = req.split(";")[0]
        name = re.match(r"[A-Za-z0-9_.-]+", spec).group(0).lower().replace("_", "-")  # type: ignore[union-attr]
        assert "<" in spec, f"{req}: no upper bound"
        assert name in pins, f"{name} is not pinned in constraints.txt"
