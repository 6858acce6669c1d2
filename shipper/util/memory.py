"""How the agent asks glibc's allocator to treat its memory (a no-op on other C libraries).

Why: the agent allocates and frees its working set in batches (2,000 parsed events, their
canonical bytes, a 1.6 MB request body). With glibc's defaults, freeing a batch gives the top
of the heap back to the kernel and the next batch faults the same pages in again; on this VM
first touches are expensive: serialising a batch of events cost 3.2 µs per event instead of
1.3 µs (docs/performance-agent.md). Keeping up to 16 MB of freed heap for the next batch, and
returning everything free at start-up and when idle, gives both the speed and a small idle RSS.
"""

from __future__ import annotations

import ctypes
import gc
import logging

log = logging.getLogger(__name__)

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

#: freed memory at the top of the heap kept for the next batch, and the step the heap grows by
KEEP_BYTES = 16 << 20
#: allocations below this come from the heap, not a fresh mmap each time (request bodies)
MMAP_THRESHOLD = 8 << 20


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt  # noqa: B018 - glibc only
        libc.malloc_trim  # noqa: B018
        return libc
    except (OSError, AttributeError):
        return None


def tune_for_batches() -> bool:
    """Keep freed heap memory for the next batch (see the module docstring); False if not glibc."""
    libc = _libc()
    if libc is None:
        return False
    ok = all(libc.mallopt(p, v) == 1 for p, v in (
        (_M_TRIM_THRESHOLD, KEEP_BYTES), (_M_TOP_PAD, KEEP_BYTES), (_M_MMAP_THRESHOLD, MMAP_THRESHOLD)))
    if not ok:
        log.debug("mallopt refused a parameter; the allocator keeps its defaults")
    return ok


def release_free_memory() -> None:
    """Collect garbage and give every free page of the heap back to the kernel (start-up, idle)."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
