"""Sentinel event grammar and the failover correlator, on real Sentinel logs (sample-logs/)."""

from __future__ import annotations

from datetime import UTC

import pytest

from parsers.logfile import parse_lines
from parsers.sentinel import EVENTS, parse_event

from conftest import SAMPLE_LOGS


def test_switch_master_carries_old_and_new_address():
    cat, ev, f = parse_event("+switch-master mymaster 127.0.0.1 44681 127.0.0.1 57299")
    assert (cat, ev) == ("failover", "sentinel_switch_master")
    assert f == {
        "sentinel_event": "+switch-master",
        "master_name": "mymaster",
        "old_ip": "127.0.0.1",
        "old_port": 44681,
        "new_ip": "127.0.0.1",
        "new_port": 57299,
    }


def test_new_epoch_and_vote_for_leader_carry_the_epoch():
    assert parse_event("+new-epoch 1")[2] == {"sentinel_event": "+new-epoch", "epoch": 1}
    f = parse_event("+vote-for-leader 183d7a200d64e7bb9b78428dd61444901b8b6f29 1")[2]
    assert f == {
        "sentinel_event": "+vote-for-leader",
        "leader_id": "183d7a200d64e7bb9b78428dd61444901b8b6f29",
        "epoch": 1,
    }


def test_instance_details_after_at_are_the_master():
    cat, ev, f = parse_event("+slave slave 127.0.0.1:57299 127.0.0.1 57299 @ mymaster 127.0.0.1 44681")
    assert (cat, ev) == ("replication", "sentinel_slave")
    assert f == {
        "sentinel_event": "+slave",
        "instance_type": "slave",
        "instance_name": "127.0.0.1:57299",
        "ip": "127.0.0.1",
        "port": 57299,
        "master_name": "mymaster",
        "master_ip": "127.0.0.1",
        "master_port": 44681,
    }


def test_master_instance_names_the_master_and_odown_quorum_is_parsed():
    cat, ev, f = parse_event("+odown master mymaster 127.0.0.1 44681 #quorum 3/2")
    assert (cat, ev) == ("failover", "sentinel_odown")
    assert f["master_name"] == "mymaster" and f["ip"] == "127.0.0.1" and f["port"] == 44681
    assert f["quorum_votes"] == 3 and f["quorum"] == 2
    assert "master_ip" not in f


def test_set_and_monitor_are_config_events():
    cat, ev, f = parse_event("+set master mymaster 10.0.0.5 6379 down-after-milliseconds 5000")
    assert (
        (cat, ev) == ("config", "sentinel_set")
        and f["option"] == "down-after-milliseconds"
        and f["value"] == "5000"
    )
    cat, ev, f = parse_event("+monitor master mymaster 127.0.0.1 44681 quorum 2")
    assert (cat, ev) == ("config", "sentinel_monitor") and f["quorum"] == 2
    cat, ev, f = parse_event(
        "+config-update-from sentinel 183d7a200d64e7bb9b78428dd61444901b8b6f29 127.0.0.1 57487 @ mymaster 127.0.0.1 "
        "44681"
    )
    assert (cat, ev) == ("config", "sentinel_config_update_from")
    assert (
        f["instance_type"] == "sentinel" and f["instance_name"] == "183d7a200d64e7bb9b78428dd61444901b8b6f29"
    )


def test_tilt_has_no_instance():
    assert parse_event("+tilt #tilt mode entered") == (
        "failover",
        "sentinel_tilt",
        {"sentinel_event": "+tilt", "detail": "#tilt mode entered"},
    )
    assert parse_event("-tilt #tilt mode exited")[:2] == ("failover", "sentinel_tilt_cleared")


@pytest.mark.parametrize(
    "etype",
    [
        "+sdown",
        "-sdown",
        "+odown",
        "-odown",
        "+new-epoch",
        "+try-failover",
        "+vote-for-leader",
        "+elected-leader",
        "+failover-state-select-slave",
        "+failover-state-send-slaveof-noone",
        "+failover-state-wait-promotion",
        "+failover-state-reconf-slaves",
        "+selected-slave",
        "+promoted-slave",
        "+slave-reconf-sent",
        "+slave-reconf-inprog",
        "+slave-reconf-done",
        "+failover-end",
        "-failover-abort-not-elected",
        "-failover-abort-no-good-slave",
        "-failover-abort-slave-timeout",
        "+switch-master",
        "+tilt",
        "-tilt",
    ],
)
def test_every_failover_state_machine_event_is_in_the_failover_category(etype):
    assert EVENTS[etype][0] == "failover"


def test_an_unknown_future_event_type_still_parses():
    cat, ev, f = parse_event("+brand-new-thing master m 1.2.3.4 6379")
    assert (cat, ev) == ("other", "sentinel_brand_new_thing") and f["master_name"] == "m"
    assert parse_event("not an event") is None


def _parse(path):
    return parse_lines(path.read_bytes(), tz=UTC)


def _sample(name):
    p = SAMPLE_LOGS / name
    if not p.exists():
        pytest.fail(f"{p} is missing: sample-logs/ is part of the repository")
    return p


