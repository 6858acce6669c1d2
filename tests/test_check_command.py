"""``redis-shipper check``: every problem of a config with its key path (exit 2); --connect
against a real Redis (ACL-restricted user), the Loki/Elasticsearch receivers and no Prometheus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shipper.cli import main as cli

from receivers.elasticsearch import ElasticsearchReceiver
from receivers.loki import LokiReceiver
from servers import redis_server


def run_check(tmp_path: Path, yaml_text: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml_text)
    rc = cli(["check", "--config", str(cfg), *extra])
    out = capsys.readouterr()
    return rc, out.out + out.err


def test_missing_key_is_reported_with_its_path_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run_check(tmp_path, "sources:\n  - type: file\n    format: redis\n", capsys)
    assert rc == 2
    assert "sources[0].path: required key is missing" in out


def test_wrong_type_is_reported_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "spool: {max_bytes: lots}\nsources:\n  - type: redis\n    slowlog: {interval: fast}\n"
    rc, out = run_check(tmp_path, text, capsys)
    assert rc == 2
    assert "spool.max_bytes: 'lots' is not a size" in out
    assert "sources[0].slowlog.interval: 'fast' is not a duration" in out
    assert "2 errors" in out


def test_unknown_key_gets_a_did_you_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run_check(tmp_path, "sinks:\n  - type: loki\n    url: http://loki:3100\n    tennant: ops\n", capsys)
    assert rc == 2
    assert "sinks[0].tennant: unknown key (did you mean 'tenant'?)" in out


def test_invalid_yaml_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run_check(tmp_path, "sources:\n  - type: file\n   path: x\n", capsys)
    assert rc == 2
    assert "invalid YAML: line 3" in out


def test_unreadable_config_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli(["check", "--config", str(tmp_path / "nope.yaml")])
    out = capsys.readouterr().err
    assert rc == 2
    assert "cannot read" in out and "nope.yaml" in out


def test_unreadable_log_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a dangling symlink: matched by the path, cannot be opened (works as root too, unlike chmod 000)
    (tmp_path / "redis-server.log").symlink_to(tmp_path / "gone.log")
    rc, out = run_check(tmp_path, f"state_dir: {tmp_path}/state\nsources:\n  - type: file\n"
                        f"    path: {tmp_path}/redis-*.log\n", capsys)
    assert rc == 2
    assert f"sources[0].path: cannot read '{tmp_path}/redis-server.log': No such file or directory" in out


def test_a_directory_given_as_a_log_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run_check(tmp_path, f"state_dir: {tmp_path}/state\nsources:\n  - type: file\n    path: {tmp_path}\n",
                        capsys)
    assert rc == 2
    assert "is a directory; use a glob like" in out


def test_nothing_matching_yet_is_a_warning_not_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run_check(tmp_path, f"state_dir: {tmp_path}/state\nsources:\n  - type: file\n"
                        f"    path: {tmp_path}/logs/*.log\n", capsys)
    assert rc == 0
    assert "warning: sources[0].path: nothing matches" in out


def test_unreadable_secret_files_and_unset_env_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPPER_TEST_NO_SUCH_VAR", raising=False)
    (tmp_path / "tokendir").mkdir()
    rc, out = run_check(tmp_path, f"""
state_dir: {tmp_path}/state
sources:
  - type: redis
    password_file: {tmp_path}/missing-password
sinks:
  - type: loki
    url: http://loki:3100
    bearer_token_file: {tmp_path}/tokendir
  - type: elasticsearch
    url: https://es:9200
    api_key_env: SHIPPER_TEST_NO_SUCH_VAR
    tls: {{ca_file: {tmp_path}/ca.pem}}
