"""Giving free heap memory back to the kernel (start-up, idle); a no-op on other C libraries.

While the agent is busy, glibc keeps freed heap for the next batch (the allocator settings of
shipper/util/tuning.py); once it is idle, or start-up has freed its scratch memory,
:func:`release_free_memory` returns every free page, so an idle agent's RSS stays small.
"""

from __future__ import annotations

import ctypes
import gc


def _libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc_trim  # noqa: B018 - glibc only
        return libc
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Collect garbage and give every free page of the heap back to the kernel (start-up, idle)."""
    gc.collect()
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
