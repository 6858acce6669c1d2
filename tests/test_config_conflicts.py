"""Two ``type: redis`` sources on one host:port: ``check`` and ``run`` refuse the config (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shipper.cli import main as cli

TWO_ON_ONE_PORT = """\
state_dir: {state}
sources:
  - type: redis
    url: redis://127.0.0.1:6390
  - type: redis
    url: redis://localhost:6391
  - type: redis
    url: redis://default@127.0.0.1:6390/0
sinks:
  - type: file
    path: {state}/out.jsonl
"""


@pytest.mark.parametrize("command", ["check", "run"])
def test_two_redis_sources_on_the_same_host_port_are_refused_naming_both(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(TWO_ON_ONE_PORT.format(state=tmp_path / "state"))
    rc = cli([command, "--config", str(cfg)])
    out = capsys.readouterr()
    text = out.out + out.err
    assert rc == 2
    assert "sources[0] and sources[2] both poll 127.0.0.1:6390" in text
    assert "sources[1]" not in text  # another port: accepted
