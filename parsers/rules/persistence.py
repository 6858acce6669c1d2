"""RDB, AOF and fork messages (redis-log-formats.md §2.4).

Rule data only (the format is in :mod:`parsers.rules`); :mod:`parsers.catalogue_build` compiles it.
"""

from __future__ import annotations

from typing import Any

RULES: list[tuple[Any, ...]] = [
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
]
