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
