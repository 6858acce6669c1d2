"""The valid part of a config that fails the schema, so ``check`` reports every error at once.

The schema's errors come first; the passes after it (files readable, secrets, time zone,
labels, URLs, metrics.listen) need a validated config. Removing each part the schema refused
(a wrong key, or the source that lacks a required one) and validating again leaves a config
those passes can still look at: fixing ten errors no longer reveals six more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from . import AgentConfig
from .env import expand_env


def _drop_at(data: Any, loc: tuple[Any, ...]) -> bool:
    """Remove what a validation error points at (``missing``: the item that lacks the key) from
    a YAML tree; discriminator tags in ``loc`` (``sources.0.file.path``) are skipped."""
    node, parents = data, []
    for part in loc:
        if isinstance(node, list) and isinstance(part, int) and part < len(node):
            parents.append((node, part))
            node = node[part]
        elif isinstance(node, dict) and part in node:
            parents.append((node, part))
            node = node[part]
        elif isinstance(node, dict) and parents and isinstance(parents[-1][1], int):
            continue  # a tag like "file" between a list index and the key
        else:
            break
    if not parents:
        return False
    container, key = parents[-1]
    if isinstance(container, list):
        container[key] = _PRUNED
    else:
        del container[key]
    return True


_PRUNED = object()


def _strip_pruned(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_pruned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strip_pruned(v) for v in value if v is not _PRUNED]
    return value


def best_effort_config(path: str) -> tuple[AgentConfig, dict[str, list[int]]] | None:
    """The config file with every invalid part removed, so the passes after the schema can still
    report on the rest (one run says everything), and the file's index of each remaining source
    and sink; None when nothing usable is left."""
    try:
        data = expand_env(yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}, "", [])
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    if not isinstance(data, dict):
        return None
    #: where each remaining source/sink was in the file, to name it by its own index
    origin = {k: list(range(len(data[k]))) for k in ("sources", "sinks") if isinstance(data.get(k), list)}
    for _ in range(10):
        try:
            return AgentConfig.model_validate(data), origin
        except ValidationError as err:
            missing = [tuple(e["loc"][:-1]) if e["type"] == "missing" else tuple(e["loc"]) for e in err.errors()]
            if not any([_drop_at(data, loc) for loc in missing]):
                return None
            for k, idx in origin.items():
                items = data.get(k) if isinstance(data.get(k), list) else []
                origin[k] = [i for i, item in zip(idx, items, strict=False) if item is not _PRUNED]
            data = _strip_pruned(data)
    return None


def renumber(key: str, origin: dict[str, list[int]]) -> str:
    """``sources[0].x`` of the pruned config -> the same item's index in the file."""
    for k, idx in origin.items():
        prefix = f"{k}["
        if key.startswith(prefix) and "]" in key:
            n, rest = key[len(prefix):].split("]", 1)
            if n.isdigit() and int(n) < len(idx):
                return f"{k}[{idx[int(n)]}]{rest}"
    return key