""", capsys)
    assert rc == 2
    assert f"sources[0].password_file: cannot read '{tmp_path}/missing-password': No such file or directory" in out
    assert "sinks[0].bearer_token_file:" in out and "is a directory" in out
    assert "sinks[1].api_key_env: environment variable 'SHIPPER_TEST_NO_SUCH_VAR' is not set" in out
    assert "sinks[1].tls.ca_file: cannot read" in out
    assert "4 errors" in out


def test_state_dir_that_cannot_be_created_and_bad_timezone_and_listen(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "afile").write_text("x")
    rc, out = run_check(tmp_path, f"state_dir: {tmp_path}/afile/state\ntimezone: Mars/Olympus\n"
                        "metrics: {listen: '9377'}\n", capsys)
    assert rc == 2
    assert f"state_dir: cannot create '{tmp_path}/afile/state'" in out and "is not a directory" in out
    assert "timezone: unknown time zone 'Mars/Olympus'" in out
    assert "metrics.listen: '9377': expected host:port" in out


def test_label_rules_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run_check(tmp_path, f"state_dir: {tmp_path}/s\nlabels: {{level: x, '9bad': y}}\n", capsys)
    assert rc == 2
    assert "labels.level:" in out and "labels.9bad:" in out


def test_valid_config_exits_0_with_a_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "redis-server.log"
    log.write_text("1:M 01 Jan 2024 00:00:00.000 * Ready to accept connections tcp\n")
    pw = tmp_path / "pw"
    pw.write_text("hunter2-secret\n")
    rc, out = run_check(tmp_path, f"""
state_dir: {tmp_path}/state
timezone: Europe/Paris
sources:
  - type: file
    path: {log}
  - type: redis
    url: redis://127.0.0.1:6379
    password_file: {pw}
sinks:
  - type: loki
    url: http://user:inline-pass@loki:3100
""", capsys)
    assert rc == 0, out
    assert "valid" in out
    assert f"sources[0] file {log} (1 readable file now)" in out
    assert "sources[1] redis redis://127.0.0.1:6379" in out
    assert "sinks[0] loki http://loki:3100" in out
    assert f"state_dir: {tmp_path}/state (will be created" in out
    assert "timezone: Europe/Paris" in out
    assert "metrics: http://127.0.0.1:9377/metrics" in out
    assert "hunter2-secret" not in out and "inline-pass" not in out


def test_the_summary_lists_every_poll_kind_a_redis_source_runs(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    rc, out = run_check(tmp_path, f"state_dir: {tmp_path}/state\nsources:\n  - type: redis\n"
                        "    url: redis://10.0.0.9:6380\n    latency: {enabled: false}\n", capsys)
    assert rc == 0, out
    assert ("sources[0] redis redis://10.0.0.9:6380 (polls: slowlog, commandlog, acl_log, config, cluster, "
            "info)") in out


@pytest.mark.integration
def test_connect_reports_version_role_and_acl_denied_commands(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    with redis_server("redis7", tmp_path) as rp:
        c = rp.client()
        c.execute_command("ACL", "SETUSER", "shipper", "on", ">pollerpass-9f3", "+ping", "+info",
                          "+client|setname", "+slowlog|get", "+config|get")
        (tmp_path / "pw").write_text("pollerpass-9f3\n")
        rc, out = run_check(tmp_path, f"""
state_dir: {tmp_path}/state
sources:
  - type: redis
    url: {rp.url}
    username: shipper
    password_file: {tmp_path}/pw
