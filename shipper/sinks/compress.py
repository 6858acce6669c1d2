"""gzip for request bodies: ISA-L's deflate when it is installed, the standard zlib otherwise.

Why: compressing a 1.6 MB Loki push body with zlib level 1 costs ~4.7 ms (1.8 µs per event),
with ISA-L ~1 ms and a slightly smaller output (measured in docs/performance-agent.md); the
bytes on the wire are the same gzip format, which Loki and Elasticsearch decode as ever.
"""

from __future__ import annotations

import zlib

from ..util.deflate import module as _deflate

#: the fastest level: the point is fewer bytes on the wire, not the smallest possible body
GZIP_LEVEL = 1


def gzip_body(payload: bytes, level: int = GZIP_LEVEL) -> bytes:
    """``payload`` as one gzip member (``Content-Encoding: gzip``)."""
    comp = _deflate.compressobj(level, zlib.DEFLATED, 31)
    return comp.compress(payload) + comp.flush()

