"""CONFIG GET * replies -> snapshots (secrets as salted digests) and ``config_changed`` events."""

from __future__ import annotations

import hashlib
from typing import Any

from parsers.events import Event, event_id, make_event

from .common import as_str, epoch_ms, pairs
from .redaction import REDACTED, is_secret_param


def parse_config_get(reply: Any) -> dict[str, str] | None:
    """``CONFIG GET *`` (flat list in RESP2, map in RESP3) -> {name: value}; ``None`` if malformed."""
    d = pairs(reply)
    if d is None:
        return None
    return {k: as_str(v) for k, v in d.items()}


def secret_digest(value: str, salt: str) -> str:
    """What a checkpoint stores for a secret value: a salted hash, enough to see it changed."""
    h = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=16, key=salt.encode("utf-8")[:64])
    return "secret:" + h.hexdigest()


def config_snapshot(values: dict[str, str], salt: str) -> dict[str, str]:
    """The snapshot to persist: secret values replaced by their salted digest (never stored)."""
    return {
        k: ((secret_digest(v, salt) if v else "") if is_secret_param(k) else v) for k, v in values.items()
    }


def config_changes(
    old: dict[str, str],
    new: dict[str, str],
    *,
    origin: str,
    run_id: str,
    observed_ms: int,
    role: str | None = None,
) -> list[Event]:
    """One ``config_changed`` event per parameter added, removed or changed between snapshots.

    Both snapshots come from :func:`config_snapshot`, so secrets compare as digests and are
    reported as ``(redacted)``; the value never reaches an event.
    """
    events: list[Event] = []
    for name in sorted(set(old) | set(new)):
        o, n = old.get(name), new.get(name)
        if o == n:
            continue
        secret = is_secret_param(name)
        if secret:  # snapshots hold "" or a digest: show only whether a value is set
            shown_o = None if o is None else (REDACTED if o else "")
            shown_n = None if n is None else (REDACTED if n else "")
        else:
            shown_o, shown_n = o, n
        fields: dict[str, Any] = {
            "parameter": name,
            "old": shown_o,
            "new": shown_n,
            "secret": secret,
            "run_id": run_id,
        }
        change = "added" if o is None else "removed" if n is None else "changed"
        fields["change"] = change
        msg = (
            f"config {name} changed (secret value not shown)"
            if secret
            else f"config {name} {change}: {o!r} -> {n!r}"
        )
        ev = make_event(
            timestamp=epoch_ms(observed_ms),
            source="config",
            category="config",
            event="config_changed",
            level="notice",
            role=role,
            message=msg,
            fields=fields,
        )
        ev["origin"] = origin
        digest = hashlib.blake2b(f"{o}\x00{n}".encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
        ev["id"] = event_id(origin, f"{name}:{observed_ms}:{digest}")
        events.append(ev)
    return events