""", capsys, "--connect")
        version = c.info("server")["redis_version"]
        c.execute_command("ACL", "SETUSER", "nameless", "on", ">pollerpass-9f3", "+ping", "+info", "+slowlog|get")
        rc2, out2 = run_check(tmp_path, f"state_dir: {tmp_path}/state\nsources:\n  - type: redis\n"
                              f"    url: {rp.url}\n    username: nameless\n    password_file: {tmp_path}/pw\n",
                              capsys, "--connect")
    assert rc2 == 1 and "grant +client|setname" in out2  # redis-py names the connection at connect
    assert rc == 0, out
    assert f"redis {version}, role master, run_id " in out
    assert "SLOWLOG GET: allowed" in out
    assert "CONFIG GET: allowed" in out
    assert "LATENCY LATEST: denied by ACL (+latency|latest missing)" in out
    assert "ACL LOG: denied by ACL (+acl|log missing)" in out
    assert "ACL SETUSER shipper +latency|latest +acl|log" in out
    assert "pollerpass-9f3" not in out


@pytest.mark.integration
def test_connect_reports_a_wrong_password_without_printing_it(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    with redis_server("redis7", tmp_path, config={"requirepass": "the-right-one"}) as rp:
        rc, out = run_check(tmp_path, f"state_dir: {tmp_path}/s\nsources:\n  - type: redis\n"
                            f"    url: redis://:wrong-pass-77@127.0.0.1:{rp.port}\n", capsys, "--connect")
    assert rc == 1
    assert "FAIL sources[0] redis" in out and "auth:" in out
    assert "wrong-pass-77" not in out


@pytest.mark.integration
def test_connect_on_valkey_sees_commandlog(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with redis_server("valkey9", tmp_path) as rp:
        rc, out = run_check(tmp_path, f"state_dir: {tmp_path}/s\nsources:\n  - type: redis\n    url: {rp.url}\n",
                            capsys, "--connect")
    assert rc == 0, out
    assert "valkey 9." in out
    assert "COMMANDLOG GET: allowed" in out


def test_connect_reaches_loki_and_elasticsearch_and_says_what_is_missing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = "es-api-key-123"
    (tmp_path / "key").write_text(key)
    with LokiReceiver() as loki, ElasticsearchReceiver(flavor="8", require_auth=f"ApiKey {key}") as es:
        rc, out = run_check(tmp_path, f"""
state_dir: {tmp_path}/state
sinks:
  - type: loki
    url: {loki.url}
  - type: elasticsearch
    url: {es.url}
    api_key_file: {tmp_path}/key
  - type: elasticsearch
    url: {es.url}
""", capsys, "--connect")
    assert rc == 1, out  # the third sink has no credentials
    assert f"OK   sinks[0] loki {loki.url}: /ready: ready" in out
    assert f"OK   sinks[1] elasticsearch {es.url}: elasticsearch {es.version}" in out
    assert f"FAIL sinks[2] elasticsearch {es.url}: GET /: HTTP 401" in out
    assert key not in out


def test_connect_points_opensearch_at_its_own_index_template(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import urllib.request

    with ElasticsearchReceiver(flavor="opensearch") as os_:
        cfg = f"state_dir: {tmp_path}/state\nsinks:\n  - type: elasticsearch\n    url: {os_.url}\n"
        rc, out = run_check(tmp_path, cfg, capsys, "--connect")
        assert rc == 0, out
        assert f"OK   sinks[0] elasticsearch {os_.url}: opensearch {os_.version}" in out
        assert "not installed: PUT _index_template/redis-shipper with deploy/opensearch/index-template.json" in out
        body = (Path(__file__).parent.parent / "deploy" / "opensearch" / "index-template.json").read_bytes()
        req = urllib.request.Request(os_.url + "/_index_template/redis-shipper", data=body, method="PUT",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            assert r.status == 200
        rc, out = run_check(tmp_path, cfg, capsys, "--connect")
        assert "index template redis-shipper installed" in out


def test_connect_says_prometheus_is_unreachable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc, out = run_check(tmp_path, f"state_dir: {tmp_path}/s\nsources:\n  - type: redis\n    url: redis://127.0.0.1:{port}\n"
                        f"discover_labels: {{prometheus_url: 'http://127.0.0.1:{port}'}}\n", capsys, "--connect",
                        "--timeout", "2")
    assert rc == 1
    assert f"FAIL sources[0] redis redis://127.0.0.1:{port}: connection:" in out
    assert f"FAIL discover_labels http://127.0.0.1:{port}:" in out


def test_check_does_not_create_the_state_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _ = run_check(tmp_path, f"state_dir: {tmp_path}/never\n", capsys)
    assert rc == 0
    assert not os.path.exists(tmp_path / "never")
