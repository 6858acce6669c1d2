"""Message -> (category, event, fields): what a Redis / Valkey line is about.

The table below is the catalogue of redis-log-formats.md §2 (format strings from the Redis
and Valkey sources, cited there), written as one regex per message with every wording a
supported version uses (``MASTER|PRIMARY``, ``SLAVE|REPLICA``, ``Redis|Valkey``...).

Why dispatch on the first word: trying a few hundred regexes per line would cost tens of
microseconds; a dict lookup on the message's first word narrows it to one to five rules,
then one ``re.match`` decides. Rules whose pattern cannot be keyed on a literal first word
(a message that starts with a node id, say) go to a short generic list tried last.

Group names carry their type: ``name__i`` becomes an ``int`` field ``name``, ``name__f`` a
``float``; any other group is kept as text. A group called ``client`` (a CLIENT LIST string)
also yields ``client_addr`` / ``client_name`` / ``client_user`` so "who asked" is searchable.

Pure and total: :func:`classify` never raises; ``None`` means "no rule knows this line"
(the caller turns that into ``category: other, event: unrecognized``).
"""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

MP = r"(?:MASTER|PRIMARY)"  # Valkey 8 says PRIMARY where Redis says MASTER
mp = r"(?:master|primary)"
Mp = r"(?:Master|Primary)"
SR = r"(?:SLAVE|REPLICA)"
sr = r"(?:slave|replica)"
Sr = r"(?:Slave|Replica)"
SERVER = r"(?P<server>Redis|Valkey|Sentinel|KeyDB|redis|valkey)"
NODE = r"(?P<node_id>[0-9a-f]{40})(?: \((?P<node_name>[^)]*)\))?"
SYNC = MP + " <-> " + SR + " sync"


class Rule(NamedTuple):
    regex: re.Pattern[str]
    category: str
    event: str
    #: the pattern's literal beginning: ``startswith`` rules out most candidates for ~40 ns
    prefix: str
    #: (group index, field name, converter) for each group; empty for a rule without groups
    groups: tuple[tuple[int, str, Any], ...]
    has_client: bool


