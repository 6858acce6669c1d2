"""How the agent's processes tune the interpreter and the C allocator: every setting in one place,
each with the measurement behind it.

The agent allocates and frees its working set in batches (2,000 parsed events, their canonical
bytes, a ~1 MB request body) and keeps few long-lived objects. Python's and glibc's defaults are
made for the opposite, so ``redis-shipper run`` (:func:`tune_agent`) and the offload process
(:func:`tune_offload`, shipper/pipeline/offload.py) change four things:

``gc.freeze()`` after start-up (the agent), ``gc.set_threshold(50_000, 20, 100)`` (both processes)
    The agent keeps few long-lived objects but makes many short ones per event, which reference
    counting frees anyway: with the default threshold (700 net allocations) the young
    collection ran many times per batch, and each full collection scanned again what start-up
    allocated (config models, the parser's catalogue), which freezing moves out of its reach.
    Measured in bench/agent_bench.py: -5 % CPU per event; into the real Loki,
    ``bench/promtail_compare.py --only backlog --pairs 3 --baseline-tuning=-gc``: 18.1 against
    19.0 µs of CPU per line without (0.95x, range 0.88-0.96x over the 3 pairs).

``sys.setswitchinterval(0.0005)`` (the agent only)
    The spool thread releases the GIL around every SQLite step and fsync; taking it back waits
    until the thread holding it (the follower parsing) reaches the switch interval, 5 ms by
    default. 0.5 ms shortens those waits: +2-8 % lines per second end to end over 5 interleaved
    pairs against 5 ms and 1 ms (bench/agent_bench.py); 0.2 ms was no better. The offload
    process has one thread: nothing to switch.

glibc ``mallopt``: keep 16 MB of freed heap, mmap only from 8 MB (both processes)
    With glibc's defaults, freeing a batch gives the top of the heap back to the kernel and the
    next batch faults the same pages in again; on the project's VM first touches are expensive:
    serialising a batch of events cost 3.2 µs per event instead of 1.3 µs
    (docs/performance-agent.md). Request bodies under 8 MB come from the heap, not a fresh mmap
    each time. :func:`shipper.util.memory.release_free_memory` gives everything free back at
    start-up and when the agent goes idle, so the idle RSS stays small. What it costs at the peak
    of a catch-up (agent + offload process, ~600k events spooled): ~4 MB, 116.2 against 112.0 MB
    without (docs/performance-footprint.md). A no-op on another C library.

``REDIS_SHIPPER_TUNING=off`` skips all of them (both processes: the offload process inherits the
environment), and ``REDIS_SHIPPER_TUNING=-gc,-switch,-malloc`` any of them: for measuring a setting
against its absence in the same run (``bench/promtail_compare.py --baseline-tuning``), never needed in
production.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import sys

log = logging.getLogger(__name__)

#: collect the youngest generation after this many net allocations (Python's default: 700)
GC_THRESHOLDS = (50_000, 20, 100)
#: seconds a thread may hold the GIL while another waits for it (Python's default: 0.005)
SWITCH_INTERVAL = 0.0005
#: freed memory at the top of the heap kept for the next batch, and the step the heap grows by
KEEP_BYTES = 16 << 20
#: allocations below this come from the heap, not a fresh mmap each time (request bodies)
MMAP_THRESHOLD = 8 << 20

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3


def _enabled(name: str) -> bool:
    """Whether the setting ``name`` (gc, switch, malloc) is on (see the module docstring)."""
    spec = os.environ.get("REDIS_SHIPPER_TUNING", "").replace(" ", "")
    return spec != "off" and f"-{name}" not in spec.split(",")


def tune_agent() -> None:
    """The settings of ``redis-shipper run``, once its configuration is loaded."""
    if _enabled("gc"):
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
    if _enabled("switch"):
        sys.setswitchinterval(SWITCH_INTERVAL)
    if _enabled("malloc"):
        tune_for_batches()


def tune_offload() -> None:
    """The settings of the offload process (one thread: no switch interval; it starts small, so
    nothing to freeze)."""
    if _enabled("gc"):
        gc.set_threshold(*GC_THRESHOLDS)
    if _enabled("malloc"):
        tune_for_batches()


def tune_for_batches() -> bool:
    """Keep freed heap memory for the next batch (see the module docstring); False if not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = all(mallopt(p, v) == 1 for p, v in (
        (_M_TRIM_THRESHOLD, KEEP_BYTES), (_M_TOP_PAD, KEEP_BYTES), (_M_MMAP_THRESHOLD, MMAP_THRESHOLD)))
    if not ok:
        log.debug("mallopt refused a parameter; the allocator keeps its defaults")
    return ok
