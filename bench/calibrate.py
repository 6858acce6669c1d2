"""The machine's per-core speed, printed beside every benchmark result.

This project's VM is shared: the same code ran 10-20 % slower half an hour apart. A result is
only comparable with another measured at about the same speed, so the benches print this.
"""

from __future__ import annotations

import timeit


def calibration_ns() -> float:
    """Nanoseconds per empty Python function call, best of 3 x 1,000,000 (lower is faster)."""

    def noop() -> None:
        pass

    return min(timeit.repeat(noop, number=1_000_000, repeat=3)) / 1_000_000 * 1e9
