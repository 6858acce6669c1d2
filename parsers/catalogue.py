"""Message -> (category, event, fields): what a Redis / Valkey line is about.

The rules are data, in :mod:`parsers.rules` (one module per area: server, persistence,
replication, sentinel, cluster, security, clients, crash): the catalogue of
redis-log-formats.md §2 (format strings from the Redis and Valkey sources, cited there),
one regex per message with every wording a supported version uses (``MASTER|PRIMARY``,
``SLAVE|REPLICA``, ``Redis|Valkey``...).

:mod:`parsers.catalogue_build` turns them into straight-line code, one function per first word of
a message, written to :mod:`parsers.catalogue_compiled` (generated, checked in: see the builder for
why); this module is what the rest of the code imports. A message costs one dict lookup on its
first word and one call; rules whose pattern has no literal first word go to a short generic list
tried last.

Pure and total: :func:`classify` never raises; ``None`` means "no rule knows this line"
(the caller turns that into ``category: other, event: unrecognized``).
"""

from __future__ import annotations

from typing import Any

from parsers.catalogue_compiled import BUCKETS as _BUCKETS
from parsers.catalogue_compiled import classify

__all__ = ["classify", "known_events"]

#: first word -> the function that classifies a message starting with it (``LogParser.feed`` calls
#: it directly when the header regex has already found the word)
BUCKETS: dict[str, Any] = _BUCKETS


def known_events() -> list[tuple[str, str]]:
    """Every (category, event) the catalogue can produce, for docs and tests."""
    from parsers.rules import GENERIC_SPEC, SPEC

    seen: dict[tuple[str, str], None] = {}
    for spec in SPEC:
        seen[(spec[1], spec[2])] = None
    for _p, c, e in GENERIC_SPEC:
        seen[(c, e)] = None
    return list(seen)
