"""Replication, both sides, and the FAILOVER command (redis-log-formats.md §2.5).

Rule data only (the format is in :mod:`parsers.rules`); :mod:`parsers.catalogue_build` compiles it.
"""

from __future__ import annotations

from typing import Any

from parsers.rules.wording import MP, SYNC, Mp, Sr, mp, sr

RULES: list[tuple[Any, ...]] = [
    # ---------------------------------------------------------------- replication, replica side (§2.5)
    (
        r"Connecting to " + MP + r" (?P<master_host>.+):(?P<master_port__i>\d+)$",
        "replication",
        "connecting_to_master",
    ),
    (
        r"Reconnecting to " + MP + r" (?P<master_host>.+):(?P<master_port__i>\d+)(?: after failure)?$",
        "replication",
        "reconnecting_to_master",
    ),
    (SYNC + r" started", "replication", "sync_started", ["MASTER", "PRIMARY"]),
    (
        SYNC + r": receiving (?P<bytes__i>\d+) bytes from " + mp + r"(?: (?P<target>.*))?",
        "replication",
        "sync_receiving_rdb",
        ["MASTER", "PRIMARY"],
    ),
    (
        SYNC + r": receiving streamed RDB from " + mp + r" with EOF(?: (?P<target>.*))?",
        "replication",
        "sync_receiving_rdb",
        ["MASTER", "PRIMARY"],
    ),
    (SYNC + r": Flushing old data", "replication", "sync_flushing_old_data", ["MASTER", "PRIMARY"]),
    (SYNC + r": Loading DB in memory", "replication", "sync_loading_db", ["MASTER", "PRIMARY"]),
    (
        SYNC + r": Discarding old DB in background",
        "replication",
        "sync_discarding_old_db",
        ["MASTER", "PRIMARY"],
    ),
    (SYNC + r": Swapping active DB with loaded DB", "replication", "sync_swapping_db", ["MASTER", "PRIMARY"]),
    (SYNC + r": Finished with success", "replication", "sync_finished", ["MASTER", "PRIMARY"]),
    (
        SYNC + r": " + Mp + r" accepted a Partial Resynchronization",
        "replication",
        "partial_resync_accepted_by_master",
        ["MASTER", "PRIMARY"],
    ),
    (SYNC + r": (?P<detail>.*)", "replication", "sync_progress", ["MASTER", "PRIMARY"]),
    (r"Non blocking connect for SYNC fired the event\.", "replication", "sync_connected"),
    # Valkey 9: the replica downloads the RDB in a bio thread
    (r"Replica main thread creating Bio thread to save RDB to disk", "replication", "sync_download_started"),
    (r"Replica bio thread: Done downloading RDB", "replication", "sync_download_done", ["Replica"]),
    (
        r"Replica main thread detected RDB download completion in Bio thread",
        "replication",
        "sync_download_done",
    ),
    (r"Loading the RDB and finalizing primary-replica sync", "replication", "sync_loading_db"),
    # Valkey 8+ dual channel replication (the rest of the message is tried against the table first)
    (
        r"Dual channel replication: PSYNC is not possible, initialize RDB channel",
        "replication",
        "dual_channel_rdb_channel_opened",
    ),
    (
        r"Dual channel replication: Replica (?P<replica>\S+) is capable of dual channel synchronization",
        "replication",
        "dual_channel_full_sync",
    ),
    (
        r"Dual channel replication: Replica (?P<replica>\S+) rdb channel disconnected",
        "replication",
        "dual_channel_rdb_channel_closed",
    ),
    (
        r"Dual channel replication: Sending to replica (?P<replica>\S+) RDB end offset (?P<repl_offset__i>-?\d+) "
        r"and client-id (?P<rdb_client_id__i>\d+)",
        "replication",
        "dual_channel_rdb_end_offset_sent",
    ),
    (
        r"Dual channel replication: Successfully streamed replication data into memory",
        "replication",
        "dual_channel_buffer_streamed",
    ),
    (
        r"Dual channel replication: Trying a partial resynchronization using main channel \(request "
        r"(?P<replid>[^:]*):(?P<repl_offset__i>-?\d+)\)",
        "replication",
        "partial_resync_attempt",
    ),
    (r"Dual channel replication: (?P<detail>.*)", "replication", "dual_channel_progress"),
    (
        r"RDB transfer completed, rdb only replica \((?P<replica>[^)]*)\) should be disconnected",
        "replication",
        "dual_channel_rdb_transfer_done",
    ),
    (r"RDB signature and version check passed\. Flushing old data", "replication", "sync_flushing_old_data"),
    (
        Mp + r" replied to PING, replication can continue",
        "replication",
        "master_replied_to_ping",
        ["Master", "Primary"],
    ),
    (r"Error condition on socket for SYNC: (?P<error>.*)", "replication", "sync_socket_error"),
    (r"Unable to connect to " + MP + r": (?P<error>.*)", "replication", "master_connect_failed"),
    (r"Unable to AUTH to " + MP + r": (?P<error>.*)", "replication", "master_auth_failed"),
    (
        r"Trying a partial resynchronization \(request (?P<replid>[^:]*):(?P<repl_offset__i>-?\d+)\)",
        "replication",
        "partial_resync_attempt",
    ),
    (
        r"Partial resynchronization not possible \(no cached " + mp + r"\)",
        "replication",
        "partial_resync_not_possible",
    ),
    (
        r"Full resync from " + mp + r": (?P<replid>[^:]*):(?P<repl_offset__i>-?\d+)",
        "replication",
        "full_resync_from_master",
    ),
    (r"Successful partial resynchronization with " + mp + r"\.", "replication", "partial_resync_succeeded"),
    (r"Connection with " + mp + r" lost\.", "replication", "master_link_lost"),
    (r"Caching the disconnected " + mp + r" state\.", "replication", "master_state_cached"),
    (r"Discarding previously cached " + mp + r" state\.", "replication", "cached_master_discarded"),
    (r"Timeout connecting to the " + MP, "replication", "master_connect_timeout"),
    (r"Timeout receiving bulk data from " + MP, "replication", "sync_timeout"),
    (MP + r" timeout: no data nor PING received", "replication", "master_timeout", ["MASTER", "PRIMARY"]),
    (
        r"(?:REPLICAOF|SLAVE OF) (?P<master_host>.+):(?P<master_port__i>\d+) enabled \(user request"
        r"(?: from '(?P<client>.*)')?\)",
        "replication",
        "replicaof_enabled",
        ["REPLICAOF", "SLAVE"],
    ),
    (
        r"(?:REPLICAOF|SLAVE OF) would result into synchronization with the "
        + mp
        + r" we are already connected",
        "replication",
        "replicaof_noop",
        ["REPLICAOF", "SLAVE"],
    ),
    (
        r"Before turning into a replica, using my own " + mp + r" parameters to synthesize a cached " + mp,
        "replication",
        "cached_master_synthesized",
    ),
    (
        MP + r" MODE enabled \((?P<requested_by>user|failover) request(?: from '(?P<client>.*)')?\)",
        "replication",
        "master_mode_enabled",
        ["MASTER", "PRIMARY"],
    ),
    (
        r"Setting secondary replication ID to (?P<replid2>\w+), valid up to offset: (?P<repl_offset__i>-?\d+)\. "
        r"New replication ID is (?P<replid>\w+)",
        "replication",
        "replication_id_changed",
    ),
    (r"Retrying with SYNC\.\.\.", "replication", "sync_retry"),
    (
        Mp + r" replication ID changed to (?P<replid>\w+)",
        "replication",
        "master_replid_changed",
        ["Master", "Primary"],
    ),
    (
        Mp + r" does not support PSYNC or is in error state",
        "replication",
        "psync_unsupported",
        ["Master", "Primary"],
    ),
    (
        Mp + r" is currently unable to PSYNC but should be in the future: (?P<error>.*)",
        "replication",
        "psync_unavailable",
        ["Master", "Primary"],
    ),
    (r"Master is currently unable to PSYNC", "replication", "psync_unavailable"),
    # ---------------------------------------------------------------- replication, master side (§2.5)
    (
        Sr + r" (?P<replica>\S+) asks for synchronization",
        "replication",
        "replica_sync_requested",
        ["Replica", "Slave"],
    ),
    (r"Full resync requested by " + sr + r" (?P<replica>\S+)", "replication", "full_resync_requested"),
    (r"Partial resynchronization not accepted: (?P<reason>.*)", "replication", "partial_resync_rejected"),
    (
        r"Unable to partial resync with "
        + sr
        + r" (?P<replica>\S+) for lack of backlog \((?:Replica|Slave) request "
        r"was: (?P<requested_offset__i>-?\d+)\)",
        "replication",
        "partial_resync_rejected",
    ),
    (
        r"Partial resynchronization request from (?P<replica>\S+) accepted\. Sending (?P<backlog_bytes__i>\d+) "
        r"bytes of backlog starting from offset (?P<repl_offset__i>\d+)",
        "replication",
        "partial_resync_accepted",
    ),
    (
        r"Replication backlog created, my new replication IDs are '(?P<replid>\w*)' and '(?P<replid2>\w*)'",
        "replication",
        "backlog_created",
    ),
    (
        r"Replication backlog freed after (?P<seconds__i>\d+) seconds without connected replicas",
        "replication",
        "backlog_freed",
    ),
    (r"Starting BGSAVE for SYNC with target: (?P<target>.*)", "replication", "sync_bgsave_started"),
    (r"Delay next BGSAVE for diskless SYNC", "replication", "sync_bgsave_delayed"),
    (r"Waiting for end of BGSAVE for SYNC", "replication", "sync_bgsave_waiting"),
    (r"Can't BGSAVE for replication: (?P<error>.*)", "replication", "sync_bgsave_failed"),
    (r"Synchronization with " + sr + r" (?P<replica>\S+) succeeded", "replication", "replica_sync_succeeded"),
    (
        r"Streamed RDB transfer with " + sr + r" (?P<replica>\S+) succeeded",
        "replication",
        "replica_sync_succeeded",
    ),
    (
        r"Diskless rdb transfer, done reading from pipe, (?P<replicas__i>\d+) replicas still up",
        "replication",
        "diskless_transfer_done",
    ),
    (r"Connection with " + sr + r" (?P<replica>.+) lost\.", "replication", "replica_link_lost"),
    (
        r"Disconnecting timedout " + sr + r"(?: \((?P<phase>[^)]*)\))?: (?P<replica>.*)",
        "replication",
        "replica_timeout",
    ),
    (
        r"== CRITICAL == This (?P<side>\w+) is sending an error to its (?P<peer>\w+): '(?P<error>.*)' after "
        r"processing the command '(?P<command>.*)'",
        "replication",
        "replication_stream_error",
    ),
    (
        r"FAILOVER requested to (?:(?P<target_host>.+):(?P<target_port__i>\d+)|any replica)\.",
        "failover",
        "failover_requested",
    ),
    (
        r"Failover target (?P<target_host>.+):(?P<target_port__i>\d+) is synced, failing over\.",
        "failover",
        "failover_target_synced",
    ),
    (r"FAILOVER to (?P<target>\S+) aborted: (?P<reason>.*)", "failover", "failover_command_aborted"),
    (r"Failed to read response from the server: (?P<error>.*)", "replication", "sync_read_error"),
]
