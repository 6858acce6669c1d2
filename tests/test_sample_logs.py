"""The committed sample logs are what ``sample-logs/generate.py`` says they are.

The parsers' golden tests stand on these files, so they must really show what the script and README claim:
each scenario's key lines, UTC timestamps, one crash report per crash file, pure logfmt where logfmt was
asked for, and cross-file facts (the replica's PSYNC offset is the one the master accepted; the new master
in ``+switch-master`` is the replica that logged ``MASTER MODE enabled``). The smoke test proves that the
recorder still runs against the installed servers.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest

from conftest import SAMPLE_LOGS
from servers import require

GENERATE = SAMPLE_LOGS / "generate.py"


def _load_generate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sample_logs_generate", GENERATE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up here
    spec.loader.exec_module(mod)
    return mod


gen = _load_generate()

ALL_LOGS = sorted(p for p in SAMPLE_LOGS.rglob("*.log"))
REL = [p.relative_to(SAMPLE_LOGS).as_posix() for p in ALL_LOGS]

LEGACY = re.compile(
    r"^(?P<pid>\d+):(?P<role>[XCSM]) (?P<ts>\d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2}\.\d{3}"
    r"|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}|\d{13}) (?P<lvl>[.\-*#]) "
)
LOGFMT = re.compile(
    r'^pid=(?P<pid>\d+) role=(?P<role>sentinel|RDB/AOF|replica|primary) timestamp="(?P<ts>[^"]*)" '
    r'level=(?P<lvl>debug|info|notice|warning) message="(?P<msg>[^"]*)"$'
)
SIGNAL = re.compile(r"^(?P<pid>\d+):signal-handler \((?P<epoch>\d+)\) ")


def _text(rel: str) -> str:
    return (SAMPLE_LOGS / rel).read_text(errors="replace")


def _epoch(ts: str) -> float:
    """Seconds since the epoch of a header timestamp, reading zone-less legacy timestamps as UTC."""
    if ts.isdigit():
        return int(ts) / 1000
    if "T" in ts:
        return datetime.fromisoformat(ts).timestamp()
    return datetime.strptime(ts, "%d %b %Y %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()


def _header_times(text: str) -> list[tuple[int, float]]:
    out = []
    for i, line in enumerate(text.splitlines()):
        m = LEGACY.match(line) or LOGFMT.match(line)
        if m:
            out.append((i, _epoch(m["ts"])))
    return out


# --- the files are the ones the script declares ------------------------------------------------------------


def test_sample_logs_exist() -> None:
    assert len(ALL_LOGS) >= 40, REL


def test_every_committed_log_is_written_by_a_scenario() -> None:
    declared = {rel for sc in gen.SCENARIOS for rel in sc.expect if "*" not in rel}
    assert set(REL) == declared


@pytest.mark.parametrize("sc", gen.SCENARIOS, ids=lambda sc: sc.name)
def test_scenario_key_lines_are_in_the_committed_logs(sc) -> None:  # type: ignore[no-untyped-def]
    assert gen.check_expect(SAMPLE_LOGS, sc) == []


def test_check_expect_reports_a_missing_key_line(tmp_path: Path) -> None:
    sc = next(s for s in gen.SCENARIOS if s.name == "redis7-crash-segfault")
    rel = next(iter(sc.expect))
    (tmp_path / rel).parent.mkdir(parents=True)
    (tmp_path / rel).write_text(_text(rel).replace("BUG REPORT END", "BUG REPORT CUT"))
    missing = gen.check_expect(tmp_path, sc)
    assert len(missing) == 1 and "BUG REPORT END" in missing[0]


@pytest.mark.parametrize("rel", REL)
def test_readme_describes_every_log_file(rel: str) -> None:
    assert rel in (SAMPLE_LOGS / "README.md").read_text()


@pytest.mark.parametrize("rel", REL)
def test_log_file_is_small(rel: str) -> None:
    assert (SAMPLE_LOGS / rel).stat().st_size < 200_000


@pytest.mark.parametrize("rel", REL)
def test_no_password_reaches_a_log(rel: str) -> None:
    assert "s3cret-not-real" not in _text(rel)


# --- timestamps are UTC ------------------------------------------------------------------------------------


def _files_with_signal_lines() -> list[str]:
    return [r for r in REL if any(SIGNAL.match(line) for line in _text(r).splitlines())]


@pytest.mark.parametrize("rel", _files_with_signal_lines())
def test_logs_were_recorded_in_utc(rel: str) -> None:
    """A signal-handler line carries epoch seconds; the nearest header timestamp, read as UTC, must agree.
    A server started with another TZ would be off by whole hours."""
    text = _text(rel)
    headers = _header_times(text)
    assert headers
    for i, line in enumerate(text.splitlines()):
        m = SIGNAL.match(line)
        if not m:
            continue
        nearest = min(headers, key=lambda h: abs(h[0] - i))
        assert abs(nearest[1] - int(m["epoch"])) < 30, (rel, line)


ISO_FILES = [r for r in REL if "iso8601" in r or "mixed" in r] + [
    "valkey-9-sentinel/sentinel-2.log",
    "valkey-9/logfmt-debug.log",
]


@pytest.mark.parametrize("rel", ISO_FILES)
def test_iso8601_timestamps_carry_the_utc_offset(rel: str) -> None:
    offsets = re.findall(r"\d{2}:\d{2}:\d{2}\.\d{3}([+-]\d{2}:\d{2})", _text(rel))
    assert offsets and set(offsets) == {"+00:00"}


# --- formats ----------------------------------------------------------------------------------------------


LOGFMT_FILES = [r for r in REL if "logfmt" in r] + [
    "valkey-9-sentinel/sentinel-2.log",
    "valkey-9-sentinel/sentinel-3.log",
]


@pytest.mark.parametrize("rel", LOGFMT_FILES)
def test_logfmt_files_have_only_logfmt_headers(rel: str) -> None:
    """Everything with a header is logfmt; what is not logfmt is a signal-handler line or raw text."""
    lines = _text(rel).splitlines()
    logfmt = [ln for ln in lines if ln.startswith("pid=")]
    assert len(logfmt) >= 10
    assert [ln for ln in logfmt if not LOGFMT.match(ln)] == []
    assert [ln for ln in lines if LEGACY.match(ln)] == []


@pytest.mark.parametrize(
    "rel,ts",
    [
        ("valkey-9/legacy-milliseconds.log", r"\d{13}"),
        ("valkey-9/legacy-iso8601.log", r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00"),
        ("valkey-9/logfmt-milliseconds.log", r"\d{13}"),
        ("valkey-9/logfmt-iso8601.log", r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00"),
        ("valkey-9/logfmt-legacy.log", r"\d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2}\.\d{3}"),
        ("valkey-9-sentinel/sentinel-3.log", r"\d{13}"),
        ("valkey-9/logfmt-debug.log", r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00"),
    ],
)
def test_valkey_timestamp_format_is_the_one_configured(rel: str, ts: str) -> None:
    stamps = [m["ts"] for ln in _text(rel).splitlines() if (m := LEGACY.match(ln) or LOGFMT.match(ln))]
    assert len(stamps) >= 10
    assert [s for s in stamps if not re.fullmatch(ts, s)] == []


@pytest.mark.parametrize("rel,lvl", [("redis-7.0/loglevel-debug.log", "."), ("valkey-9/logfmt-debug.log", "debug")])
def test_debug_level_lines_are_present(rel: str, lvl: str) -> None:
    levels = {m["lvl"] for ln in _text(rel).splitlines() if (m := LEGACY.match(ln) or LOGFMT.match(ln))}
    assert lvl in levels


def test_mixed_formats_file_holds_every_format() -> None:
    lines = _text("valkey-9/mixed-formats.log").splitlines()
    kinds = set()
    for ln in lines:
        m = LEGACY.match(ln) or LOGFMT.match(ln)
        if m:
            ts = m["ts"]
            kinds.add(
                (
                    "logfmt" if ln.startswith("pid=") else "legacy",
                    "ms" if ts.isdigit() else "iso" if "T" in ts else "legacy",
                )
            )
    assert kinds == {(f, t) for f in ("logfmt", "legacy") for t in ("ms", "iso", "legacy")}
    assert any(ln.startswith(" ") and "Valkey 9." in ln for ln in lines)  # the logo, raw


# --- crash reports ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", [r for r in REL if "/crash-" in r])
def test_crash_file_holds_exactly_one_complete_bug_report(rel: str) -> None:
    text = _text(rel)
    name = "VALKEY" if rel.startswith("valkey") else "REDIS"
    starts = [m.start() for m in re.finditer(f"=== {name} BUG REPORT START", text)]
    ends = [m.start() for m in re.finditer(f"=== {name} BUG REPORT END", text)]
    assert len(starts) == 1 and len(ends) == 1 and starts[0] < ends[0]
    report = text[starts[0] : ends[0]]
    if "assert" in rel:
        assert "ASSERTION FAILED" in report
    else:  # DEBUG SEGFAULT
        assert re.search(r"crashed by signal: 11", report)
        assert "------ STACK TRACE ------" in report


# --- cross-file facts -------------------------------------------------------------------------------------


REPLICATION_PAIRS = [
    ("redis-7.0/replication-master.log", "redis-7.0/replication-replica.log"),
    ("redis-6.2/replication-master.log", "redis-6.2/replication-replica.log"),
    ("valkey-9/replication-master.log", "valkey-9/replication-replica.log"),
    ("valkey-9/replication-dual-channel-master.log", "valkey-9/replication-dual-channel-replica.log"),
]


@pytest.mark.parametrize("master,replica", REPLICATION_PAIRS)
def test_partial_resync_offset_is_the_one_the_master_accepted(master: str, replica: str) -> None:
    lines = _text(replica).splitlines()
    asked = [
        re.search(r"request ([0-9a-f]{40}):(\d+)\)", lines[i])
        for i in range(len(lines) - 1)
        if "Trying a partial resynchronization" in lines[i] and "Successful partial resynchronization" in lines[i + 1]
    ]
    assert asked and asked[0]
    accepted = re.findall(r"Partial resynchronization request from \S+ accepted\. .* offset (\d+)\.", _text(master))
    assert asked[0].group(2) in accepted


def _port(rel: str) -> int:
    m = re.search(r"Running mode=standalone, port=(\d+)\.", _text(rel))
    assert m, rel
    return int(m.group(1))


@pytest.mark.parametrize("sd", ["sentinel-7.0", "valkey-9-sentinel"])
def test_switch_master_names_the_replicas_that_were_promoted(sd: str) -> None:
    """b wins the automatic failover (c has replica-priority 0), the old master a the manual one."""
    a, b = _port(f"{sd}/redis-a.log"), _port(f"{sd}/redis-b.log")
    for n in (1, 2, 3):
        text = _text(f"{sd}/sentinel-{n}.log")
        switches = re.findall(r"\+switch-master mymaster 127\.0\.0\.1 (\d+) 127\.0\.0\.1 (\d+)", text)
        assert [(int(o), int(n_)) for o, n_ in switches] == [(a, b), (b, a)]
    assert re.search(r"(MASTER|PRIMARY) MODE enabled", _text(f"{sd}/redis-b.log"))
    assert re.search(r"(MASTER|PRIMARY) MODE enabled", _text(f"{sd}/redis-a.log"))
    assert not re.search(r"(MASTER|PRIMARY) MODE enabled", _text(f"{sd}/redis-c.log"))


def test_automatic_failover_sequence_is_in_order_in_the_leader_log() -> None:
    order = [
        "+sdown master",
        "+odown master",
        "+try-failover",
        "+elected-leader",
        "+selected-slave",
        "+promoted-slave",
        "+failover-end",
        "+switch-master",
    ]
    for sd in ("sentinel-7.0", "valkey-9-sentinel"):
        leaders = [
            t
            for t in (_text(f"{sd}/sentinel-{n}.log") for n in (1, 2, 3))
            if "+try-failover" in t.split("Executing user requested FAILOVER")[0]
        ]
        assert leaders, sd
        t = leaders[0]
        pos = [t.find(e) for e in order]
        assert -1 not in pos and pos == sorted(pos), (sd, pos)


# --- the recorder still works -----------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_generate_smoke_mode_records_its_scenarios(tmp_path: Path) -> None:
    for kind in ("redis7", "valkey9", "redis62"):
        require(kind, gen.binary_path(kind) is not None)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(GENERATE), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    smoke = [sc for sc in gen.SCENARIOS if sc.smoke]
    assert len(smoke) >= 4
    for sc in smoke:
        assert gen.check_expect(out, sc) == [], sc.name
    # Nothing but what the smoke scenarios declare.
    written = {p.relative_to(out).as_posix() for p in out.rglob("*.log")}
    assert written == {rel for sc in smoke for rel in sc.expect}
