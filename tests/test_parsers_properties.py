"""Property tests: the parser is total. Random bytes and mutated real lines never raise, never
lose a line, keep offsets in order, and the follower's pending offset is always safe."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parsers.events import dumps, loads
from parsers.logfile import LogParser

from conftest import SAMPLE_LOGS

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "parsers/schema/event.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _real_lines() -> list[bytes]:
    lines: list[bytes] = []
    for p in sorted(SAMPLE_LOGS.glob("*/*.log")):
        lines.extend(p.read_bytes().split(b"\n"))
    # a few shapes the samples may lack: 2.x, 3.0 year-less, 2.6 signal handler, logfmt sentinel
    lines += [
        b"[4012] 24 Oct 10:15:01 * Server started, Redis version 2.4.18",
        b"[4012] 24 Oct 10:15:01.123 # +switch-master mymaster 10.0.0.5 6379 10.0.0.6 6379",
        b"4012:M 24 Oct 10:15:01.123 * DB loaded from disk: 0.012 seconds",
        b"[4012 | signal handler] (1729764901) Received SIGTERM, scheduling shutdown...",
        b'pid=1 role=sentinel timestamp="1729787792738" level=info message="+sdown master m 10.0.0.5 6379"',
        b"=== REDIS BUG REPORT START: Cut & paste starting from here ===",
        b"=== REDIS BUG REPORT END. Make sure to include from START to END. ===",
        b"                _._                                                  ",
    ]
    return [ln for ln in lines if ln]


REAL = _real_lines()


def _mutate(data: st.DataObject, line: bytes) -> bytes:
    op = data.draw(st.sampled_from(["keep", "cut", "insert", "flip", "delete", "crlf", "nul", "splice"]))
    if not line or op == "keep":
        return line
    i = data.draw(st.integers(0, len(line)))
    if op == "cut":
        return line[:i]
    if op == "insert":
        return line[:i] + data.draw(st.binary(min_size=1, max_size=8)) + line[i:]
    if op == "flip":
        j = min(i, len(line) - 1)
        return line[:j] + bytes([line[j] ^ data.draw(st.integers(1, 255))]) + line[j + 1 :]
    if op == "delete":
        return line[:i] + line[i + data.draw(st.integers(1, 10)) :]
    if op == "crlf":
        return line + b"\r"
    if op == "nul":
        return line[:i] + b"\x00" + line[i:]
    other = data.draw(st.sampled_from(REAL))
    return line[:i] + other[data.draw(st.integers(0, len(other))) :]


def _check(lines: list[bytes], flush_every: int | None = None, max_line_bytes: int = 1 << 20) -> list[dict]:
    """Feed ``lines`` (offsets as if joined with \\n); check the invariants; return the events."""
    p = LogParser(tz=UTC, max_line_bytes=max_line_bytes)
    events: list[dict] = []
    offsets: list[int] = []
    pos = 0
    for k, ln in enumerate(lines):
        offsets.append(pos)
        events += p.feed(ln, pos)
        pos += len(ln) + 1
        # the follower may checkpoint at pending_offset: everything before it must be out already
        covered = sum(e["lines"] for e in events)
        po = p.pending_offset
        if po is None:
            assert covered == k + 1
        else:
            assert offsets[covered] == po
        if flush_every and k % flush_every == flush_every - 1:
            events += p.flush()
    events += p.flush()
    assert p.pending_offset is None
    assert sum(e["lines"] for e in events) == len(lines)
    covering = [e for e in events if e["lines"] > 0]
    assert [e["offset"] for e in covering] == sorted({e["offset"] for e in covering})
    assert [e["offset"] for e in events] == sorted(e["offset"] for e in events)
    idx = 0
    for e in covering:
        assert e["offset"] == offsets[idx]
        idx += e["lines"]
    texts = {}
    for off, ln in zip(offsets, lines, strict=True):
        ln = ln[:-1] if ln.endswith(b"\r") else ln
        texts[off] = ln[:max_line_bytes].decode("utf-8", "replace")
    for e in events:
        assert loads(dumps(e)) == e  # JSON round trip (NUL bytes, replacement characters...)
        if e["lines"] == 1 and e["pid"] is not None and e["event"] not in ("crash_report", "logo"):
            _assert_message_is_the_rest_of_the_line(texts[e["offset"]], e["message"])
    return events


def _assert_message_is_the_rest_of_the_line(text: str, message: str) -> None:
    """No character of a one-line event is lost: the message is what follows the header."""
    if text.endswith("\ufffd") and not text.endswith(message):
        return  # a multi-byte character cut by max_line_bytes: the parser drops the broken tail
    if text.startswith("pid=") and text.endswith('"') and not text.endswith(message):
        text = text[:-1]  # logfmt: the closing quote is not part of the message
    assert text.endswith(message), (text, message)
    prefix = text[: len(text) - len(message)]
    if prefix.endswith('"') or prefix.endswith('message="'):
        return  # logfmt (the closing quote is not part of the message)
    p = prefix[:-1] if prefix.endswith(" ") else prefix
    assert p[-1:] in (".", "-", "*", "#", ")"), (text, message)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=200), max_size=40))
def test_random_bytes_never_raise_and_every_line_is_accounted_for(lines):
    _check([ln.replace(b"\n", b" ") for ln in lines])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_lines_never_raise_and_every_line_is_accounted_for(data):
    n = data.draw(st.integers(1, 60))
    lines = [_mutate(data, data.draw(st.sampled_from(REAL))).replace(b"\n", b" ") for _ in range(n)]
    flush_every = data.draw(st.one_of(st.none(), st.integers(1, 10)))
    max_line_bytes = data.draw(st.sampled_from([1 << 20, 64, 7]))
    events = _check(lines, flush_every, max_line_bytes)
    for e in events:
        errors = [err.message for err in VALIDATOR.iter_errors(e)]
        assert not errors, (e, errors)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 30))
def test_a_whole_real_file_cut_into_random_flushes_loses_nothing(seed, every):
    import random

    files = sorted(SAMPLE_LOGS.glob("*/*.log"))
    path = random.Random(seed).choice(files)
    data = path.read_bytes()
    lines = data.split(b"\n")
    if data.endswith(b"\n"):
        lines = lines[:-1]
    _check(lines, flush_every=every)
