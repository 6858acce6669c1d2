"""The config schema: clear errors with key paths, env expansion, secrets, and a documented key for every field."""

from __future__ import annotations

import re

import pytest
from pydantic import BaseModel

from shipper.config import AgentConfig, ConfigError, load_config, parse_config, read_secret

from conftest import ROOT


def problems(data: dict) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    return e.value.problems


def test_the_issue_shape_of_a_file_source_config_is_valid():
    cfg = parse_config({
        "state_dir": "./state", "timezone": "UTC", "labels": {"job": "redis"},
        "sources": [{"type": "file", "path": "/var/log/redis/redis-server.log", "format": "auto",
                     "start_at": "beginning"}],
        "sinks": [{"type": "file", "path": "./out/events.jsonl"}],
    })
    assert cfg.sources[0].path == "/var/log/redis/redis-server.log"


def test_missing_key_unknown_key_and_unknown_type_are_each_named():
    got = problems({"sources": [{"type": "file"}, {"type": "file", "path": "x", "formt": "auto"},
                                {"type": "kafka"}]})
    assert ("sources[0].path", "required key is missing") in got
    assert any(k == "sources[1].formt" and "did you mean 'format'?" in r for k, r in got)
    assert any(k == "sources[2]" and "unknown type 'kafka'" in r for k, r in got)


def test_wrong_types_and_bad_durations_say_why():
    got = dict(problems({"shutdown_timeout": "soon", "spool": {"max_bytes": "lots"}}))
    assert "not a duration" in got["shutdown_timeout"]
    assert "not a size" in got["spool.max_bytes"]


def test_durations_and_sizes_accept_units():
    cfg = parse_config({"shutdown_timeout": "250ms", "spool": {"max_bytes": "2MiB"},
                        "sinks": [{"type": "loki", "url": "http://l", "batch": {"max_wait": "2s"}}]})
    assert cfg.shutdown_timeout == 0.25 and cfg.spool.max_bytes == 2 << 20
    assert cfg.sinks[0].batch.max_wait == 2.0


def test_env_vars_are_expanded_and_a_missing_one_is_an_error(monkeypatch):
    monkeypatch.setenv("POD_IP", "10.0.0.7")
    cfg = parse_config({"labels": {"instance": "redis://${POD_IP}:6379", "env": "${ENV_NAME:-prod}"}})
    assert cfg.labels == {"instance": "redis://10.0.0.7:6379", "env": "prod"}
    got = problems({"labels": {"cluster": "${NOPE_NOT_SET}"}})
    assert got[0][0] == "labels.cluster" and "NOPE_NOT_SET" in got[0][1]


def test_two_ways_of_giving_one_secret_is_an_error():
    got = problems({"sources": [{"type": "redis", "password": "a", "password_env": "B"}]})
    assert got == [("sources[0]", "give only one of password, password_env")]


def test_secrets_come_from_files_and_env_and_a_missing_file_is_named(tmp_path, monkeypatch):
    f = tmp_path / "pw"
    f.write_text("s3cret\n")
    assert read_secret(inline=None, file=str(f), env=None, key="password") == "s3cret"
    monkeypatch.setenv("PW", "fromenv")
    assert read_secret(inline=None, file=None, env="PW", key="password") == "fromenv"
    with pytest.raises(ValueError, match="password_file: cannot read"):
        read_secret(inline=None, file=str(tmp_path / "nope"), env=None, key="password")


