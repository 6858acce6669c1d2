"""The command line as SREs expect it: usage on no command, --version, a did-you-mean for typos."""

from __future__ import annotations

import subprocess
import sys

from shipper.cli import closest_command, main


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shipper.cli", *args], capture_output=True, text=True, timeout=60)


def test_no_command_prints_the_usage_and_exits_2_without_starting_the_agent() -> None:
    p = cli()  # the agent would run until the 60 s timeout: returning at all proves it did not start
    assert p.returncode == 2
    assert p.stderr.startswith("usage: redis-shipper")
    assert "run" in p.stderr and "check" in p.stderr
    assert p.stdout == ""


def test_version_flag_prints_the_version_like_the_version_command() -> None:
    flag, command = cli("--version"), cli("version")
    assert flag.returncode == 0 and command.returncode == 0
    assert flag.stdout == command.stdout
    assert flag.stdout.startswith("redis-shipper ") and "Python 3." in flag.stdout


def test_an_unknown_command_names_the_closest_one_and_exits_2() -> None:
    p = cli("chek", "--config", "x.yaml")
    assert p.returncode == 2
    assert "unknown command 'chek' (did you mean check?)" in p.stderr


def test_a_word_like_no_command_gets_the_list_and_no_guess() -> None:
    assert closest_command("zzzz") is None
    assert closest_command("verfy") == "verify"
    assert closest_command("stup") == "setup"
    assert main(["zzzz"]) == 2


def test_help_exits_zero() -> None:
    p = cli("--help")
    assert p.returncode == 0 and "setup" in p.stdout
