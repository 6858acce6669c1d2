"""The catalogue's rule data: what each Redis / Valkey message is, one module per area.

A rule is ``(pattern, category, event[, first words])``. The pattern is matched at the start of
the message (``re.match``), so a trailing ``.*`` is only needed to capture text. Group names carry
their type: ``name__i`` becomes an ``int`` field ``name``, ``name__f`` a ``float``; any other
group is kept as text; a group called ``client`` (a CLIENT LIST string) also yields
``client_addr`` / ``client_name`` / ``client_user``. The optional list of first words is needed
only when the pattern does not begin with a literal word (``(?:REPLICAOF|SLAVE OF) ...``): the
catalogue dispatches on a message's first word. ``GENERIC`` rules have no first word at all and
are tried when no keyed rule matched.

Order matters only between rules that share a first word: the first match wins. :data:`SPEC`
keeps the areas in a fixed order so it never changes by accident.

To add a message: put its rule in the module of its area (a new area is a new module listed
here), regenerate the classifier (``python -m parsers.catalogue_build``, which rewrites
parsers/catalogue_compiled.py), run ``tests/test_parse_catalogue.py``, and list the event in
docs/events.md.
"""

from __future__ import annotations

from typing import Any

from parsers.rules import clients, cluster, crash, persistence, replication, security, sentinel, server

#: every keyed rule, area by area
SPEC: list[tuple[Any, ...]] = [
    *server.RULES,
    *persistence.RULES,
    *replication.RULES,
    *sentinel.RULES,
    *cluster.RULES,
    *security.RULES,
    *clients.RULES,
    *crash.RULES,
]

#: the rules without a literal first word
GENERIC_SPEC: list[tuple[str, str, str]] = [*sentinel.GENERIC, *crash.GENERIC]
