"""Container log envelopes (parsers/envelope.py): a wrapped Redis line gives the event the raw line
gives; records a runtime split are joined; the runtime's stream and time are kept where they add
something; offsets stay those of the real file."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from parsers.envelope import ContainerLogParser, detect, runtime_time
from parsers.logfile import LogParser

from conftest import SAMPLE_LOGS

CRI_TIME = "2026-12-07T03:00:00.123456789Z"


def parse(lines: list[bytes], container_format: str | None) -> list[dict[str, Any]]:
    """Events of ``lines`` fed as the follower feeds them (offset of each physical line)."""
    inner = LogParser(tz=UTC)
    p: Any = inner if container_format is None else ContainerLogParser(inner, container_format)
    out, off = [], 0
    for line in lines:
        out += p.feed(line, off)
        off += len(line) + 1
    return out + p.flush()


def cri(text: bytes, tag: bytes = b"F", stream: bytes = b"stdout") -> bytes:
    return CRI_TIME.encode() + b" " + stream + b" " + tag + b" " + text


def docker(text: str, stream: str = "stderr") -> bytes:
    return orjson.dumps({"log": text, "stream": stream, "time": CRI_TIME})


def comparable(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events without what the envelope changes by nature: byte offsets and the stream field."""
    out = []
    for ev in events:
        ev = dict(ev, fields={k: v for k, v in ev.get("fields", {}).items() if k != "stream"})
        ev.pop("offset", None)
        out.append(ev)
    return out


def sample(name: str) -> list[bytes]:
    return (SAMPLE_LOGS / "redis-7.0" / name).read_bytes().splitlines()


def test_every_real_redis_line_wrapped_by_cri_or_docker_gives_the_event_the_raw_line_gives() -> None:
    for name in ("misc.log", "replication-master.log", "crash-segfault.log", "security.log"):
        raw = sample(name)
        want = comparable(parse(raw, None))
        assert comparable(parse([cri(x) for x in raw], "auto")) == want, name
        assert comparable(parse([docker(x.decode(errors="replace") + "\n") for x in raw], "auto")) == want, name


def test_a_crash_report_assembles_across_wrapped_records_into_one_event() -> None:
    events = parse([cri(x) for x in sample("crash-segfault.log")], "cri")
    crashes = [e for e in events if e["event"] == "crash_report"]
    assert len(crashes) == 1 and crashes[0]["lines"] > 20


def test_cri_parts_are_joined_until_the_full_record_and_offsets_are_the_files() -> None:
    line = sample("misc.log")[1]
    a, b = line[:30], line[30:]
    lines = [cri(a, b"P"), cri(b, b"F"), cri(sample("misc.log")[2])]
    events = parse(lines, "cri")
    assert events[0]["message"] == parse([line], None)[0]["message"]
    assert events[0]["offset"] == 0 and events[0]["lines"] == 2
    assert events[1]["offset"] == len(lines[0]) + 1 + len(lines[1]) + 1
    assert events[0]["fields"]["stream"] == "stdout"


def test_docker_splits_a_long_line_into_records_without_newline_and_they_are_joined() -> None:
    head = "1:M 07 Dec 2026 03:00:00.000 * "
    long = head + "x" * 40_000
    recs = [docker(long[:16384]), docker(long[16384:32768]), docker(long[32768:] + "\n"),
            docker(head + "after\n")]
    events = parse(recs, "docker")
    assert [len(e["message"]) for e in events] == [40_000, 5] and events[0]["lines"] == 3
    assert events[0]["fields"]["stream"] == "stderr"


def test_a_checkpoint_never_passes_a_record_still_being_joined() -> None:
    p = ContainerLogParser(LogParser(tz=UTC), "cri")
    p.feed(cri(sample("misc.log")[0]), 0)
    first_part = len(cri(sample("misc.log")[0])) + 1
    p.feed(cri(b"12:M 07 Dec 2026 03:00:00.000 * half", b"P"), first_part)
    assert p.pending_offset is not None and p.pending_offset <= first_part


def test_lines_without_a_timestamp_of_their_own_take_the_runtimes() -> None:
    events = parse([cri(b"plain output of an entrypoint script")], "cri")
    assert events[0]["timestamp"] == "2026-12-07T03:00:00.123456Z"
    assert events[0]["fields"]["timestamp_from"] == "runtime"


def test_stdout_and_stderr_parts_never_join_each_other() -> None:
    events = parse([cri(b"1:M 07 Dec 2026 03:00:00.000 * from stdout, cut", b"P", b"stdout"),
                    cri(b"1:M 07 Dec 2026 03:00:00.001 # a stderr line", b"F", b"stderr")], "cri")
    assert [e["fields"]["stream"] for e in events] == ["stdout", "stderr"]


def test_detection_from_the_first_line() -> None:
    assert detect(cri(b"x")) == "cri"
    assert detect(docker("x\n")) == "docker"
    assert detect(sample("misc.log")[0]) == "plain"
    assert detect(b'{"not": "docker"}') == "plain"


def test_runtime_times_of_any_offset_and_precision_become_utc_microseconds() -> None:
    assert runtime_time("2026-12-07T04:00:00.123456789+01:00") == "2026-12-07T03:00:00.123456Z"
    assert runtime_time("2026-12-07T03:00:00Z") == "2026-12-07T03:00:00.000000Z"
    assert runtime_time("not a time") is None


@given(st.lists(st.binary(max_size=80), max_size=20), st.sampled_from(["auto", "cri", "docker", "plain"]))
def test_any_bytes_give_events_that_account_for_every_line_never_an_exception(lines: list[bytes], fmt: str) -> None:
    lines = [x.replace(b"\n", b" ") for x in lines]
    events = parse(lines, fmt)
    assert sum(e.get("lines", 0) for e in events) == len(lines)
