"""What every poll kind returns, and the small shared helpers of the poller."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from parsers.events import Event


@dataclass
class PollResult:
    """Events of one poll and the checkpoints that become true when they are durable.

    ``must_persist`` is False when only the in-memory cursor moved over entries that produce
    no event (the poller's own commands): the source then batches that checkpoint with the next
    real one, instead of one spool transaction per poll.
    """

    events: list[Event] = field(default_factory=list)
    positions: dict[str, Any] = field(default_factory=dict)
    must_persist: bool = True
    #: the poll found work pending (ring filling, gap): poll this kind again soon
    hurry: bool = False


class PollDisabled(Exception):
    """This poll kind cannot run on this server (unknown command, NOPERM): stop polling it
    until the next reconnect, after one agent warning."""


def now_ms() -> int:
    return int(time.time() * 1000)


def is_unsupported(err: BaseException) -> bool:
    """An error that will not go away by retrying: the command is unknown or denied (NOPERM)."""
    text = str(err).lower()
    return any(t in text for t in ("unknown command", "unknown subcommand", "noperm", "no permissions",
                                   "unknown type", "invalid command log type"))
