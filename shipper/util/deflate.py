"""Deflate, by ISA-L when its wheel is installed, by the standard zlib otherwise: one choice for
the sinks' gzip bodies (shipper/sinks/compress.py) and the spool's rows
(shipper/pipeline/spool_rows.py).

Why ISA-L: on the project's VM its level 1 compresses Redis log events at ~880 MB/s against
zlib's ~180 MB/s, to the same format (a 256 KiB spool row: 0.29 against 1.45 ms, ratio 5.6
against 5.3); both inflate at the same speed. ``FAST`` says which one this process has, for
the spool, which compresses only when it is cheap.
"""

from __future__ import annotations

import zlib

try:
    from isal import isal_zlib as module
except ImportError:  # pragma: no cover - platforms without an isal wheel
    module = zlib  # type: ignore[assignment]

#: whether deflate is ISA-L's (fast) and not zlib's
FAST = module is not zlib
