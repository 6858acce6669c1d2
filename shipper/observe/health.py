"""What each running part of the agent reports about itself, for ``/ready``.

``/ready`` must name a part that is not doing its job even when nothing raised to the top: a
source the supervisor keeps restarting (it counts as a running task between two crashes), a
sink worker task that ended, a sink worker that sends nothing although events wait. The
runtime's supervisor and sink workers report here; :func:`shipper.observe.server.agent_status`
reads it. Sink progress itself is kept by the spool (every acknowledgement moves a cursor
there, :meth:`shipper.pipeline.spool.Spool.stalled_for`), so a stuck worker is detected from
the outside, whatever it is stuck in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

#: a source restarted after a crash counts as recovered once it has run this long without
#: crashing again (a crash loop restarting every few seconds stays not ready throughout)
RECOVERED_AFTER = 10.0
#: a sink worker with events waiting and no acknowledgement for this long is stuck (``ready.stall_after``)
DEFAULT_STALL_AFTER = 60.0


@dataclass
class _Crash:
    count: int
    error: str
    #: monotonic time the supervisor restarts the source (end of the backoff)
    restart_at: float
    #: monotonic time of the restart, once it happened
    restarted_at: float | None = None


class Health:
    """One agent's reports: sources in crash backoff (by source name)."""

    def __init__(self) -> None:
        self._crashes: dict[str, _Crash] = {}

    def source_crashed(self, name: str, error: BaseException | str, delay: float) -> None:
        """The supervisor caught ``error`` from source ``name`` and restarts it in ``delay`` seconds."""
        prev = self._crashes.get(name)
        text = " ".join(str(error).split())[:300] or type(error).__name__
        self._crashes[name] = _Crash((prev.count if prev else 0) + 1, text, time.monotonic() + delay)

    def source_restarted(self, name: str) -> None:
        """The supervisor restarted ``name`` after its backoff."""
        crash = self._crashes.get(name)
        if crash is not None:
            crash.restarted_at = time.monotonic()

    def source_problem(self, name: str, *, now: float | None = None) -> str | None:
        """Why source ``name`` is not ready (crash backoff, or too soon after a restart), else None."""
        crash = self._crashes.get(name)
        if crash is None:
            return None
        now = time.monotonic() if now is None else now
        if crash.restarted_at is None:
            return (f"in crash backoff ({crash.count} crash{'es' if crash.count > 1 else ''}, restart in "
                    f"{max(0.0, crash.restart_at - now):.0f}s): {crash.error}")
        if now - crash.restarted_at < RECOVERED_AFTER:
            return (f"restarted {now - crash.restarted_at:.0f}s ago after {crash.count} "
                    f"crash{'es' if crash.count > 1 else ''}: {crash.error}")
        del self._crashes[name]
        return None
