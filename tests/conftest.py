import os
import sys
from pathlib import Path

# Imported first on purpose: CPython 3.11.7's AST validator can fail ("AST constructor recursion
# depth mismatch", gh-106905) when pytest's assertion rewriter compiles hypothesis lazily at the end
# of a session that ran asyncio code. Importing it here, before any test runs, avoids that path.
import hypothesis  # noqa: F401
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

SAMPLE_LOGS = ROOT / "sample-logs"

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):  # type: ignore[no-untyped-def]
    """In CI a skipped test is a failed test: nothing is counted as passing that did not run."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI (CI=true forbids skips): {report.longrepr}"


@pytest.fixture(scope="session")
def loki_session(tmp_path_factory):  # type: ignore[no-untyped-def]
    """One real Loki for the whole session (tests/loki_server.py); skipped locally, failed in CI
    when the binary is missing."""
    from loki_server import LokiServer

    from servers import require, server_binary

    binary = server_binary("loki")
    require("loki", binary is not None, "set LOKI_BIN or put loki on PATH (scripts/test unpacks it)")
    assert binary is not None
    server = LokiServer(binary, tmp_path_factory.mktemp("loki"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def loki(loki_session):  # type: ignore[no-untyped-def]
    """The session Loki, running and not paused whatever the previous test did to it."""
    if loki_session.proc.poll() is not None:
        loki_session.start()
    loki_session.resume()
    loki_session.wait_ready()
    return loki_session
