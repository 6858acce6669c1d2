"""The offload process (shipper/pipeline/offload.py has why and the wire protocol): serves the
agent's requests on stdin, one at a time, until stdin closes (the agent stopped or died).

Each request names the spool, the sink's encoder, the cursor and the size of a batch; the
reply is the encoded body. Light on imports (no asyncio, no metrics, no HTTP client): the agent
starts this process at the first backlog and again after each idle stop.
"""

from __future__ import annotations

import importlib
import logging
import sqlite3
import sys
from typing import Any

import orjson

from ..api import Encoded
from . import spool_db, spool_rows


class _Worker:
    """The child's state: one read-only spool connection and one encoder per sink spec."""

    def __init__(self) -> None:
        self.db: sqlite3.Connection | None = None
        self.db_path = ""
        self.encoders: dict[bytes, Any] = {}
        #: the last spool row read, split (spool_rows.annexed_rows_after): the next batch starts in it
        self.kept_row: dict[int, Any] = {}

    def encoder(self, factory: str, kwargs: dict[str, Any]) -> Any:
        key = orjson.dumps([factory, kwargs], option=orjson.OPT_SORT_KEYS)
        enc = self.encoders.get(key)
        if enc is None:
            module, _, name = factory.partition(":")
            if not module.startswith("shipper."):  # only the agent's own encoders
                raise ValueError(f"not an encoder of this agent: {factory!r}")
            enc = self.encoders[key] = getattr(importlib.import_module(module), name)(**kwargs)
        return enc

    def connect(self, path: str) -> sqlite3.Connection:
        if self.db is None or path != self.db_path:
            if self.db is not None:
                self.db.close()
            self.kept_row.clear()
            self.db = spool_db.connect_reader(path)
            self.db_path = path
        return self.db

    def handle(self, req: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        db = self.connect(req["db"])
        enc = self.encoder(req["factory"], req["kwargs"])
        after, max_bytes, max_events = int(req["after"]), int(req["max_bytes"]), int(req["max_events"])
        if req.get("annexed") and hasattr(enc, "encode_rows"):
            # straight from the stored rows to the body, when every event has its annex
            rows = spool_rows.annexed_rows_after(db, after, self.kept_row)
            try:
                built = enc.encode_rows(rows, max_bytes, max_events)
            finally:
                rows.close()  # ends the read transaction: the next request sees newer commits
            if built is not None:
                e, taken = built
                return {"ok": True, "first": taken.first, "last": taken.last, "count": taken.count,
                        "size": taken.size, "first_added": taken.first_added, "headers": e.headers,
                        "rejected": e.rejected, "entries": e.entries, "part_sizes": e.part_sizes,
                        "body_len": len(e.body)}, e.body
        # read_after closes its cursor, which ends the read transaction: the next request sees
        # newer commits
        read = spool_rows.annexed_after if req.get("annexed") else spool_rows.read_after
        batch, total, first_added = read(db, after, max_bytes, max_events)
        if not batch:
            return {"ok": True, "count": 0}, b""
        e: Encoded = enc.encode(batch)
        head = {"ok": True, "first": batch[0].seq, "last": batch[-1].seq, "count": len(batch), "size": total,
                "first_added": first_added, "headers": e.headers, "rejected": e.rejected, "entries": e.entries,
                "part_sizes": e.part_sizes, "body_len": len(e.body)}
        return head, e.body


def main() -> int:
    """Serve requests on stdin until it closes (the agent stopped or died)."""
    import signal

    from ..util.tuning import tune_offload

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the agent, which stops us
    tune_offload()  # fewer collections, a batch's memory serves the next one (shipper/util/tuning.py)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format='{"level":"%(levelname)s","logger":"%(name)s","msg":"%(message)s","process":"offload"}')
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    worker = _Worker()
    while True:
        line = inp.readline()
        if not line:
            return 0
        try:
            head, body = worker.handle(orjson.loads(line))
        except Exception as e:  # report, keep serving: the agent falls back for this batch
            head, body = {"ok": False, "error": f"{type(e).__name__}: {e}"[:2000]}, b""
        out.write(orjson.dumps(head) + b"\n")
        if body:
            out.write(body)
        out.flush()


if __name__ == "__main__":
    sys.exit(main())
