"""``${VAR}`` expansion in the config, with the semantics of Docker Compose and Vector.

===================  =====================================================================
``${V}``             the value of V; unset: an error naming V and the key
``${V:-default}``    ``default`` when V is unset *or empty*
``${V-default}``     ``default`` when V is unset
``${V:?message}``    an error (naming V, the key and ``message``) when V is unset or empty
``${V?message}``     an error when V is unset
``$$``               a literal ``$`` (``$${V}`` is the text ``${V}``, never expanded)
===================  =====================================================================

Only the braced form is expanded: a ``$`` followed by anything else (``foo$``, ``$1``) is kept,
so regular expressions and passwords need no escaping unless they contain ``${`` or ``$$``.
A ``${`` that is not one of the forms above is an error rather than text shipped as is.

``HOSTNAME``: a shell exports it but systemd services and most containers' PID 1 do not;
what users mean by ``${HOSTNAME}`` is the host's name, so an unset ``HOSTNAME`` reads as
:func:`socket.gethostname` (a set one, even empty, is used as it is).
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from typing import Any

_TOKEN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$\{")


def _lookup(name: str, environ: Mapping[str, str]) -> str | None:
    if name in environ:
        return environ[name]
    if name == "HOSTNAME":
        return socket.gethostname()
    return None


def expand_string(value: str, path: str, problems: list[tuple[str, str]],
                  environ: Mapping[str, str] | None = None) -> str:
    """``value`` with every ``${...}`` and ``$$`` replaced; problems appended as (key, reason)."""
    env = os.environ if environ is None else environ

    def sub(m: re.Match[str]) -> str:
        text = m.group(0)
        if text == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if name is None:
            problems.append((path, f"invalid interpolation {value!r}: use ${{NAME}}, ${{NAME:-default}} or "
                             "${NAME:?message}, and $$ for a literal $"))
            return text
        current = _lookup(name, env)
        unset = current is None or (current == "" and op is not None and op.startswith(":"))
        if op is None:
            if current is None:
                problems.append((path, f"environment variable {name} is not set (give a default with "
                                 f"${{{name}:-default}})"))
                return text
            return current
        if not unset:
            return current  # type: ignore[return-value]
        if op.endswith("-"):
            return arg
        empty = "is not set" if current is None else "is empty"
        problems.append((path, f"environment variable {name} {empty}" + (f": {arg}" if arg else "")))
        return text

    return _TOKEN.sub(sub, value)


def expand_env(value: Any, path: str = "", missing: list[tuple[str, str]] | None = None,
               environ: Mapping[str, str] | None = None) -> Any:
    """Expand every string of a YAML tree (keys are left alone); problems go to ``missing``."""
    problems = missing if missing is not None else []
    if isinstance(value, str):
        return expand_string(value, path, problems, environ)
    if isinstance(value, dict):
        return {k: expand_env(v, _join(path, k), problems, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, f"{path}[{i}]", problems, environ) for i, v in enumerate(value)]
    return value


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)
