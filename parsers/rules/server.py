"""Startup, shutdown and configuration messages (redis-log-formats.md §1.5, §2.1-§2.3).

Rule data only (the format is in :mod:`parsers.rules`); :mod:`parsers.catalogue_build` compiles it.
"""

from __future__ import annotations

from typing import Any

from parsers.rules.wording import SERVER

RULES: list[tuple[Any, ...]] = [
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
    (r"Missing implement of connection type (?P<connection_type>\S+)", "startup", "connection_type_unavailable"),
]
