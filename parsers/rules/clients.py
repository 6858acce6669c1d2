"""Memory limits, client connections and periodic statistics (redis-log-formats.md §2.8, §2.10).

Rule data only (the format is in :mod:`parsers.rules`); :mod:`parsers.catalogue_build` compiles it.
"""

from __future__ import annotations

from typing import Any

from parsers.rules.wording import mp

RULES: list[tuple[Any, ...]] = [
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
]
