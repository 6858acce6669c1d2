"""Sentinel lines that are not ``+event`` messages (redis-log-formats.md §2.6); the events
themselves are parsed by :mod:`parsers.sentinel`.

Rule data only (the format is in :mod:`parsers.rules`); :mod:`parsers.catalogue_build` compiles it.
"""

from __future__ import annotations

from typing import Any

RULES: list[tuple[Any, ...]] = [
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
]

#: rules without a literal first word, tried after every keyed rule failed
GENERIC: list[tuple[str, str, str]] = [
    (
        r"(?P<voter_id>\S+) voted for (?P<leader_id>\S+) (?P<epoch__i>\d+)$",
        "failover",
        "sentinel_voted",
    ),
]
