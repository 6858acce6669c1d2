"""``redis-shipper parse``: JSON Lines on stdout, one event per line, errors on stderr."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest

from shipper.cli import main
from shipper.commands.parse import iter_lines

from conftest import SAMPLE_LOGS

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "parsers/schema/event.schema.json").read_text())


def run_cli(args: list[str], capsysbinary) -> tuple[int, list[dict], str]:  # type: ignore[no-untyped-def]
    rc = main(["parse", *args])
    out, err = capsysbinary.readouterr()
    return rc, [json.loads(ln) for ln in out.splitlines()], err.decode()


def test_sample_logs_parse_to_schema_valid_json_lines(capsysbinary):
    files = [str(p) for p in sorted(SAMPLE_LOGS.glob("*/*.log"))]
    rc, events, err = run_cli(["--timezone", "UTC", *files], capsysbinary)
    assert rc == 0 and err == ""
    v = jsonschema.Draft202012Validator(SCHEMA)
    for e in events:
        assert not list(v.iter_errors(e)), e
    total_lines = 0
    for f in files:
        data = Path(f).read_bytes()
        total_lines += data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    assert sum(e["lines"] for e in events) == total_lines


def test_unreadable_file_is_reported_after_the_readable_ones(capsysbinary, tmp_path):
    good = tmp_path / "good.log"
    good.write_bytes(b"1:M 25 Nov 2026 17:36:55.000 * Server initialized\n")
    rc, events, err = run_cli(
        ["--timezone", "UTC", str(tmp_path / "missing.log"), str(good), str(tmp_path)], capsysbinary
    )
    assert rc == 1
    assert [e["event"] for e in events] == ["server_initialized"]
    assert "cannot read" in err and "missing.log" in err and "No such file" in err
    assert str(tmp_path) in err.splitlines()[1]


def test_stdin_is_read_with_a_dash(monkeypatch, capsysbinary):
    monkeypatch.setattr(
        sys, "stdin", io.TextIOWrapper(io.BytesIO(b"1:M 25 Nov 2026 17:36:55.000 * Server initialized\n"))
    )
    rc, events, _ = run_cli(["--timezone", "UTC", "-"], capsysbinary)
    assert rc == 0 and events[0]["event"] == "server_initialized"


def test_timezone_option_shifts_local_timestamps(capsysbinary, tmp_path):
    f = tmp_path / "r.log"
    f.write_bytes(b"1:M 25 Jul 2026 12:00:00.000 * Server initialized\n")
    _, events, _ = run_cli(["--timezone", "Europe/Paris", str(f)], capsysbinary)
    assert events[0]["timestamp"] == "2026-07-25T10:00:00.000000Z"
    _, events, _ = run_cli(["--timezone", "+05:30", str(f)], capsysbinary)
    assert events[0]["timestamp"] == "2026-07-25T06:30:00.000000Z"


def test_unknown_timezone_is_a_usage_error(capsysbinary, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["parse", "--timezone", "Mars/Olympus", str(tmp_path)])
    assert e.value.code == 2
    assert "unknown time zone" in capsysbinary.readouterr().err.decode()


def test_year_less_lines_take_the_year_of_the_file_mtime_with_the_december_rollover(capsysbinary, tmp_path):
    f = tmp_path / "old.log"
    f.write_bytes(
        b"1:M 31 Dec 23:59:59.000 * Server initialized\n1:M 01 Jan 00:00:01.000 * Ready to accept connections\n"
    )
    mtime = datetime(2021, 1, 1, 0, 5, tzinfo=UTC).timestamp()
    os.utime(f, (mtime, mtime))
    _, events, _ = run_cli(["--timezone", "UTC", str(f)], capsysbinary)
    assert [e["timestamp"] for e in events] == ["2020-12-31T23:59:59.000000Z", "2021-01-01T00:00:01.000000Z"]
    _, events, _ = run_cli(["--timezone", "UTC", "--year", "2015", str(f)], capsysbinary)
    assert [e["timestamp"][:4] for e in events] == ["2015", "2016"]


def test_max_line_bytes_cuts_long_lines_and_says_how_much(capsysbinary, tmp_path):
    f = tmp_path / "long.log"
    line = b"1:M 25 Nov 2026 17:36:55.000 * " + b"y" * 5000
    f.write_bytes(line + b"\n1:M 25 Nov 2026 17:36:56.000 * Server initialized\n")
    _, events, _ = run_cli(["--timezone", "UTC", "--max-line-bytes", "100", str(f)], capsysbinary)
    assert events[0]["fields"]["truncated_bytes"] == len(line) - 100
    assert events[1]["offset"] == len(line) + 1 and events[1]["event"] == "server_initialized"


def test_format_option_forces_sentinel(capsysbinary, tmp_path):
    f = tmp_path / "s.log"
    f.write_bytes(b"1:M 25 Nov 2026 17:36:55.000 # +sdown master mymaster 127.0.0.1 6379\n")
    _, events, _ = run_cli(["--timezone", "UTC", "--format", "sentinel", str(f)], capsysbinary)
    assert events[0]["source"] == "sentinel" and events[0]["event"] == "sentinel_sdown"


@pytest.mark.parametrize("chunk", [1, 5, 64, 1 << 20])
def test_line_reader_gives_the_same_lines_whatever_the_chunk_size(monkeypatch, chunk):
    import shipper.commands.parse as parse_cmd

    data = b"a" * 10 + b"\n" + b"bbb\r\n" + b"c" * 25 + b"\n\n" + b"tail"
    monkeypatch.setattr(parse_cmd, "CHUNK", chunk)
    assert list(iter_lines(io.BytesIO(data), 8)) == [
        (b"a" * 9, 0, 1, False),
        (b"bbb\r", 11, 0, False),
        (b"c" * 9, 16, 16, False),
        (b"", 42, 0, False),
        (b"tail", 43, 0, True),
    ]


def test_console_script_runs(tmp_path):
    f = tmp_path / "r.log"
    f.write_bytes(b"1:M 25 Nov 2026 17:36:55.000 * Server initialized\n")
    out = subprocess.run(
        [sys.executable, "-m", "shipper.cli", "parse", "--timezone", "UTC", str(f)],
        capture_output=True,
        check=True,
    )
    assert json.loads(out.stdout)["event"] == "server_initialized"
