"""Redis Cluster messages (redis-log-formats.md §2.7; cluster.c in 7.0, cluster_legacy.c from 7.2 and
in Valkey).

Rule data only (the format is in :mod:`parsers.rules`); :mod:`parsers.catalogue` compiles it.
"""

from __future__ import annotations

from typing import Any

from parsers.rules.wording import NODE, mp

RULES: list[tuple[Any, ...]] = [
    # ---------------------------------------------------------------- cluster (§2.7)
    (r"Cluster state changed: (?P<cluster_state>\w+)", "cluster", "cluster_state_changed"),
    (
        r"FAIL message received from (?P<sender_id>[0-9a-f]{40})(?: \((?P<sender_name>[^)]*)\))? about "
        + NODE,
        "cluster",
        "fail_message_received",
    ),
    (r"Marking node " + NODE + r" as failing \(quorum reached\)", "cluster", "node_marked_failing"),
    (r"Clear FAIL state for node " + NODE + r": ?(?P<reason>.*)", "cluster", "node_fail_cleared"),
    (
        r"Start of election delayed for (?P<delay_ms__i>\d+) milliseconds \(rank #(?P<rank__i>\d+), offset "
        r"(?P<repl_offset__i>-?\d+)\)",
        "cluster",
        "election_delayed",
    ),
    (
        r"Replica rank updated to #(?P<rank__i>\d+), added (?P<delay_ms__i>\d+) milliseconds of delay",
        "cluster",
        "election_delayed",
    ),
    (r"Starting a failover election for epoch (?P<epoch__i>\d+)", "cluster", "election_started"),
    (r"Currently unable to failover: (?P<reason>.*)", "cluster", "failover_unavailable"),
    (
        r"Needed quorum: (?P<quorum__i>\d+)\. Number of votes received so far: (?P<votes__i>\d+)",
        "cluster",
        "election_votes",
    ),
    (r"Failover election won: I'm the new " + mp, "cluster", "election_won"),
    (r"configEpoch set to (?P<epoch__i>\d+) after successful failover", "cluster", "config_epoch_set"),
    (r"New configEpoch set to (?P<epoch__i>\d+)", "cluster", "config_epoch_set"),
    (
        r"Failover auth granted to " + NODE + r" for epoch (?P<epoch__i>\d+)",
        "cluster",
        "failover_auth_granted",
    ),
    (r"Failover auth denied to " + NODE + r": (?P<reason>.*)", "cluster", "failover_auth_denied"),
    (
        r"Configuration change detected\. Reconfiguring myself as a replica of (?:node )?" + NODE,
        "cluster",
        "reconfigured_as_replica",
    ),
    (
        r"I'm a sub-replica! Reconfiguring myself as a replica of grandmaster " + NODE,
        "cluster",
        "reconfigured_as_replica",
    ),
    (r"Manual failover user request accepted", "cluster", "manual_failover_accepted"),
    (r"Forced failover user request accepted", "cluster", "manual_failover_accepted"),
    (r"Taking over the " + mp + r" \(user request\)", "cluster", "manual_failover_takeover"),
    (r"Manual failover timed out", "cluster", "manual_failover_timeout"),
    (
        r"All " + mp + r" replication stream processed, manual failover can start",
        "cluster",
        "manual_failover_ready",
    ),
    (
        r"Address updated for node " + NODE + r", now (?P<ip>\S+):(?P<port__i>\d+)",
        "cluster",
        "node_address_updated",
    ),
    (r"Migrating to orphaned " + mp + r" (?P<node_id>[0-9a-f]+)", "cluster", "migrating_to_orphaned_master"),
    (r"Freeing cluster link\(", "cluster", "cluster_link_freed"),
    (r"No cluster configuration found, I'm (?P<node_id>[0-9a-f]+)", "cluster", "cluster_config_created"),
    (r"Node configuration loaded, I'm (?P<node_id>[0-9a-f]+)", "cluster", "cluster_config_loaded"),
]
