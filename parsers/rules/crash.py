"""Crash lines outside a crash report (redis-log-formats.md §1.6).

Rule data only (the format is in :mod:`parsers.rules`); :mod:`parsers.catalogue_build` compiles it.
"""

from __future__ import annotations

from typing import Any

RULES: list[tuple[Any, ...]] = [
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

#: rules without a literal first word, tried after every keyed rule failed
GENERIC: list[tuple[str, str, str]] = [
    (
        r"\s+(?:Redis|Valkey|valkey) (?P<version>\S+) crashed by signal: (?P<signal__i>\d+)",
        "crash",
        "crashed_by_signal",
    ),
    (r"\s*Failed assertion: (?P<assertion>.*)", "crash", "assertion_failed"),
]
