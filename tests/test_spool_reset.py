"""What the spool says when its state was lost (shipper/pipeline/spool_reset.py), case by case."""

from __future__ import annotations

from pathlib import Path

from shipper.pipeline import positions_mirror, spool_reset
from shipper.pipeline.spool_stamp import Stamp


def test_setting_aside_moves_the_database_and_its_wal_and_names_the_moved_database(tmp_path: Path) -> None:
    spool = tmp_path / "spool.sqlite"
    spool.write_bytes(b"\x8fgarbage!")
    Path(f"{spool}-wal").write_bytes(b"wal")
    moved = spool_reset.set_aside(spool)
    assert moved is not None and moved.name.startswith("spool.sqlite.corrupt-")
    assert moved.read_bytes() == b"\x8fgarbage!"
    assert Path(f"{moved}-wal").read_bytes() == b"wal"
    assert not spool.exists() and not Path(f"{spool}-wal").exists()


def test_setting_aside_a_wal_without_its_database_names_no_moved_database(tmp_path: Path) -> None:
    spool = tmp_path / "spool.sqlite"
    Path(f"{spool}-wal").write_bytes(b"wal")
    assert spool_reset.set_aside(spool) is None
    assert [p.name.endswith("-wal") for p in tmp_path.glob("spool.sqlite.corrupt-*")] == [True]


def test_a_spool_holding_every_row_its_stamp_recorded_lost_nothing(tmp_path: Path) -> None:
    spool = tmp_path / "spool.sqlite"
    assert spool_reset.rows_lost(spool, 120, Stamp(top=120, cursors={"loki": 100})) is None
    assert spool_reset.rows_lost(spool, 120, None) is None


def test_a_spool_ending_before_its_stamp_counts_what_no_sink_had(tmp_path: Path) -> None:
    reset = spool_reset.rows_lost(tmp_path / "spool.sqlite", 80, Stamp(top=120, cursors={"loki": 100, "es": 90}))
    assert reset is not None
    assert reset.fields["rows_lost"] == 40
    assert reset.fields["unrecoverable_events"] == 30  # rows 91..120: after the slowest sink's cursor
    assert "spool.sqlite-wal" in reset.message


def test_a_fresh_start_without_a_stamp_says_it_cannot_count_the_loss(tmp_path: Path) -> None:
    reset = spool_reset.fresh_start(tmp_path / "spool.sqlite", "spool.sqlite is empty (0 bytes)", moved=None,
                                    positions_restored=0, stamp=None)
    assert reset.fields["unrecoverable_events"] is None
    assert reset.fields["resumed_from"] == "nothing (sources start over)"
    assert "no spool.stamp to count it" in reset.message


def test_a_reset_is_shipped_as_a_state_reset_agent_event_at_error_level(tmp_path: Path) -> None:
    reset = spool_reset.vanished(tmp_path / "spool.sqlite", "spool.sqlite was deleted while the agent runs",
                                 unshipped=7)
    ev = reset.event()
    assert (ev["source"], ev["event"], ev["level"]) == ("agent", "state_reset", "error")
    assert ev["message"] == reset.message
    assert ev["fields"] == reset.fields and ev["fields"]["unrecoverable_events"] == 7


def test_a_positions_mirror_that_is_not_a_mapping_restores_nothing(tmp_path: Path) -> None:
    mirror = tmp_path / "positions.json"
    mirror.write_bytes(b'[1, 2]')
    assert positions_mirror.read(mirror) == {}
    mirror.write_bytes(b'{"file:1": {"offset": 500}')
    assert positions_mirror.read(mirror) == {}
    mirror.write_bytes(b'{"file:1": {"offset": 500}}')
    assert positions_mirror.read(mirror) == {"file:1": {"offset": 500}}
