"""Shared pieces of the config schema: strict models, durations, sizes, secrets."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|KiB|MB|MiB|GB|GiB|TB|TiB)?\s*$", re.I)
_SIZE_UNITS = {
    "b": 1, "kb": 1000, "kib": 1 << 10, "mb": 1000**2, "mib": 1 << 20,
    "gb": 1000**3, "gib": 1 << 30, "tb": 1000**4, "tib": 1 << 40, None: 1,
}


def parse_duration(value: Any) -> float:
    """``1s``, ``250ms``, ``5m``, ``1.5h``, or a bare number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 1s, 250ms or 5m")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    m = _DURATION.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a duration (examples: 1s, 250ms, 5m, 1h)")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]


def parse_size(value: Any) -> int:
    """``1MiB``, ``512KB``, ``2GiB`` or a bare number of bytes -> bytes."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 1MiB or 512KB")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    m = _SIZE.match(str(value))
    if not m:
        raise ValueError(f"{value!r} is not a size (examples: 1MiB, 512KB, 2GiB)")
    unit = m.group(2).lower() if m.group(2) else None
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]


class Strict(BaseModel):
    """Every config model: unknown keys are errors (with a did-you-mean, see loader)."""

    model_config = ConfigDict(extra="forbid", frozen=False, populate_by_name=True)


def read_secret(*, inline: str | None, file: str | None, env: str | None, key: str) -> str | None:
    """Resolve a secret from (in order) a file, an env var, or an inline value."""
    if file:
        try:
            return Path(file).read_text().rstrip("\r\n")
        except OSError as e:
            raise ValueError(f"{key}_file: cannot read {file!r}: {e.strerror}") from None
    if env:
        val = os.environ.get(env)
        if val is None:
            raise ValueError(f"{key}_env: environment variable {env!r} is not set")
        return val
    return inline


class SecretRefs(Strict):
    """Mixin validation: at most one of the ways to give a secret."""

    @model_validator(mode="after")
    def _one_way(self) -> SecretRefs:
        for key in ("password", "token", "api_key"):
            given = [
                k for k in (key, f"{key}_file", f"{key}_env")
                if getattr(self, k, None) not in (None, "")
            ]
            if len(given) > 1:
                raise ValueError(f"give only one of {', '.join(given)}")
        return self