@pytest.mark.parametrize("flavour", ["sentinel-7.0", "valkey-9-sentinel"])
def test_every_sentinel_line_is_a_sentinel_event_in_a_real_failover_log(flavour):
    for i in (1, 2, 3):
        evs = _parse(_sample(f"{flavour}/sentinel-{i}.log"))
        assert {e["source"] for e in evs} == {"sentinel"}
        assert not [e for e in evs if e["event"] == "unrecognized"]
        switches = [e for e in evs if e["event"] == "sentinel_switch_master"]
        completed = [e for e in evs if e["event"] == "failover_completed"]
        assert switches, f"{flavour}/sentinel-{i}.log has a real +switch-master"
        assert len(completed) == len(switches)


@pytest.mark.parametrize("flavour", ["sentinel-7.0", "valkey-9-sentinel"])
def test_failover_summary_matches_the_switch_master_it_completes(flavour):
    for i in (1, 2, 3):
        evs = _parse(_sample(f"{flavour}/sentinel-{i}.log"))
        for k, e in enumerate(evs):
            if e["event"] != "failover_completed":
                continue
            sw = evs[k - 1]
            assert sw["event"] == "sentinel_switch_master"
            assert e["offset"] == sw["offset"] and e["lines"] == 0 and e["timestamp"] == sw["timestamp"]
            for key in ("master_name", "old_ip", "old_port", "new_ip", "new_port"):
                assert e["fields"][key] == sw["fields"][key]
            if e["fields"]["started_at"] is not None:
                assert e["fields"]["started_at"] <= e["timestamp"]
                assert e["fields"]["duration_seconds"] >= 0
                assert e["fields"]["epoch"] >= 1


def test_the_leader_s_summary_says_it_led_and_is_not_aborted_by_its_own_odown_clear():
    """Real 7.0.15 leader sequence: ... +slave-reconf-done, -odown, +failover-end, +switch-master."""
    for flavour in ("sentinel-7.0", "valkey-9-sentinel"):
        led = []
        for i in (1, 2, 3):
            evs = _parse(_sample(f"{flavour}/sentinel-{i}.log"))
            elected = [e for e in evs if e["event"] == "sentinel_elected_leader"]
            done = [e for e in evs if e["event"] == "failover_completed" and e["fields"]["leader"]]
            assert len(done) == len(elected)
            assert not [e for e in evs if e["event"] == "failover_aborted"]
            led += done
        assert led, f"some Sentinel led a failover in {flavour}"
        for e in led:
            assert e["fields"]["duration_seconds"] is not None and e["fields"]["epoch"] is not None


SEQ_ABORT = b"""\
1:X 25 Nov 2026 18:57:04.176 # +sdown master mymaster 127.0.0.1 44681
1:X 25 Nov 2026 18:57:04.229 # +odown master mymaster 127.0.0.1 44681 #quorum 2/2
1:X 25 Nov 2026 18:57:04.229 # +new-epoch 1
1:X 25 Nov 2026 18:57:04.229 # +try-failover master mymaster 127.0.0.1 44681
1:X 25 Nov 2026 18:57:04.234 # +vote-for-leader 183d7a200d64e7bb9b78428dd61444901b8b6f29 1
1:X 25 Nov 2026 18:57:14.300 # -failover-abort-not-elected master mymaster 127.0.0.1 44681
1:X 25 Nov 2026 18:57:15.000 # -odown master mymaster 127.0.0.1 44681
"""


def test_not_elected_abort_then_master_back_gives_two_aborted_summaries():
    evs = parse_lines(SEQ_ABORT, tz=UTC)
    aborted = [e for e in evs if e["event"] == "failover_aborted"]
    assert [a["fields"]["reason"] for a in aborted] == ["-failover-abort-not-elected", "-odown"]
    assert aborted[0]["fields"]["epoch"] == 1
    assert aborted[0]["fields"]["duration_seconds"] == pytest.approx(10.071)
    assert aborted[0]["fields"]["started_at"] == "2026-11-25T18:57:04.229000Z"
    assert sum(e["lines"] for e in evs) == SEQ_ABORT.count(b"\n")


def test_two_sentinels_in_one_file_do_not_mix():
    data = (
        b"1:X 25 Nov 2026 18:00:00.000 # +odown master m 10.0.0.1 6379 #quorum 2/2\n"
        b"2:X 25 Nov 2026 18:00:01.000 # +odown master m 10.0.0.1 6379 #quorum 2/2\n"
        b"1:X 25 Nov 2026 18:00:05.000 # +switch-master m 10.0.0.1 6379 10.0.0.2 6379\n"
        b"2:X 25 Nov 2026 18:00:07.000 # +switch-master m 10.0.0.1 6379 10.0.0.2 6379\n"
    )
    done = [e for e in parse_lines(data, tz=UTC) if e["event"] == "failover_completed"]
    assert [(e["pid"], e["fields"]["duration_seconds"]) for e in done] == [(1, 5.0), (2, 6.0)]
