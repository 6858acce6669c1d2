"""A spool SQLite cannot read is moved aside, a fresh one resumes from positions.json, and a
``state_reset`` agent event says so: no traceback at start for garbage or zeroed files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from parsers.events import make_event
from shipper.pipeline.spool import Spool


def ev(i: int) -> dict:
    return make_event(timestamp="2026-11-25T17:00:00.000000Z", source="redis", category="other",
                      event="unrecognized", message=f"line {i}")


@pytest.mark.parametrize("damage", ["garbage", "zeroed"])
def test_an_unreadable_spool_is_moved_aside_and_a_fresh_one_resumes_from_positions_json(
        tmp_path: Path, damage: str) -> None:
    async def go() -> None:
        sp = Spool(tmp_path, host="h")
        await sp.open()
        await sp.register_sink("a")
        await sp.append("h/file:x", [ev(i) for i in range(50)], {"file:1": {"offset": 500}})
        await sp.close()
        size = (tmp_path / "spool.sqlite").stat().st_size
        (tmp_path / "spool.sqlite").write_bytes(b"\x8fgarbage!" * (size // 9) if damage == "garbage" else
                                                b"\0" * size)
        sp = Spool(tmp_path, host="h")
        await sp.open()
        assert await sp.positions("file:") == {"file:1": {"offset": 500}}
        await sp.register_sink("a")
        batch, _ = await sp.read("a", 1 << 20)
        await sp.close()
        resets = [b.event for b in batch if b.event.get("event") == "state_reset"]
        assert len(resets) == 1
        assert resets[0]["fields"]["resumed_from"] == "positions.json"
        assert list(tmp_path.glob("spool.sqlite.corrupt-*"))

    asyncio.run(go())


def test_a_spool_file_deleted_under_the_running_agent_is_reported_once(tmp_path: Path) -> None:
    from shipper.pipeline import spool_stamp, state_guard

    async def go() -> tuple[list[dict], dict[str, str]]:
        sp = Spool(tmp_path, host="h")
        await sp.open()
        await sp.register_sink("a")
        await sp.append("h/file:x", [ev(i) for i in range(5)], {"file:1": {"offset": 50}})
        (tmp_path / "spool.sqlite").unlink()
        for i in range(3):  # the stamp writer looks at most once a second
            await asyncio.sleep(spool_stamp.INTERVAL + 0.1)
            await sp.append("h/file:x", [ev(10 + i)], {"file:1": {"offset": 60 + i}})
        if sp._vanish_reported is not None:
            await sp._vanish_reported
        batch, _ = await sp.read("a", 1 << 20)
        failing = state_guard.failing()
        await sp.close()
        return [b.event for b in batch if b.event.get("event") == "state_reset"], failing

    try:
        resets, failing = asyncio.run(go())
    finally:
        state_guard.record_success("spool_file")
    assert len(resets) == 1
    assert "was deleted while the agent runs" in resets[0]["message"]
    assert "was deleted while the agent runs" in failing["spool_file"]
