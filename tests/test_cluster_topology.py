"""The pure part of the cluster poller: CLUSTER NODES / SHARDS replies as topologies, and the events
between two of them (a reshard in progress is one event once it settles, a failover is a role change)."""

from __future__ import annotations

from parsers.cluster_topology import (
    diff,
    parse_cluster_info,
    parse_cluster_nodes,
    parse_cluster_shards,
    settle,
    topology,
)

A, B, C, R = ("a" * 40, "b" * 40, "c" * 40, "d" * 40)
INFO = b"cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_current_epoch:3\r\n"


def nodes(a_slots: str, b_slots: str, *, a_flags: str = "master", r_flags: str = "slave", r_master: str = A) -> str:
    """A CLUSTER NODES reply of a 3-master cluster with one replica R, as Redis 7.0 writes it."""
    return "\n".join([
        f"{A} 127.0.0.1:30001@40001 {a_flags} - 0 1796631477405 1 connected {a_slots}",
        f"{B} 127.0.0.1:30002@40002 myself,master - 0 1796631477000 2 connected {b_slots}",
        f"{C} 127.0.0.1:30003@40003 master - 0 1796631477405 3 connected 10923-16383",
        f"{R} 127.0.0.1:30004@40004 {r_flags} {r_master if 'slave' in r_flags else '-'} 0 1796631477103 1 connected"
        + ("" if "slave" in r_flags else " 0-5460"),
    ]) + "\n"


def read(reply: str) -> dict:  # type: ignore[type-arg]
    info = parse_cluster_info(INFO)
    parsed = parse_cluster_nodes(reply)
    assert info is not None and parsed is not None
    return topology(info, parsed)


def run(*replies: str) -> list[list[str]]:
    """The events of each read after the first, as the poller folds them (settle, then diff)."""
    reported = previous = read(replies[0])
    out = []
    for reply in replies[1:]:
        new = read(reply)
        settled = settle(reported, previous, new)
        out.append(diff(reported, settled, origin="o", node_id=B, observed_ms=0))
        reported, previous = settled, new
    return [[f"{e['event']}:{e['fields'].get('count', e['fields'].get('node', ''))}" for e in evs] for evs in out]


def test_a_reshard_seen_half_way_is_one_slots_moved_event_once_two_reads_agree() -> None:
    before = nodes("0-5460", "5461-10922")
    half = nodes("50-5460", "0-49 5461-10922")
    done = nodes("100-5460", "0-99 5461-10922")
    assert run(before, half, done, done, done) == [[], [], ["cluster_slots_moved:100"], []]


def test_a_failover_is_a_failed_node_and_a_role_change_not_a_slot_move() -> None:
    before = nodes("0-5460", "5461-10922")
    failed = nodes("", "5461-10922", a_flags="master,fail", r_flags="master")
    assert run(before, failed, failed) == [[f"cluster_node_failed:{A}", f"cluster_role_changed:{R}"], []]


def test_slots_moved_names_both_nodes_and_the_ranges() -> None:
    old, new = read(nodes("0-5460", "5461-10922")), read(nodes("0-5000 5100-5460", "5001-5099 5461-10922"))
    (ev,) = diff(old, new, origin="o", node_id=B, observed_ms=0)
    assert ev["fields"] | {"epoch": 3} == {"cluster_node_id": B, "epoch": 3, "from_node": A, "to_node": B,
                                           "slots": [[5001, 5099]], "count": 99}


def test_a_node_in_handshake_is_not_a_member_yet() -> None:
    reply = nodes("0-5460", "5461-10922") + f"{'e' * 40} 127.0.0.1:30005@40005 handshake - 0 0 0 connected\n"
    parsed = parse_cluster_nodes(reply)
    assert parsed is not None and "e" * 40 not in parsed


def test_shards_health_fail_is_a_failed_node() -> None:
    shard = [b"slots", [0, 5460], b"nodes", [[b"id", A.encode(), b"port", 30001, b"ip", b"127.0.0.1",
                                              b"role", b"master", b"health", b"fail"]]]
    assert parse_cluster_shards([shard]) == {A: {"addr": "127.0.0.1:30001", "role": "master", "failed": True,
                                                 "master": None, "slots": [[0, 5460]]}}


def test_replies_of_any_shape_give_none_or_a_topology_never_an_exception() -> None:
    for junk in (None, 12, b"", "x", [1, 2], [[b"slots"]], {"a": 1}, [b"\xff"], [[b"slots", [b"\xb2"]]]):
        parse_cluster_shards(junk)
        parse_cluster_nodes(junk)
        parse_cluster_info(junk)
    assert parse_cluster_nodes(f"{A} x master - 0 0 1 connected \u00b2-5\n") == {
        A: {"addr": "x", "role": "master", "master": None, "failed": False, "slots": []}}
