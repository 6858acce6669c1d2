"""The agent's one backoff: exponential with full jitter, capped, honouring a server's Retry-After.

Every retry loop in the agent (sink workers, Redis pollers, the source supervisor, state writes)
uses this class, so a reader learns the retry behaviour once and a metric or test of one loop holds
for the others.
"""

from __future__ import annotations

import random


class Backoff:
    """Exponential backoff with jitter in ``[ceiling/2, ceiling]``, capped at ``maximum``.

    ``next()`` gives the delay before the next attempt and counts the attempt; ``reset()`` after
    a success. A ``retry_after`` from the server (HTTP ``Retry-After``) is honoured up to four
    times ``maximum``, so a server cannot park the agent forever.
    """

    def __init__(self, initial: float = 0.5, maximum: float = 30.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.attempt = 0

    def next(self, retry_after: float | None = None) -> float:
        self.attempt += 1
        ceiling = min(self.maximum, self.initial * (2 ** min(self.attempt - 1, 30)))
        delay = random.uniform(ceiling / 2, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.maximum * 4))
        return delay

    def reset(self) -> None:
        self.attempt = 0
