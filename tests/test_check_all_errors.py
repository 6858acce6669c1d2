"""``check`` says everything wrong in one run: the schema's errors and every later pass's together."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BROKEN = """\
timezone: Mars/Olympus
labels: {{"bad label": x, job: "${{CHECK_UNSET_VAR:?set it}}"}}
spool: {{max_bytes: 10}}
metrics: {{listen: "nohost:99999"}}
state_dir: {state}
sources:
  - type: file
    formt: auto
  - type: redis
    url: redis://localhost:6379
    password_file: /nonexistent/secret
sinks:
  - type: loki
    url: ftp://loki:3100
"""


def test_check_reports_every_error_of_every_pass_in_one_run(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.yaml"
    cfg.write_text(BROKEN.format(state=tmp_path / "state"))
    env = {k: v for k, v in os.environ.items() if k != "CHECK_UNSET_VAR"}
    p = subprocess.run([sys.executable, "-m", "shipper.cli", "check", "--config", str(cfg)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    keys = [line.split(": ")[1] for line in p.stderr.splitlines() if line.startswith(str(cfg))]
    assert keys == ["labels.job", "sources[0].path", "sources[0].formt", "spool.max_bytes",
                    "sources[1].password_file",  # the file's index, though sources[0] was left out
                    "timezone", "metrics.listen", "labels.bad label", "sinks[0].url"]
    assert "spool.max_bytes: Input should be greater than or equal to 1048576" in p.stderr
    assert p.stderr.rstrip().endswith(f"redis-shipper check: 9 errors in {cfg}")


def test_a_one_mebibyte_spool_is_the_smallest_accepted() -> None:
    from shipper.config import ConfigError, parse_config

    assert parse_config({"spool": {"max_bytes": "1MiB"}}).spool.max_bytes == 1 << 20
    try:
        parse_config({"spool": {"max_bytes": "1023KiB"}})
    except ConfigError as e:
        assert [k for k, _ in e.problems] == ["spool.max_bytes"]
    else:
        raise AssertionError("a spool below 1 MiB must be refused")
