"""The follower's checkpoints on disk: the format stays readable across versions, and a
record says where its stream is as soon as a restart finds the file under another name."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

from test_files_harness import Agent, FakeRuntime, file_config

from parsers.events import event_id
from shipper.sources.files.checkpoint import Record, load_checkpoints

SAMPLE = Path(__file__).resolve().parent.parent / "sample-logs" / "redis-7.0" / "replication-master.log"

#: the checkpoints the follower of redis-shipper 0.x (main at 07d5b0d, before the record owned
#: the stream's identity) committed after reading the first four lines of SAMPLE from
#: /tmp/files4/g/redis.log (dev 65024, inode 2147244): one stream record and one live marker.
#: ``start`` is those lines' first 256 bytes in hex; ``head`` their checksum.
MAIN_POSITIONS: dict[str, Any] = {
    "file:64d039e267e6:65024:2147244:4898f0621b58db03": {
        "origin": "65024:2147244:4898f0621b58db03",
        "live": "/tmp/files4/g/redis.log",
        "path": "/tmp/files4/g/redis.log",
        "dev": 65024,
        "ino": 2147244,
        "head_len": 256,
        "head": "4898f0621b58db03",
        "offset": 328,
        "size": 328,
        "start": (
            "32343333393a43203235204e6f7620323032362031383a35363a35312e3331382023206f4f304f6f4f304f6f4f304f"
            "6f205265646973206973207374617274696e67206f4f304f6f4f304f6f4f304f6f0a32343333393a43203235204e6f"
            "7620323032362031383a35363a35312e33313820232052656469732076657273696f6e3d372e302e31352c20626974"
            "733d36342c20636f6d6d69743d30303030303030302c206d6f6469666965643d302c207069643d32343333392c206a"
            "75737420737461727465640a32343333393a43203235204e6f7620323032362031383a35363a35312e333138202320"
            "436f6e66696775726174696f6e206c6f616465640a"
        ),
    },
    "file:64d039e267e6:live:8d68dd49e917c6b6": {"live": "/tmp/files4/g/redis.log"},
}
MAIN_KEY = "file:64d039e267e6:65024:2147244:4898f0621b58db03"


def sample_lines(n: int) -> list[bytes]:
    return SAMPLE.read_bytes().splitlines(keepends=True)[:n]


def test_a_record_of_main_reads_back_to_the_same_json_value() -> None:
    records, marked = load_checkpoints(MAIN_POSITIONS, "file:64d039e267e6:")
    assert set(records) == {MAIN_KEY}
    assert marked == {"/tmp/files4/g/redis.log"}
    rec = records[MAIN_KEY]
    assert rec.value() == MAIN_POSITIONS[MAIN_KEY]
    assert rec.start_bytes() == b"".join(sample_lines(4))[:256]


def test_setting_a_records_head_keeps_length_checksum_and_bytes_together() -> None:
    rec = Record.from_value(copy.deepcopy(MAIN_POSITIONS[MAIN_KEY]))
    assert rec is not None
    head = b"".join(sample_lines(4))[:256]
    before = (rec.head_len, rec.head, rec.start)
    rec.set_head(head)
    assert (rec.head_len, rec.head, rec.start) == before
    rec.set_head(head[:40])
    assert rec.head_len == 40 and rec.start_bytes() == head[:40] and rec.fingerprint.matches(head)


def test_a_positions_file_written_by_main_resumes_at_its_offset_with_its_origin(tmp_path: Path) -> None:
    log = tmp_path / "redis.log"
    lines = sample_lines(6)
    log.write_bytes(b"".join(lines[:4]))
    st = log.stat()
    rt = FakeRuntime()
    agent = Agent(file_config(str(log)), rt)
    prefix = agent.source_key_prefix()
    # the same file on this machine: only its place (path, device, inode) differs from main's run
    value = copy.deepcopy(MAIN_POSITIONS[MAIN_KEY])
    value.update(live=str(log), path=str(log), dev=st.st_dev, ino=st.st_ino)
    key = f"{prefix}{st.st_dev}:{st.st_ino}:{value['head']}"
    rt.committed[key] = value

    async def scenario() -> None:
        agent.start()
        with open(log, "ab") as f:
            f.write(b"".join(lines[4:]))
        assert await agent.wait_for(lambda: len(rt.lines()) == 2)
        await agent.stop()

    asyncio.run(scenario())
    assert rt.lines() == [x.decode().rstrip("\n") for x in lines[4:]]
    first = rt.events[0]
    assert first["origin"] == value["origin"] and first["offset"] == value["offset"]
    assert first["id"] == event_id(value["origin"], str(value["offset"]))
    after = rt.committed[key]
    assert list(after) == list(value)  # the same fields, in the same order
    assert {k: after[k] for k in ("origin", "head_len", "head", "start", "dev", "ino")} == \
        {k: value[k] for k in ("origin", "head_len", "head", "start", "dev", "ino")}
    assert after["offset"] == after["size"] == sum(len(x) for x in lines)


def test_a_file_renamed_while_down_is_checkpointed_under_its_new_name_before_any_new_line(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    lines = sample_lines(3)
    a.write_bytes(b"".join(lines))
    rt = FakeRuntime()
    agent = Agent(file_config(str(tmp_path / "*.log")), rt)

    def stream_paths() -> list[str]:
        return [v["path"] for k, v in rt.committed.items() if ":live:" not in k and v is not None]

    async def scenario() -> None:
        agent.start()
        assert await agent.wait_for(lambda: len(rt.lines()) == 3)
        await agent.stop()
        assert stream_paths() == [str(a)]
        a.rename(b)  # both names match the glob: the same stream, now under b.log
        agent.start()
        assert await agent.wait_for(lambda: stream_paths() == [str(b)], 10), stream_paths()
        await agent.stop()

    asyncio.run(scenario())
    assert len(rt.lines()) == 3  # nothing read again