def test_invalid_yaml_and_unreadable_files_are_clear(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("sources: [\n")
    with pytest.raises(ConfigError, match="invalid YAML: line"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def _leaf_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for name, field in model.model_fields.items():
        key = field.alias or name
        out.add(key)
        ann = field.annotation
        for sub in (ann, *getattr(ann, "__args__", ())):
            if isinstance(sub, type) and issubclass(sub, BaseModel):
                out |= _leaf_keys(sub)
    return out


def test_every_config_key_is_documented_in_docs_configuration_md():
    from shipper.config import (
        ElasticsearchSinkConfig,
        FileSinkConfig,
        FileSourceConfig,
        LocalSinkConfig,
        LokiSinkConfig,
        RedisSourceConfig,
    )
    from shipper.config.labels import DiscoverLabelsConfig

    doc = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`([a-z_]+)(?:[.`/ ])", doc)) | set(re.findall(r"\.([a-z_]+)`", doc))
    keys: set[str] = set()
    for m in (AgentConfig, FileSourceConfig, RedisSourceConfig, LokiSinkConfig, ElasticsearchSinkConfig,
              LocalSinkConfig, FileSinkConfig, DiscoverLabelsConfig):
        keys |= _leaf_keys(m)
    missing = sorted(k for k in keys if k not in documented and k != "type")
    assert not missing, f"undocumented config keys: {missing}"


def test_the_documented_rotated_patterns_default_is_the_one_the_follower_uses():
    from shipper.config import FileSourceConfig
    from shipper.sources.files.paths import DEFAULT_ROTATED_PATTERNS

    assert tuple(FileSourceConfig(type="file", path="x").rotated_patterns) == DEFAULT_ROTATED_PATTERNS


# --- ${VAR} expansion: Docker Compose / Vector semantics (shipper/config/env.py) -------------------
def test_default_applies_to_unset_and_empty_with_colon_and_to_unset_only_without(monkeypatch):
    monkeypatch.setenv("EMPTY", "")
    monkeypatch.delenv("UNSET_X", raising=False)
    cfg = parse_config({"labels": {"a": "${UNSET_X:-d1}", "b": "${EMPTY:-d2}", "c": "${UNSET_X-d3}",
                                   "d": "[${EMPTY-d4}]"}})
    assert cfg.labels == {"a": "d1", "b": "d2", "c": "d3", "d": "[]"}


def test_required_variable_unset_or_empty_is_an_error_naming_it_the_key_and_the_message(monkeypatch):
    monkeypatch.delenv("REDIS_ENV_UNSET", raising=False)
    monkeypatch.setenv("REDIS_ENV_EMPTY", "")
    got = problems({"labels": {"cluster": "${REDIS_ENV_UNSET:?set the cluster name}",
                               "env": "${REDIS_ENV_EMPTY:?env is required}"}})
    assert ("labels.cluster", "environment variable REDIS_ENV_UNSET is not set: set the cluster name") in got
    assert ("labels.env", "environment variable REDIS_ENV_EMPTY is empty: env is required") in got


def test_question_mark_without_colon_accepts_an_empty_value(monkeypatch):
    monkeypatch.setenv("REDIS_ENV_EMPTY", "")
    assert parse_config({"labels": {"env": "x${REDIS_ENV_EMPTY?needed}"}}).labels == {"env": "x"}


def test_double_dollar_is_a_literal_dollar_and_is_never_expanded(monkeypatch):
    monkeypatch.setenv("HOME", "/home/someone")
    cfg = parse_config({"labels": {"a": "$${HOME}", "b": "cost: 5$$", "c": "^a.*$"}})
    assert cfg.labels == {"a": "${HOME}", "b": "cost: 5$", "c": "^a.*$"}


def test_a_malformed_interpolation_is_an_error_not_shipped_text():
    got = problems({"labels": {"a": "${1abc}"}})
    assert len(got) == 1 and got[0][0] == "labels.a" and "invalid interpolation" in got[0][1]


def test_unset_hostname_means_the_host_name_and_a_set_one_wins(monkeypatch):
    import socket

    monkeypatch.delenv("HOSTNAME", raising=False)
    assert parse_config({"labels": {"host": "${HOSTNAME}"}}).labels["host"] == socket.gethostname()
    monkeypatch.setenv("HOSTNAME", "pod-7")
    assert parse_config({"labels": {"host": "${HOSTNAME}"}}).labels["host"] == "pod-7"


def test_check_and_run_exit_2_on_a_required_variable(tmp_path, monkeypatch):
    import subprocess
    import sys

    cfg = tmp_path / "agent.yaml"
    cfg.write_text(f"state_dir: {tmp_path / 'state'}\nlabels: {{cluster: '${{REDIS_CLUSTER:?name the cluster}}'}}\n"
                   "metrics: {listen: ''}\n")
    env = {k: v for k, v in __import__("os").environ.items() if k != "REDIS_CLUSTER"}
    for command in ("check", "run"):
        p = subprocess.run([sys.executable, "-m", "shipper.cli", command, "--config", str(cfg)], env=env,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 2, (command, p.stderr)
        assert "labels.cluster: environment variable REDIS_CLUSTER is not set: name the cluster" in p.stderr
