"""Where events a sink refused for good go: one JSON Lines file per sink, fsynced."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from ..api import SpooledEvent


class DeadLetters:
    """Events a sink refused for good, appended as JSON Lines to ``state_dir/deadletter/<sink>.jsonl``."""

    def __init__(self, state_dir: str) -> None:
        self.dir = Path(state_dir) / "deadletter"

    def write(self, sink: str, items: list[tuple[SpooledEvent, str]]) -> Path:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{sink}.jsonl"
        with open(path, "ab") as f:
            for sev, reason in items:
                f.write(orjson.dumps({"sink": sink, "reason": reason, "spool_seq": sev.seq,
                                      "event": orjson.Fragment(sev.raw)}))
                f.write(b"\n")
            f.flush()
            os.fsync(f.fileno())
        return path