def _literal_prefix(pattern: str) -> str:
    """The text every match starts with: the pattern up to its first regex construct."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in ".()?!*+[]{}|^$\\-#:'\"=<>/%":
            out.append(pattern[i + 1])
            i += 2
            continue
        if ch in "()[]{}?*+|^$.\\":
            # a quantifier applies to the previous character: it is not certain to be there
            if ch in "?*{" and out:
                out.pop()
            break
        out.append(ch)
        i += 1
    return "".join(out)


#: ``key=value`` at the start of the string or after a space; matched against ``" " + client`` so the
#: pattern starts with a literal (the regex engine then skips ahead with a fast search): same
#: matches as ``(?:^| )(id|addr|name|user)=(\S*)`` on the string itself, a third of the time
_CLIENT_KV = re.compile(r" (id|addr|name|user)=(\S*)")


def _client_fields(out: dict[str, Any]) -> None:
    """``client_id`` / ``client_addr`` / ``client_name`` / ``client_user`` from a CLIENT LIST string."""
    client = out.get("client")
    if client:
        for key, val in _CLIENT_KV.findall(" " + client):
            if key == "id":
                try:
                    out["client_id"] = int(val)
                except ValueError:
                    pass
            else:
                out["client_" + key] = val


def _make_rule(pattern: str, category: str, event: str) -> Rule:
    rx = re.compile(pattern, re.S | re.A)  # ASCII classes: ~10% faster, values are ASCII
    groups: list[tuple[int, str, Any]] = []
    index = {v: k for k, v in rx.groupindex.items()}
    for i in range(rx.groups):
        name = index.get(i + 1)
        if name is None:
            continue
        if name.endswith("__i"):
            groups.append((i, name[:-3], int))
        elif name.endswith("__f"):
            groups.append((i, name[:-3], float))
        else:
            groups.append((i, name, None))
    has_client = "client" in rx.groupindex
    return Rule(rx, category, event, _literal_prefix(pattern), tuple(groups), has_client)


# (pattern, category, event[, first words]) -- patterns are matched at the start of the message
# (re.match), so a trailing ``.*`` is only needed to capture text.
_SPEC: list[tuple[Any, ...]] = [
    # ---------------------------------------------------------------- startup (§1.5, §2.1)
    (r"oO0OoO0OoO0Oo " + SERVER + r" is starting oO0OoO0OoO0Oo", "startup", "server_starting"),
    (
        SERVER + r" version=(?P<version>[^,]*), bits=(?P<bits__i>\d+), commit=(?P<commit>[^,]*), "
        r"modified=(?P<modified__i>\d+), pid=(?P<server_pid__i>\d+), just started",
        "startup",
        "server_version",
        ["Redis", "Valkey", "KeyDB", "redis", "valkey"],
    ),
    (r"Server started, Redis version (?P<version>\S+)", "startup", "server_version"),
    (r"Configuration loaded", "startup", "configuration_loaded"),
    (r"Warning: no config file specified, using the default config", "startup", "no_config_file"),
    (r"Reading config from stdin", "startup", "configuration_from_stdin"),
    (r"monotonic clock: (?P<clock>.*)", "startup", "monotonic_clock"),
    (r"Running mode=(?P<mode>\w+), port=(?P<port__i>\d+)\.", "startup", "running_mode"),
    (
        SERVER + r" (?P<version>\S+) \((?P<git_sha1>[^/]*)/(?P<git_dirty>\d+)\) (?P<bits__i>\d+) bit, "
        r"(?P<mode>\w+) mode, port (?P<port__i>\d+), pid (?P<server_pid__i>\d+) ready to start\.",
        "startup",
        "running_mode",
        ["Redis", "Valkey"],
    ),
    (r"Server initialized", "startup", "server_initialized"),
    (r"DB loaded from disk: (?P<seconds__f>[\d.]+) seconds", "startup", "db_loaded"),
    (r"DB loaded from append only file: (?P<seconds__f>[\d.]+) seconds", "startup", "db_loaded"),
    (
        r"DB loaded from (?P<aof_file_type>base|incr) file (?P<file>.*): (?P<seconds__f>[\d.]+) seconds",
        "startup",
        "db_loaded",
    ),
    (r"Ready to accept connections(?: (?P<listener>\w+))?$", "startup", "ready_to_accept_connections"),
    (
        r"The server is now ready to accept connections (?:on port (?P<port__i>\d+)|at (?P<unix_socket>.*))",
        "startup",
        "ready_to_accept_connections",
    ),
    (r"Fatal error loading the DB", "startup", "fatal_error_loading_db"),
    (
        r"Warning: Could not create server (?P<listener>\w+) listening socket (?P<address>.+?): (?P<error>.*)",
        "startup",
        "listen_failed",
    ),
    (
        r"Could not create server (?P<listener>\w+) listening socket (?P<address>.+?): (?P<error>.*)",
        "startup",
        "listen_failed",
    ),
    (
        r"Failed listening on port (?P<port__i>\d+) \((?P<listener>\w+)\), aborting",
        "startup",
        "listen_failed",
    ),
    (r"Short read or OOM loading DB\. Unrecoverable error", "startup", "fatal_error_loading_db"),
    (r"Sentinel ID is (?P<sentinel_id>\S+)", "startup", "sentinel_id"),
    (
        r"Increased maximum number of open files to (?P<max_open_files__i>\d+) "
        r"\(it was originally set to (?P<original_open_files__i>\d+)\)",
        "startup",
        "open_files_limit_increased",
    ),
    (r"You requested maxclients of (?P<maxclients__i>\d+)", "startup", "maxclients_limited"),
    (r"Server can't set maximum open files to (?P<max_open_files__i>\d+)", "startup", "maxclients_limited"),
    (
        r"Current maximum open files is (?P<max_open_files__i>\d+)\. maxclients has been reduced to "
        r"(?P<maxclients__i>\d+)",
        "startup",
        "maxclients_limited",
    ),
    (
        r"Your current 'ulimit -n' of (?P<max_open_files__i>\d+) is not enough",
        "startup",
        "maxclients_limited",
    ),
    (r"Unable to obtain the current NOFILE limit", "startup", "maxclients_limited"),
    (r"WARNING overcommit_memory is set to 0!", "startup", "overcommit_memory_warning"),
    (r"WARNING Memory overcommit must be enabled!", "startup", "overcommit_memory_warning"),
    (
        r"WARNING [Yy]ou have Transparent Huge Pages \(THP\) support enabled",
        "startup",
        "transparent_huge_pages_warning",
    ),
    (
        r"WARNING: The TCP backlog setting of (?P<backlog__i>\d+) cannot be enforced because (?P<setting>\S+) "
        r"is set to the lower value of (?P<somaxconn__i>\d+)",
        "startup",
        "tcp_backlog_warning",
    ),
    (r"Static Module '(?P<module>[^']*)' successfully loaded", "startup", "module_loaded"),
    (r"Registering a new scripting engine: (?P<engine>\S+)", "startup", "scripting_engine_registered"),
    (r"Module '(?P<module>[^']*)' loaded from (?P<path>.*)", "startup", "module_loaded"),
    (r"Module (?P<module>\S+) unloaded", "shutdown", "module_unloaded"),
    (r"Server started", "startup", "server_started"),
    # ---------------------------------------------------------------- shutdown (§1.3, §1.5, §2.2)
    (r"Received (?P<signal>SIG[A-Z0-9]+),? scheduling shutdown", "shutdown", "shutdown_signal_received"),
    (r"Received shutdown signal", "shutdown", "shutdown_signal_received"),
    (
        r"(?P<signal>SIG[A-Z0-9]+) received, scheduling shut",
        "shutdown",
        "shutdown_signal_received",
        ["SIGTERM", "SIGINT"],
    ),
    (r"You insist\.\.\. exiting now\.", "shutdown", "forced_exit"),
    (r"Received SIGUSR1 in child, exiting now\.", "shutdown", "child_exit_on_sigusr1"),
    (
        r"User requested shutdown\.\.\.(?: \(user request from '(?P<client>.*)'\))?",
        "shutdown",
        "shutdown_requested",
    ),
    (r"Saving the final RDB snapshot before exiting\.", "shutdown", "saving_final_snapshot"),
    (r"Waiting for replicas before shutting down\.", "shutdown", "waiting_for_replicas"),
    (
        r"(?P<in_sync__i>\d+) of (?P<replicas__i>\d+) replicas are in sync when shutting down\.",
        "shutdown",
        "replicas_in_sync_at_shutdown",
    ),
    (r"There is a child saving an \.rdb\. Killing it!", "shutdown", "killing_save_child"),
    (r"There is a child rewriting the AOF\. Killing it!", "shutdown", "killing_save_child"),
    (r"Calling fsync\(\) on the AOF file\.", "shutdown", "aof_fsync_at_shutdown"),
    (r"Removing the pid file\.", "shutdown", "removing_pid_file"),
    (r"Removing the unix socket file\.", "shutdown", "removing_unix_socket"),
    (
        SERVER + r" is now ready to exit, bye bye\.\.\.",
        "shutdown",
        "ready_to_exit",
        ["Redis", "Valkey", "Sentinel", "KeyDB"],
    ),
    (r"Server exit now, bye bye\.\.\.", "shutdown", "ready_to_exit"),
    (r"Shutdown manually aborted\.", "shutdown", "shutdown_aborted"),
    (r"Errors trying to shut down the server", "shutdown", "shutdown_failed"),
    (r"SIGTERM received but errors trying to shut down the server", "shutdown", "shutdown_failed"),
    (r"Error trying to save the DB, can't exit\.", "shutdown", "shutdown_failed"),
    # ---------------------------------------------------------------- config (§2.3)
    (r"CONFIG REWRITE executed with success\.", "config", "config_rewrite"),
    (r"CONFIG REWRITE failed: (?P<error>.*)", "config", "config_rewrite_failed"),
    (
        r"Fatal error, can't open config file '(?P<file>[^']*)'(?:: (?P<error>.*))?",
        "config",
        "config_file_error",
    ),
    (
        r"Failed applying new configuration\. Possibly related to new (?P<option>\S+) setting",
        "config",
        "config_set_failed",
    ),
    (
        r"Failed restoring failed CONFIG SET command\. Error setting (?P<option>\S+) to '(?P<value>.*)': "
        r"(?P<error>.*)",
        "config",
        "config_set_failed",
    ),
    (
        r"WARNING: Changing databases number from (?P<databases__i>\d+) to 1 since we are in cluster mode",
        "config",
        "cluster_databases_changed",
    ),
    (r"Sentinel new configuration saved on disk", "config", "sentinel_config_saved"),
    (
        r"WARNING: Sentinel was not able to save the new configuration on disk!!!: (?P<error>.*)",
        "config",
        "sentinel_config_save_failed",
    ),
    (r"Sentinel needs config file on disk to save state\. Exiting", "config", "sentinel_config_missing"),
    (r"Failed to resolve hostname '(?P<hostname>[^']*)'", "config", "hostname_resolve_failed"),
    # ---------------------------------------------------------------- persistence (§2.4)
    (
        r"(?P<changes__i>\d+) changes in (?P<seconds__i>\d+) seconds\. Saving\.\.\.",
        "persistence",
        "save_point_reached",
    ),
    (r"Background saving started by pid (?P<child_pid__i>\d+)", "persistence", "bgsave_started"),
    (r"DB saved on disk", "persistence", "db_saved"),
    (
        r"Fork CoW for (?P<fork_kind>.+?): current (?P<cow_current_mb__i>\d+) MB, peak (?P<cow_peak_mb__i>\d+) MB, "
        r"average (?P<cow_average_mb__i>\d+) MB",
        "persistence",
        "fork_cow",
    ),
    (
        r"(?P<fork_kind>RDB|AOF rewrite|Module fork): (?P<cow_current_mb__i>\d+) MB of memory used by copy-on-write",
        "persistence",
        "fork_cow",
        ["RDB:", "AOF", "Module"],
    ),
    (r"Background saving terminated with success", "persistence", "bgsave_done"),
    (r"Background saving error", "persistence", "bgsave_failed"),
    (r"Background saving terminated by signal (?P<signal__i>\d+)", "persistence", "bgsave_failed"),
    (r"Can't save in background: fork: (?P<error>.*)", "persistence", "bgsave_fork_failed"),
    (
        r"Can't rewrite append only file in background: fork: (?P<error>.*)",
        "persistence",
        "aof_rewrite_fork_failed",
    ),
    (
        r"Write error (?:while )?sav(?:ing|e) DB (?:to|on) (?:the )?disk(?:\((?P<call>[^)]*)\))?: (?P<error>.*)",
        "persistence",
        "rdb_write_error",
    ),
    (
        r"Failed opening (?:the temp )?(?:RDB|\.rdb) (?:file )?(?P<file>\S+)(?: \(in server root dir (?P<dir>.*?)\))?"
        r" for saving: (?P<error>.*)",
        "persistence",
        "rdb_write_error",
    ),
    (
        r"Error moving temp DB file (?P<file>\S+) on the final destination (?P<destination>\S+)"
        r"(?: \(in server root dir (?P<dir>.*?)\))?: (?P<error>.*)",
        "persistence",
        "rdb_write_error",
    ),
    (r"Background RDB transfer started by pid (?P<child_pid__i>\d+)", "persistence", "rdb_transfer_started"),
    (r"Background RDB transfer terminated with success", "persistence", "rdb_transfer_done"),
    (r"Background transfer error", "persistence", "rdb_transfer_failed"),
    (r"Background transfer terminated by signal (?P<signal__i>\d+)", "persistence", "rdb_transfer_failed"),
    (
        r"Starting automatic rewriting of AOF on (?P<growth_percent__i>\d+)% growth",
        "persistence",
        "aof_rewrite_auto",
    ),
    (
        r"Background append only file rewriting started by pid (?P<child_pid__i>\d+)",
        "persistence",
        "aof_rewrite_started",
    ),
    (r"Background AOF rewrite terminated with success", "persistence", "aof_rewrite_child_done"),
    (r"Background AOF rewrite finished successfully", "persistence", "aof_rewrite_done"),
    (r"Background AOF rewrite terminated with error", "persistence", "aof_rewrite_failed"),
    (r"Background AOF rewrite terminated by signal (?P<signal__i>\d+)", "persistence", "aof_rewrite_failed"),
    (
        r"Background AOF rewrite signal handler took (?P<took_us__i>\d+)us",
        "persistence",
        "aof_rewrite_signal_handler",
    ),
    (
        r"Background AOF rewrite has repeatedly failed and triggered the limit, will retry in "
        r"(?P<retry_minutes__i>\d+) minutes",
        "persistence",
        "aof_rewrite_failed",
    ),
    (
        r"Residual parent diff successfully flushed to the rewritten AOF \((?P<diff_mb__f>[\d.]+) MB\)",
        "persistence",
        "aof_rewrite_diff_flushed",
    ),
    (
        r"Parent diff successfully flushed to the rewritten AOF \((?P<diff_bytes__i>\d+) bytes\)",
        "persistence",
        "aof_rewrite_diff_flushed",
    ),
    (
        r"Successfully renamed the temporary AOF (?P<aof_file_type>base|incr) file (?P<file>\S+) into "
        r"(?P<destination>\S+)",
        "persistence",
        "aof_file_renamed",
    ),
    (
        r"Successfully created the temporary AOF base file (?P<file>\S+)",
        "persistence",
        "aof_rewrite_base_created",
    ),
    (
        r"Creating AOF (?P<aof_file_type>\w+) file (?P<file>\S+) on (?P<reason>.*)",
        "persistence",
        "aof_file_created",
    ),
    (r"Removing the history file (?P<file>\S+) in the background", "persistence", "aof_history_removed"),
    (
        r"Removing the temp incr aof file (?P<file>\S+) in the background",
        "persistence",
        "aof_history_removed",
    ),
    (
        r"Asynchronous AOF fsync is taking too long \(disk is busy\?\)",
        "persistence",
        "aof_fsync_slow",
    ),
    (r"Error writing to the AOF file: (?P<error>.*)", "persistence", "aof_write_error"),
    (
        r"Short write while writing to the AOF file: \(nwritten=(?P<nwritten__i>-?\d+), "
        r"expected=(?P<expected__i>\d+)\)",
        "persistence",
        "aof_write_error",
    ),
    (r"AOF write error looks solved, \w+ can write again\.", "persistence", "aof_write_recovered"),
    (
        r"Can't persist AOF for fsync error when the AOF fsync policy is 'always': (?P<error>.*?)\. Exiting",
        "persistence",
        "aof_fsync_error",
    ),
    (r"!!! Warning: short read while loading the AOF file (?P<file>.*?)!!!", "persistence", "aof_short_read"),
    (
        r"!!! Truncating the AOF (?:(?P<file>\S+) )?at offset (?P<aof_offset__i>\d+) !!!",
        "persistence",
        "aof_truncated",
    ),
    (
        r"AOF (?:(?P<file>\S+) )?loaded anyway because aof-load-truncated is enabled",
        "persistence",
        "aof_loaded_truncated",
    ),
    (r"Bad file format reading the append only file(?: (?P<file>[^:]+))?:", "persistence", "aof_bad_format"),
    (
        r"Unexpected end of file reading the append only file(?: (?P<file>\S+?))?[.:]",
        "persistence",
        "aof_unexpected_eof",
    ),
    (r"Reading RDB (?:base file )?on AOF loading", "persistence", "aof_loading"),
    (r"The AOF directory (?P<dir>.*) doesn't exist", "persistence", "aof_dir_missing"),
    (r"Reading RDB preamble from AOF file", "persistence", "aof_loading"),
    (r"Reading the remaining AOF tail", "persistence", "aof_loading"),
    (r"RDB has an AOF tail", "persistence", "aof_loading"),
    (r"RDB is base AOF", "persistence", "aof_loading"),
    (
        r"Opening AOF (?P<aof_file_type>\w+) file (?P<file>\S+) on (?P<reason>.*)",
        "persistence",
        "aof_file_opened",
    ),
    (r"AOF rewrite child asks to stop sending diffs", "persistence", "aof_rewrite_diff_stop"),
    (r"Parent agreed to stop sending diffs\. Finalizing AOF", "persistence", "aof_rewrite_diff_stop"),
    (
        r"Concatenating (?P<diff_mb__f>[\d.]+) MB of AOF diff received from parent",
        "persistence",
        "aof_rewrite_diff_flushed",
    ),
    (r"SYNC append only file rewrite performed", "persistence", "aof_rewrite_base_created"),
    (r"DB reloaded by DEBUG RELOAD", "persistence", "debug_reload"),
    (
        r"Loading RDB produced by (?:(?P<rdb_server>\w+) )?version (?P<rdb_version>\S+)",
        "persistence",
        "rdb_loading",
    ),
    (r"Cleaning slot migration log in anticipation of a load operation", "persistence", "rdb_loading"),
    (r"RDB age (?P<rdb_age_seconds__i>-?\d+) seconds", "persistence", "rdb_age"),
    (r"RDB memory usage when created (?P<rdb_memory_mb__f>[\d.]+) Mb", "persistence", "rdb_memory_usage"),
    (
        r"Done loading RDB, keys loaded: (?P<keys_loaded__i>\d+), keys expired: (?P<keys_expired__i>\d+)"
        r"(?:, empty keys skipped: (?P<empty_keys_skipped__i>\d+))?",
        "persistence",
        "rdb_loaded",
    ),
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
    # ---------------------------------------------------------------- Sentinel lines that are not events (§2.6)
    (
        r"Executing user requested FAILOVER of '(?P<master_name>[^']*)'",
        "failover",
        "sentinel_failover_requested",
    ),
    (
        r"Next failover delay: I will not start a failover before (?P<until>.*)",
        "failover",
        "sentinel_failover_delayed",
    ),
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
    # ---------------------------------------------------------------- security (§2.9)
    (
        r"Possible SECURITY ATTACK detected\..*?Connection (?:from (?P<client_ip>.+):(?P<client_port__i>\d+) )?"
        r"aborted\.",
        "security",
        "possible_security_attack",
    ),
    (r"Possible SECURITY ATTACK detected", "security", "possible_security_attack"),
    (
        r"Error loading ACL rule '(?P<rule>.*)' for the user named '(?P<user>.*)': (?P<error>.*)",
        "security",
        "acl_rule_error",
    ),
    (r"Critical error while loading ACLs\. Exiting", "security", "acl_load_failed"),
    (r"Aborting \w+ startup because of ACL errors: (?P<error>.*)", "security", "acl_load_failed"),
    (r"The user '(?P<user>.*)' is disabled \(there is no 'on' modifier", "security", "acl_user_disabled"),
    (r"Spaces not allowed in ACL usernames", "security", "acl_rule_error"),
    (
        r"(?:Opening temp|Writing|Renaming) ACL file for ACL SAVE: (?P<error>.*)",
        "security",
        "acl_save_failed",
        ["Opening", "Writing", "Renaming"],
    ),
    (r"Error in user declaration '(?P<rule>.*)': (?P<error>.*)", "security", "acl_rule_error"),
    # ---------------------------------------------------------------- memory (§2.8)
    (r"Out Of Memory allocating (?P<bytes__i>\d+) bytes!", "memory", "out_of_memory"),
    (
        r"WARNING: the new maxmemory value set via CONFIG SET \((?P<maxmemory__i>\d+)\) is smaller than the current "
        r"memory usage \((?P<used_memory__i>\d+)\)",
        "memory",
        "maxmemory_below_usage",
    ),
    (
        r"WARNING: You specified a maxmemory value that is less than 1MB \(current value is (?P<maxmemory__i>\d+) "
        r"bytes\)",
        "memory",
        "maxmemory_too_small",
    ),
    (r"Warning: 32 bit instance detected but no memory limit set", "memory", "maxmemory_32bit_default"),
    (r"Evicting client: (?P<client>.*)", "memory", "client_evicted"),
    (r"Over client maxmemory after evicting all evictable clients", "memory", "client_maxmemory_exceeded"),
    (
        r"Client (?P<client>.*) (?:scheduled to be closed ASAP|closed) for overcoming of output buffer limits\.",
        "memory",
        "output_buffer_limit_reached",
    ),
    (
        r"Closing client that reached max query buffer length: (?P<client>.*?)(?: \(qbuf initial bytes: "
        r"(?P<qbuf_initial>.*)\))?$",
        "memory",
        "query_buffer_limit_reached",
    ),
    # ---------------------------------------------------------------- clients (§2.10)
    (r"Accepted connection to (?P<unix_socket>.*)", "connection", "client_accepted"),
    (r"Accepted (?P<client_addr>.+:\d+)$", "connection", "client_accepted"),
    (r"Client closed connection(?: (?P<client>.*))?", "connection", "client_closed"),
    (r"Closing idle client", "connection", "client_idle_closed"),
    (r"Reading from client: (?P<error>.*)", "connection", "client_read_error"),
    (r"Error writing to client: (?P<error>.*)", "connection", "client_write_error"),
    (
        r"Protocol error \((?P<error>.*?)\) from client: (?P<client>.*?)(?:\. (?P<detail>.*))?$",
        "connection",
        "protocol_error",
    ),
    (r"Error accepting a client connection: (?P<error>.*)", "connection", "accept_error"),
    (
        r"Error registering fd event for the new client: (?P<error>.*)",
        "connection",
        "accept_error",
    ),
    (r"WARNING: Receiving inline protocol from " + mp, "replication", "replication_stream_error"),
    (
        r"Slow script detected: still in execution after (?P<elapsed_ms__i>\d+) milliseconds",
        "latency",
        "slow_script",
    ),
    (
        r"Lua slow script detected: still in execution after (?P<elapsed_ms__i>\d+) milliseconds",
        "latency",
        "slow_script",
    ),
    (
        r"DB (?P<db__i>\d+): (?P<keys__i>\d+) keys \((?P<volatile__i>\d+) volatile\) in (?P<slots__i>\d+) slots HT\.",
        "other",
        "db_stats",
    ),
    (
        r"(?P<clients__i>\d+) clients connected \((?P<replicas__i>\d+) (?:replicas|slaves)\), "
        r"(?P<used_memory__i>\d+) bytes in use",
        "other",
        "clients_stats",
    ),
    (
        r"Total: (?P<clients__i>\d+) clients connected \((?P<replicas__i>\d+) (?:replicas|slaves)\), "
        r"(?P<used_memory__i>\d+)(?: \([^)]*\))? bytes in use",
        "other",
        "clients_stats",
    ),
    # ---------------------------------------------------------------- crash lines outside a report (§1.6)
    (
        r"(?:Redis|Valkey|valkey|redis) (?P<version>\S+) crashed by signal: (?P<signal__i>\d+)"
        r"(?:, si_code: (?P<si_code__i>-?\d+))?",
        "crash",
        "crashed_by_signal",
        ["Redis", "Valkey", "valkey", "redis"],
    ),
    (r"=== (?:RECURSIVE )?ASSERTION FAILED ===", "crash", "assertion_failed"),
    (r"Guru Meditation: (?P<reason>.*)", "crash", "panic"),
]

# Messages whose first word is not a fixed literal: tried after the keyed rules fail.
_GENERIC_SPEC: list[tuple[str, str, str]] = [
    (
        r"(?P<voter_id>\S+) voted for (?P<leader_id>\S+) (?P<epoch__i>\d+)$",
        "failover",
        "sentinel_voted",
    ),
    (
        r"\s+(?:Redis|Valkey|valkey) (?P<version>\S+) crashed by signal: (?P<signal__i>\d+)",
        "crash",
        "crashed_by_signal",
    ),
    (r"\s*Failed assertion: (?P<assertion>.*)", "crash", "assertion_failed"),
]

_META = set("()[]{}?*+|^$\\.")


def _first_words(pattern: str) -> list[str] | None:
    """The literal first word of a pattern (``<num>`` for a leading number), or ``None``."""
    head = pattern.split(" ", 1)[0]
    if re.fullmatch(r"\(\?P<\w+>\\d\+\)", head):
        return ["<num>"]
    if not head or any(ch in _META for ch in re.sub(r"\\[.()?!]", "", head)):
        return None
    return [re.sub(r"\\(.)", r"\1", head)]


_ALT_HEAD = re.compile(r"\((?:\?:|\?P<\w+>)([\w|]+)\)")


def _build() -> tuple[dict[str, list[Rule]], list[Rule]]:
    by_word: dict[str, list[Rule]] = {}
    generic: list[Rule] = []
    for spec in _SPEC:
        pattern, category, event = spec[0], spec[1], spec[2]
        rule = _make_rule(pattern, category, event)
        words = spec[3] if len(spec) > 3 else _first_words(pattern)
        if words is None:
            raise ValueError(f"catalogue pattern has no literal first word, give it one: {pattern!r}")
        alt = _ALT_HEAD.match(pattern)
        for w in words:
            r = rule
            if alt is not None and w in alt[1].split("|"):
                r = rule._replace(prefix=w + _literal_prefix(pattern[alt.end() :]))
            elif not rule.prefix.startswith(w):
                r = rule._replace(prefix="")
            by_word.setdefault(w, []).append(r)
    for pattern, category, event in _GENERIC_SPEC:
        generic.append(_make_rule(pattern, category, event))
    return by_word, generic


_BY_WORD, _GENERIC = _build()


@functools.cache
def _parse_tree(pattern: str) -> list[Any]:
    """The top-level items of ``pattern`` as the ``re`` module parses it (its private parser: the
    callers catch any error and then only leave out an optimisation). Cached: a rule is looked at
    several times at import and a pattern can be in several buckets."""
    from re import _parser as sre_parser  # type: ignore[attr-defined]

    return list(sre_parser.parse(pattern, re.S | re.A))


def _required_literal(pattern: str, any_repeat: bool = False) -> str:
    """The longest run of literal characters every match of ``pattern`` must contain, when a
    ``.*`` / ``.+`` (or, with ``any_repeat``, any unbounded repeat) comes before it; else ``""``.

    Why: ``Client (?P<client>.*) (?:scheduled ...|closed) for overcoming of output buffer limits``
    is a candidate for every "Client closed connection <CLIENT LIST>" line and takes ~2.5 µs to
    fail by backtracking over the whole CLIENT LIST; ``" for overcoming of output buffer limits."
    in message`` says the same in ~0.1 µs. Sound by construction: the items of the pattern's
    top-level sequence must all match, in order, so a run of consecutive top-level literals is a
    substring of any match (no IGNORECASE anywhere in the catalogue)."""
    try:
        from re import _constants as sre_constants  # type: ignore[attr-defined]
        items = _parse_tree(pattern)
    except Exception:  # another Python's internals: no guard, same results
        return ""
    literal, repeats = sre_constants.LITERAL, (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT)
    unbounded, dot = sre_constants.MAXREPEAT, [(sre_constants.ANY, None)]

    def scans(item: Any) -> bool:
        op, av = item
        if op in repeats:
            # ``.*`` may backtrack over the whole rest of the message before failing
            return bool(av[1] is unbounded and (any_repeat or list(av[2]) == dot))
        if op is sre_constants.SUBPATTERN:
            return any(scans(x) for x in av[-1])
        if op is sre_constants.BRANCH:
            return any(scans(x) for branch in av[1] for x in branch)
        return False

    best, run, scanned = "", [], False
    for item in [*items, (None, None)]:
        if item[0] is literal:
            run.append(chr(item[1]))
            continue
        if scanned and len(run) > len(best):
            best = "".join(run)
        run = []
        if item[0] is not None and scans(item):
            scanned = True
    return best


def _guard(pattern: str, any_repeat: bool = False) -> str:
    """The substring test to put before a rule's match, or ``""`` for none: :func:`_required_literal`
    when it finds a run worth testing. The test costs ~0.1 µs on a line the rule does match, so only
    rules that can fail slowly get it (and the generic rules, which are tried on every message no
    keyed rule knows)."""
    need = _required_literal(pattern, any_repeat)
    return need if len(need) >= 4 else ""


def _fields(m: re.Match[str], rule: Rule) -> dict[str, Any]:
    out: dict[str, Any] = {}
    vals = m.groups()
    for i, name, conv in rule.groups:
        v = vals[i]
        if v is None:
            continue
        if conv is None:
            out[name] = v
        else:
            try:
                out[name] = conv(v)
            except ValueError:
                out[name] = v
    if rule.has_client:
        _client_fields(out)
    return out


def _always_set(pattern: str) -> set[int]:
    """Numbers of the groups that take part in every match of ``pattern``: the groups of its
    top-level sequence and the groups nested only in such groups (not in an alternative, an
    optional part, a repeat or a lookaround). Conservative: what it cannot tell is left out (and
    then read with an ``is not None`` test as before)."""
    try:
        from re import _constants as sre_constants  # type: ignore[attr-defined]
        items = _parse_tree(pattern)
    except Exception:  # another Python's internals: every group tested, same results
        return set()
    found: set[int] = set()

    def walk(seq: Any) -> None:
        for op, av in seq:
            if op is sre_constants.SUBPATTERN:
                if av[0]:
                    found.add(av[0])
                walk(av[-1])

    walk(items)
    return found


def _extract_source(rule: Rule, indent: str, rule_name: str) -> list[str]:
    """Source lines that build ``out``, the fields of match ``m``: :func:`_fields` unrolled for one
    rule, same dict, same key order.

    When every group of the rule takes part in every match (:func:`_always_set`), ``out`` is one
    dict display (``{'port': int(g[1]), ...}``): no ``None`` tests, one build; a conversion that
    fails (an ``int`` of more than 4,300 digits) sends the match to :func:`_fields`, which keeps the
    text of that group (``rule_name``: the rule, in the generated code's globals). Otherwise one ``if``
    per group. A one-group rule reads ``m[i]`` instead of
    building the tuple of every group."""
    groups = rule.groups
    one = len(groups) == 1
    src = [] if one else [f"{indent}g = m.groups()"]
    every = _always_set(rule.regex.pattern)
    if all(i + 1 in every for i, _n, _c in groups):
        items = []
        for i, name, conv in groups:
            v = f"m[{i + 1}]" if one else f"g[{i}]"
            items.append(f"{name!r}: {v}" if conv is None else f"{name!r}: {conv.__name__}({v})")
        display = "{" + ", ".join(items) + "}"
        if any(conv is not None for _i, _n, conv in groups):
            src += [f"{indent}try:", f"{indent}    out = {display}", f"{indent}except ValueError:"]
            src.append(f"{indent}    out = _fields(m, {rule_name})")
            src.append(f"{indent}    return {rule.category!r}, {rule.event!r}, out")
        else:
            src.append(f"{indent}out = {display}")
    else:
        src.append(f"{indent}out = {{}}")
        for i, name, conv in groups:
            src.append(f"{indent}v = m[{i + 1}]" if one else f"{indent}v = g[{i}]")
            src.append(f"{indent}if v is not None:")
            if conv is None:
                src.append(f"{indent}    out[{name!r}] = v")
            else:
                src.append(f"{indent}    try:")
                src.append(f"{indent}        out[{name!r}] = {conv.__name__}(v)")
                src.append(f"{indent}    except ValueError:")
                src.append(f"{indent}        out[{name!r}] = v")
    if rule.has_client:
        src.append(f"{indent}_client_fields(out)")
    return src


#: Valkey 8/9 prefixes some replication messages with where they come from; the rest of the
#: message is an ordinary one (``Replica bio thread: PRIMARY <-> REPLICA sync: receiving ...``).
_WRAPPERS = (("Replica bio thread: ", "thread", "bio"), ("Dual channel replication: ", "channel", "dual"))

#: messages that matched a rule without groups ("Server initialized", "DB saved on disk"...) are
#: the same text every time: remembered, they cost one dict lookup instead of a regex match
_CONSTANT: dict[str, tuple[str, str]] = {}
_CONSTANT_MAX = 4096

def _pure_literal(pattern: str) -> str | None:
    """The text a pattern matches when it is nothing but literal characters, else ``None``: such a
    rule's ``re.match`` is ``message.startswith(text)``."""
    try:
        from re import _constants as sre_constants  # type: ignore[attr-defined]
        items = _parse_tree(pattern)
    except Exception:  # another Python's internals: the regex, same results
        return None
    if items and all(op is sre_constants.LITERAL for op, _av in items):
        return "".join(chr(av) for _op, av in items)
    return None


def _rules_source(fname: str, word: str | None, rules: list[Rule], namespace: dict[str, Any]) -> list[str]:
    """The source of one function ``fname(message) -> (category, event, fields) | None`` doing
    everything :func:`classify` does for a message whose first word is ``word``; ``word`` ``None``
    gives the generic list (the rules without a literal first word, tried when no keyed rule
    matched). The objects it uses (compiled regexes, rules) go into ``namespace`` under names
    derived from ``fname``.

    The steps, in this order (the order of the interpreted loop this replaces):

    1. the memo of constant messages, ``_CONSTANT`` (only where the word has a rule without groups:
       nothing else is ever remembered under it);
    2. the wrapper of this word, if any (``Replica bio thread: ``...): the rest is classified and
       the wrapper becomes a field;
    3. the word's rules in catalogue order: a rule's ``prefix`` test, its substring guard, its match,
       its fields (:func:`_extract_source`); a keyed rule without groups remembers the message in
       ``_CONSTANT``;
    4. the generic rules.

    The prefix and guard tests only skip a regex that would fail, so where they are left out the
    results are the same: the prefix test goes where the word implies it and on a bucket's last rule
    (it saves a failing match but costs as much on every line the rule matches, and when that rule
    fails the generic rules run anyway); the guard goes on every rule but a bucket's last (the guard
    of "Fork CoW for ..." would only add its cost to the lines it matches) and stays on the generic
    ones. A rule that is only literal text is a ``startswith``, no regex at all.

    Why generated code: the loop paid, per rule tried, a tuple unpacking, a call through a variable
    and, on a match, a call to build the fields, plus per message a memo lookup, a wrapper test and a
    second dict lookup; here each of those is a constant in straight-line code, and a message costs
    one dict lookup and one call. ``tests/test_parse_catalogue.py`` checks the result against the
    plain loop over the rules (:func:`_fields`) for every message of the sample logs."""
    src = [f"def {fname}(message):"]
    if word is not None and any(not r.groups for r in rules):
        src.append("    hit = _CONSTANT.get(message)")
        src.append("    if hit is not None:")
        src.append("        return hit[0], hit[1], {}")
    for prefix, key, value in _WRAPPERS:
        if word is not None and prefix.split(" ", 1)[0] == word:
            src.append(f"    if message.startswith({prefix!r}):")
            src.append(f"        res = classify(message[{len(prefix)}:])")
            src.append("        if res is not None:")
            src.append(f"            res[2][{key!r}] = {value!r}")
            src.append("            return res")
    for i, r in enumerate(rules):
        last = i == len(rules) - 1 and word is not None
        literal = None if r.groups else _pure_literal(r.regex.pattern)
        tests = []
        if literal is not None:
            tests.append(f"message.startswith({literal!r})")
        else:
            if r.prefix and not last and not (word is not None and word.startswith(r.prefix)):
                tests.append(f"message.startswith({r.prefix!r})")
            need = "" if last else _guard(r.regex.pattern, word is None)
            if need:
                tests.append(f"{need!r} in message")
        ind = "    "
        if tests:
            src.append(f"{ind}if {' and '.join(tests)}:")
            ind += "    "
        if literal is None:
            rx = f"{fname}_match{i}"
            namespace[rx] = r.regex.match
            src.append(f"{ind}m = {rx}(message)")
            src.append(f"{ind}if m is not None:")
            ind += "    "
        if r.groups:
            rule_name = f"{fname}_rule{i}"
            namespace[rule_name] = r
            src += _extract_source(r, ind, rule_name)
            src.append(f"{ind}return {r.category!r}, {r.event!r}, out")
        else:
            if word is not None:
                src.append(f"{ind}if len(_CONSTANT) >= {_CONSTANT_MAX}:")
                src.append(f"{ind}    _CONSTANT.clear()")
                src.append(f"{ind}_CONSTANT[message] = {(r.category, r.event)!r}")
            src.append(f"{ind}return {r.category!r}, {r.event!r}, {{}}")
    src.append("    return None" if word is None else "    return _generic(message)")
    return src


def _compile_catalogue() -> tuple[Any, dict[str, Any]]:
    """Every first word's function and the generic one (:func:`_rules_source`), compiled as ONE
    module (one ``compile`` keeps the import cheap); ``classify`` is added to its globals below."""
    namespace: dict[str, Any] = {"_client_fields": _client_fields, "_CONSTANT": _CONSTANT, "_fields": _fields}
    words = list(dict.fromkeys([*_BY_WORD, *(p.split(" ", 1)[0] for p, _k, _v in _WRAPPERS)]))
    src = _rules_source("_generic", None, _GENERIC, namespace)
    names = {}
    for k, w in enumerate(words):
        names[w] = f"_word{k}"
        src += _rules_source(names[w], w, _BY_WORD.get(w, []), namespace)
    exec(compile("\n".join(src), "<catalogue rules>", "exec"), namespace)  # noqa: S102
    return namespace, {w: namespace[n] for w, n in names.items()}


_NAMESPACE, _BUCKETS = _compile_catalogue()
#: the rules without a literal first word (all guarded)
_generic = _NAMESPACE["_generic"]
#: a first word that no rule names but that starts with a digit: the rules of a leading number
_NUM = _BUCKETS.get("<num>", _generic)


def classify(message: str) -> tuple[str, str, dict[str, Any]] | None:
    """(category, event, fields) of a Redis/Valkey message, or ``None`` if no rule knows it: the
    compiled function of its first word (memo, wrapper, rules, generic rules), else the rules of a
    leading number or the generic rules."""
    sp = message.find(" ")
    word = message if sp < 0 else message[:sp]
    rules = _BUCKETS.get(word)
    if rules is None:
        return _NUM(message) if word[:1].isdigit() else _generic(message)
    return rules(message)


_NAMESPACE["classify"] = classify  # for the wrappers


def known_events() -> list[tuple[str, str]]:
    """Every (category, event) the catalogue can produce, for docs and tests."""
    seen: dict[tuple[str, str], None] = {}
    for spec in _SPEC:
        seen[(spec[1], spec[2])] = None
    for _p, c, e in _GENERIC_SPEC:
        seen[(c, e)] = None
    return list(seen)
