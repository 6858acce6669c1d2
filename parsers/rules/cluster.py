"""Redis Cluster messages (redis-log-formats.md §2.7; cluster.c in 7.0, cluster_legacy.c from 7.2 and
in Valkey).

Rule data only (the format is in :mod:`parsers.rules`); :mod:`parsers.catalogue_build` compiles it.
"""

from __future__ import annotations

from typing import Any

from parsers.rules.wording import NODE, mp


#: a node id with the ``(ip:port)`` or ``(name)`` Valkey 8+ writes after it, under a chosen field name
def _node(field: str) -> str:
    return rf"(?P<{field}>[0-9a-f]{{40}})(?: \((?P<{field}_addr>[^)]*)\))?"


ADDR = r"(?P<ip>[^\s:]+):(?P<port__i>\d+)"
SHARD_ID = r"(?P<shard_id>[0-9a-f]{40})"
SHARD = r"(?: in shard (?P<shard_id>[0-9a-f]{40}))?"

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
        r"Start of election delayed for (?P<delay_ms__i>\d+) milliseconds \(rank #(?P<rank__i>\d+), "
        r"(?:" + mp + r" rank #(?P<master_rank__i>\d+), )?offset "
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
    (
        r"Taking over the " + mp + r" \(user request(?: from '(?P<client>.*)')?\)",
        "cluster",
        "manual_failover_takeover",
    ),
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
    # ---------------------------------------------------------------- cluster bus and gossip
    (
        r"Node " + _node("sender_id") + r" reported node " + _node("node_id") + r" as not reachable",
        "cluster",
        "node_reported_unreachable",
    ),
    (
        r"Node " + _node("sender_id") + r" reported node " + _node("node_id") + r" is back online",
        "cluster",
        "node_reported_back_online",
    ),
    (
        r"Node " + _node("sender_id") + r" has old slots configuration, sending an UPDATE message about "
        + _node("node_id"),
        "cluster",
        "stale_slots_update_sent",
    ),
    (
        r"Node " + _node("node_id") + r" is now a replica of node " + _node("master_id") + SHARD,
        "cluster",
        "node_role_changed",
    ),
    (r"Node " + _node("node_id") + r" is now part of shard " + SHARD_ID, "cluster", "node_shard_changed"),
    (
        r"Node " + _node("node_id") + r" is no longer " + mp + r" of shard (?P<shard_id>[0-9a-f]{40}); removed all "
        r"(?P<slots__i>\d+) slot\(s\)",
        "cluster",
        "node_lost_slots",
    ),
    (r"NODE " + _node("node_id") + r" possibly failing", "cluster", "node_possibly_failing"),
    (r"Accepting cluster node connection from " + ADDR, "cluster", "cluster_link_accepted"),
    (
        r"Connection with Node " + _node("node_id") + r" at " + ADDR + r" failed: (?P<error>.*)",
        "cluster",
        "cluster_link_failed",
    ),
    (r"IP address for this node updated to (?P<ip>\S+)", "cluster", "node_ip_updated"),
    (
        r"Bound cluster node " + _node("node_id") + r" to connection of client " + ADDR,
        "cluster",
        "cluster_link_bound",
    ),
    (r"Successfully completed handshake with " + _node("node_id"), "cluster", "cluster_handshake_completed"),
    (r"Cluster meet (?P<address>\S+)(?: \(user request from '(?P<client>.*)'\))?", "cluster", "cluster_meet"),
    (
        r"Cluster forget (?P<node_id>[0-9a-f]{40})(?: \(user request from '(?P<client>.*)'\))?",
        "cluster",
        "cluster_forget",
    ),
    (r"Cluster reset(?: \(user request from '(?P<client>.*)'\))?", "cluster", "cluster_reset"),
    (r"Cluster is currently down: (?P<reason>.*)", "cluster", "cluster_down_reason"),
    (r"Saving the cluster configuration file before exiting", "cluster", "cluster_config_saved"),
    # ---------------------------------------------------------------- epochs and slots
    (
        r"configEpoch set to (?P<epoch__i>\d+) via CLUSTER SET-CONFIG-EPOCH",
        "cluster",
        "config_epoch_set",
    ),
    (
        r"[Cc]onfigEpoch updated after importing slot (?P<slot__i>\d+)",
        "cluster",
        "config_epoch_set",
        ["configEpoch", "ConfigEpoch"],
    ),
    (r"Assigning slot (?P<slot__i>\d+) to node " + _node("node_id") + SHARD, "cluster", "slot_assigned"),
    (
        r"Slot range \[(?P<slot_start__i>\d+), (?P<slot_end__i>\d+)\] is migrated from node " + _node("source_id")
        + r"(?: in shard (?P<source_shard>[0-9a-f]{40}))? to node " + _node("node_id") + SHARD,
        "cluster",
        "slots_migrated",
    ),
    (r"Migrating slot (?P<slot__i>\d+) to node " + _node("node_id"), "cluster", "slot_migrating"),
    (r"Importing slot (?P<slot__i>\d+) from node " + _node("node_id"), "cluster", "slot_importing"),
    (
        r"Slot (?P<slot__i>\d+) is no longer being migrated to node " + _node("node_id") + SHARD,
        "cluster",
        "slot_migration_ended",
    ),
    (
        r"Mismatch in topology information for sender node " + _node("node_id") + SHARD,
        "cluster",
        "topology_mismatch",
    ),
    (
        r"Reconfiguring node " + _node("node_id") + r" as " + mp + r" for shard " + SHARD_ID,
        "cluster",
        "node_role_changed",
    ),
    (
        r"A failover occurred in shard " + SHARD_ID + r"; node " + _node("failed_node") + r" lost (?P<slots__i>\d+) "
        r"slot\(s\) and failed over to node " + _node("node_id") + r" with a config epoch of (?P<epoch__i>\d+)",
        "cluster",
        "shard_failed_over",
    ),
    (
        r"Shard id (?P<shard_id>[0-9a-f]{40}) update request for node id (?P<node_id>[0-9a-f]{40}) diverges from "
        r"existing " + mp + r" shard id (?P<existing_shard_id>[0-9a-f]{40}), rejecting",
        "cluster",
        "shard_id_update_rejected",
    ),
    # ---------------------------------------------------------------- failover steps
    (
        r"Manual failover requested by replica " + _node("node_id"),
        "cluster",
        "manual_failover_requested",
    ),
    (
        r"Received replication offset for paused " + mp + r" manual failover: (?P<repl_offset__i>-?\d+)",
        "cluster",
        "manual_failover_offset",
    ),
    (
        r"Setting myself to " + mp + r" in shard (?P<shard_id>[0-9a-f]{40}) after failover; my old " + mp + r" is "
        + _node("failed_node"),
        "cluster",
        "promoted_after_failover",
    ),
    (
        r"This is the best ranked replica and can initiate the election immediately",
        "cluster",
        "election_immediate",
    ),
    (
        r"Lost my last slot during slot migration\. Reconfiguring myself as a replica of " + _node("node_id") + SHARD,
        "cluster",
        "reconfigured_as_replica",
    ),
    (r"Moving myself to a new shard (?P<shard_id>[0-9a-f]{40})", "cluster", "node_shard_changed"),
]
