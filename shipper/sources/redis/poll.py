"""The poller protocol every poll kind implements, what a poll returns, and shared helpers.

A poll kind is one module under ``shipper/sources/redis/`` with a :class:`Poller` subclass and a
``build(setup) -> list[Poller]`` function, plus one :class:`PollKind` entry in
``source.POLL_KINDS``. The source (``source.RedisSource``) owns the connection, the schedule, the
backoff and the spool; a poller owns one checkpoint key and turns replies into events.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from parsers.events import Event

if TYPE_CHECKING:
    from shipper.config import RedisSourceConfig

    from .client import RedisConnection


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


@dataclass(frozen=True)
class AgentWarning:
    """Something about the server's settings a user should fix (sent once per run_id)."""

    event: str
    message: str
    category: str


class Poller(abc.ABC):
    """One poll kind of one Redis: a command, a cursor under one checkpoint key, events out.

    The contract the source relies on:

    - ``name``: low-cardinality name of the kind (``slowlog``, ``commandlog:large-reply``); the
      ``kind`` label of the poll metrics and the key of "disabled until reconnect".
    - ``key``: the checkpoint key (``redis:<host:port>:<kind>``) of every position it returns.
      The poller is built from the durable value of that key (``None`` on a first start) and
      rebuilt from it whenever a batch could not be spooled, so its in-memory state never runs
      ahead of what is durable.
    - ``interval``: the configured pause between two polls.
    - :meth:`on_identity`: called with the server's ``run_id`` after every (re)connect and every
      INFO refresh, before any poll. Ids of SLOWLOG, LATENCY and ACL LOG restart with the
      process, so a poller whose cursor belongs to another run_id must reset it here (and count
      what a restart lost); a poller whose state survives restarts (CONFIG drift) only notes it.
    - :meth:`on_settings`: the server's sizing settings read with the identity
      (``slowlog-max-len``, ``latency-monitor-threshold``, ``acllog-max-len``; ``None`` where
      CONFIG GET is denied). Returns a warning for the user, or ``None``.
    - :meth:`poll`: one bounded read on the source's connection. Raises :class:`PollDisabled`
      when the server cannot answer this kind (unknown command, NOPERM), redis errors for
      trouble (the source backs off and reconnects); never reconnects or sleeps itself.
    - :meth:`committed`: called once the positions of the results since the last call are
      durable; counters of shipped/lost entries move only here, so a refused batch is not
      counted twice.
    - :meth:`next_interval`: the pause before the next poll, given the result of this one.
    """

    name: str
    key: str
    interval: float
    #: an agent warning when the server cannot answer this kind; False where absence is normal
    warn_when_unsupported: bool = True

    @abc.abstractmethod
    def on_identity(self, run_id: str) -> None:
        """The server's run_id, after every (re)connect and INFO refresh."""

    def on_settings(self, settings: Mapping[str, str | None]) -> AgentWarning | None:
        """Size reads by the server's settings; a warning when they defeat this kind."""
        return None

    @abc.abstractmethod
    async def poll(self, conn: RedisConnection, *, role: str | None) -> PollResult:
        """One bounded read: the new events and the checkpoint that is true once they are."""

    def committed(self) -> None:
        """The positions returned so far are durable (a poller that counts nothing ignores it)."""
        return None

    def next_interval(self, result: PollResult) -> float:
        """Seconds until the next poll of this kind."""
        return self.interval


@dataclass(frozen=True)
class PollSetup:
    """What a poll kind's ``build`` gets: the source's config and the durable positions."""

    cfg: RedisSourceConfig
    #: ``host:port`` (or socket path) of the Redis, as in metric labels and checkpoint keys
    address: str
    #: ``redis:<address>:``: every checkpoint key of this source starts with it
    prefix: str
    durable: Mapping[str, Any]

    def key(self, suffix: str) -> str:
        return self.prefix + suffix

    def committed(self, suffix: str) -> Any:
        """The durable position under ``<prefix><suffix>``, or ``None`` on a first start."""
        return self.durable.get(self.prefix + suffix)


@dataclass(frozen=True)
class PollKind:
    """One entry of ``source.POLL_KINDS``: when the kind is on, and how its pollers are built."""

    name: str
    enabled: Callable[[RedisSourceConfig], bool]
    build: Callable[[PollSetup], list[Poller]]


def now_ms() -> int:
    return int(time.time() * 1000)


def is_unsupported(err: BaseException) -> bool:
    """An error that will not go away by retrying: the command is unknown or denied (NOPERM)."""
    text = str(err).lower()
    return any(t in text for t in ("unknown command", "unknown subcommand", "noperm", "no permissions",
                                   "unknown type", "invalid command log type"))


async def read_or_disable(conn: RedisConnection, *args: Any) -> Any:
    """One command's raw reply; a command this server cannot answer raises :class:`PollDisabled`."""
    from redis.exceptions import ResponseError

    try:
        return await conn.call(*args)
    except ResponseError as e:
        if is_unsupported(e):
            raise PollDisabled(str(e)) from e
        raise
