"""What the compiled catalogue (:mod:`parsers.catalogue_compiled`, generated code) calls at run time.

Kept apart from the generator (:mod:`parsers.catalogue_build`, which only tests and the
``python -m parsers.catalogue_build`` command import) so that classifying a message never pays for
building the catalogue: a process imports these few functions and the generated module, nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

#: messages that matched a rule without groups ("Server initialized", "DB saved on disk"...) are
#: the same text every time: remembered, they cost one dict lookup instead of a regex match
CONSTANT: dict[str, tuple[str, str]] = {}
CONSTANT_MAX = 4096

#: the flags of every catalogue regex: ASCII classes are ~10% faster, and the values are ASCII
FLAGS = re.S | re.A

#: ``key=value`` at the start of the string or after a space; matched against ``" " + client`` so the
#: pattern starts with a literal (the regex engine then skips ahead with a fast search): same
#: matches as ``(?:^| )(id|addr|name|user)=(\S*)`` on the string itself, a third of the time
_CLIENT_KV = re.compile(r" (id|addr|name|user)=(\S*)")


def client_fields(out: dict[str, Any]) -> None:
    """``client_id`` / ``client_addr`` / ``client_name`` / ``client_user`` from a CLIENT LIST string."""
    client = out.get("client")
    if client:
        for key, val in _CLIENT_KV.findall(" " + client):
            if key == "id":
                try:
                    out["client_id"] = int(val)
                except ValueError:
                    pass
            else:
                out["client_" + key] = val


def fields_of(m: re.Match[str], groups: tuple[tuple[int, str, Any], ...], has_client: bool) -> dict[str, Any]:
    """The fields of a rule's match, read group by group: ``groups`` is ``(group index, field name,
    converter or None)``; a conversion that fails keeps the text. The generated code builds the
    same dict inline and calls this only when a conversion fails (an ``int`` of more than 4,300
    digits)."""
    out: dict[str, Any] = {}
    vals = m.groups()
    for i, name, conv in groups:
        v = vals[i]
        if v is None:
            continue
        if conv is None:
            out[name] = v
        else:
            try:
                out[name] = conv(v)
            except ValueError:
                out[name] = v
    if has_client:
        client_fields(out)
    return out


def lazy_match(namespace: dict[str, Any], name: str, pattern: str) -> Callable[[str], re.Match[str] | None]:
    """A stand-in for ``re.compile(pattern, FLAGS).match`` that compiles the pattern on its first
    call and puts the real ``match`` in ``namespace[name]``, where the generated code looks it up
    on every call: compiling all ~300 rules at import cost ~45 ms of CPU in every process, while a
    log uses a few dozen of them. After the first call the stand-in is out of the way (two threads
    racing compile the same pattern twice, harmlessly)."""

    def first_call(message: str) -> re.Match[str] | None:
        match = re.compile(pattern, FLAGS).match
        namespace[name] = match
        return match(message)

    return first_call
