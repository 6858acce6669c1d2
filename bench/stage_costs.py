"""CPU per event of each stage of the agent's hot path, in one process, on the promtail_compare
backlog file, with the cheaper or plainer alternative of each measured in the same run.

    python bench/stage_costs.py [--lines 300000] [--repeat 3]

Each stage runs the product's own functions in a loop over the same events (no threads, no
SQLite, no HTTP), with the process settings of the agent (shipper/util/tuning.py): the floor of
what each stage costs. Each figure is the best of ``--repeat`` runs of CPU time (the machine is
shared). Beside a stage, its baseline from the same run and the ratio (stage / baseline):

* parse: against splitting the file into lines (the follower's floor);
* seal: canonical ``dumps`` against ``orjson.dumps`` unsorted, copied to its exact size as
  ``dumps`` does (what the key order costs);
* read-back: :func:`shipper.pipeline.spool_rows.loads_all` (one call per batch) against one
  ``orjson.loads`` per event;
* seal with the Loki annex (shipper/sinks/loki_annex.py) against the seal without it;
* the Loki body from the annexes (split of the stored rows, stream lookup, one ``orjson.dumps``)
  against the read-back + group + encode_json it replaces;
* gzip: no alternative; its share of the sum is printed;
* the spool's rows (shipper/pipeline/spool_rows.py ``pack``) deflated against plain, their
  inflate, and the offload process's Loki body straight from the rows (``payload_of_rows``,
  1 MiB batches) against the body from batches of annexed events.

bench/profile_backlog.py says which of these dominate in the running agent (threads, SQLite
and the offload process included).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate import calibration_ns  # noqa: E402
from promtail_compare import build_backlog_file  # noqa: E402

from parsers.events import dumps, event_id  # noqa: E402
from parsers.logfile import LogParser  # noqa: E402
from shipper.api import SpooledEvent  # noqa: E402
from shipper.pipeline import spool_rows  # noqa: E402
from shipper.pipeline.spool import chain_hash  # noqa: E402
from shipper.pipeline.spool_rows import loads_all  # noqa: E402
from shipper.sinks.compress import gzip_body  # noqa: E402
from shipper.sinks.loki import LokiEncoder  # noqa: E402
from shipper.sinks.loki_annex import LokiAnnexer, payload_of_annexes, payload_of_rows  # noqa: E402
from shipper.util.tuning import tune_offload  # noqa: E402

BATCH = 2000  # events per batch, as the spool and the Loki sink see them at a backlog


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """The least CPU seconds of ``repeat`` calls of ``fn``, and the last call's result."""
    least, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn()
        least = min(least, time.process_time() - t0)
    return least, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tune_offload()  # the agent's collector thresholds and allocator settings
    path = Path(tempfile.mkdtemp()) / "backlog.log"
    n = build_backlog_file(path, args.lines)
    data = path.read_bytes()
    print(f"calibration {calibration_ns():.1f} ns per empty call; {n:,} lines, {len(data) / 1e6:.1f} MB; "
          f"best of {args.repeat}")

    def parse() -> list[dict[str, Any]]:
        p = LogParser(kind="auto", tz=UTC, year=2026)
        evs: list[dict[str, Any]] = []
        off = 0
        for ln in data.split(b"\n")[:-1]:
            evs.extend(p.feed(ln, off))
            off += len(ln) + 1
        evs.extend(p.flush())
        return evs

    t_split, _ = best(lambda: data.split(b"\n"), args.repeat)
    t_parse, evs = best(parse, args.repeat)
    e = len(evs)
    for ev in evs:
        ev["labels"] = {"job": "bench", "run": "x", "instance": "redis://10.0.0.5:6379"}

    def seal_with(annex: Callable[[dict[str, Any], bytes], bytes] | None) -> tuple[list[bytes], list[bytes]]:
        """The spool's seal of every event (id, canonical dumps, chain hash), and each event's
        annex when ``annex`` is given: the two stages differ by that call only."""
        prev, raws, annexes = "0" * 64, [], []
        for i, ev in enumerate(evs):
            ev["stream"], ev["seq"], ev["prev_hash"] = "h/redis", i + 1, prev
            ev["id"] = event_id("h/redis", f"seq:{i + 1}")
            raw = dumps(ev)
            prev = chain_hash(raw)
            raws.append(raw)
            if annex is not None:
                annexes.append(annex(ev, raw))
        return raws, annexes

    def seal() -> list[bytes]:
        return seal_with(None)[0]

    t_seal, raws = best(seal, args.repeat)
    annexer = LokiAnnexer(LokiEncoder())

    def seal_annexed() -> tuple[list[bytes], list[bytes]]:
        return seal_with(annexer.annex)

    t_seal_annex, (_raws, annexes) = best(seal_annexed, args.repeat)
    assert all(annexes), "every event of the backlog has an annex"
    t_dumps, _ = best(lambda: [dumps(x) for x in evs], args.repeat)
    t_unsorted, _ = best(lambda: [memoryview(orjson.dumps(x)).tobytes() for x in evs], args.repeat)
    batches = [raws[k:k + BATCH] for k in range(0, e, BATCH)]
    t_read, loaded = best(lambda: [ev for b in batches for ev in loads_all(b)], args.repeat)
    t_read_each, _ = best(lambda: [orjson.loads(r) for r in raws], args.repeat)
    enc = LokiEncoder()
    spooled = [SpooledEvent(i, ev, r) for i, (ev, r) in enumerate(zip(loaded, raws, strict=True))]
    t_group, grouped = best(lambda: [enc.group(spooled[k:k + BATCH])[0] for k in range(0, e, BATCH)], args.repeat)
    t_json, bodies = best(lambda: [enc.encode_json(g) for g in grouped], args.repeat)
    t_gzip, packed = best(lambda: [gzip_body(b) for b in bodies], args.repeat)
    # the spool stores each row's raws and annexes joined by \n; the annex sink's read splits both
    rows = [(b"\n".join(raws[k:k + BATCH]), b"\n".join(annexes[k:k + BATCH])) for k in range(0, e, BATCH)]

    def body_from_annexes() -> list[bytes]:
        out = []
        for raw, annex in rows:
            batch = [SpooledEvent(0, None, r, a) for r, a in zip(raw.split(b"\n"), annex.split(b"\n"), strict=True)]
            out.append(payload_of_annexes(batch)[0])
        return out

    t_annexed, annexed_bodies = best(body_from_annexes, args.repeat)
    assert annexed_bodies == bodies, "the bodies from annexes are the encoder's bytes"

    # the spool's rows as the agent stores them, and the offload process's body straight from them
    t_pack_plain, plain_rows = best(lambda: spool_rows.pack(raws, 0, annexes, codec=spool_rows.PLAIN), args.repeat)
    t_pack, stored = best(lambda: spool_rows.pack(raws, 0, annexes, codec=spool_rows.DEFLATE), args.repeat)
    t_inflate, _ = best(lambda: [(spool_rows.unpack(r[3], r[5]), spool_rows.unpack(r[4], r[5])) for r in stored],
                        args.repeat)
    split_rows = [(last - k + 1, 0.0, raw.split(b"\n"), annex.split(b"\n"))
                  for last, k, _size, raw, annex, _codec in plain_rows]

    def body_from_rows() -> list[bytes]:
        out, after = [], 0
        while True:
            rows_after = ((f, a, p, x, max(0, after - f + 1)) for f, a, p, x in split_rows if f + len(p) - 1 > after)
            built = payload_of_rows(rows_after, 1 << 20, 100_000)
            if built is None:
                return out
            out.append(built[0])
            after = built[1].last

    def body_from_batches() -> list[bytes]:
        out, after = [], 0
        while after < e:
            batch, total = [], 0
            while after < e and (not batch or total + len(raws[after]) <= 1 << 20):
                batch.append(SpooledEvent(after + 1, None, raws[after], annexes[after]))
                total += len(raws[after])
                after += 1
            out.append(payload_of_annexes(batch)[0])
        return out

    t_rows_body, rows_bodies = best(body_from_rows, args.repeat)
    t_batches_body, batch_bodies = best(body_from_batches, args.repeat)
    assert rows_bodies == batch_bodies, "the bodies straight from the rows are those of the batches"

    def row(label: str, dt: float, base: float | None = None, base_label: str = "") -> None:
        text = f"   {label:<52} {dt / e * 1e6:6.2f} µs/event {dt / n * 1e6:6.2f} µs/line"
        if base:
            text += f"   {dt / base:5.2f}x {base_label} ({base / e * 1e6:.2f} µs/event)"
        print(text)

    print(f"{e:,} events ({sum(map(len, raws)) / 1e6:.1f} MB canonical JSON)")
    row("parse (LogParser.feed, every line)", t_parse, t_split, "the split into lines")
    row("seal: event_id + canonical dumps + sha256 chain", t_seal)
    row("  of which canonical dumps (sorted keys, exact copy)", t_dumps, t_unsorted, "orjson.dumps unsorted, copied")
    row("read-back: spool_rows.loads_all, 2,000-event batches", t_read, t_read_each, "one orjson.loads per event")
    row("Loki group (labels, metadata, order)", t_group)
    row("Loki encode_json", t_json)
    row("seal with the Loki annex", t_seal_annex, t_seal, "the seal without")
    row("Loki body from the annexes (split rows, streams, dumps)", t_annexed, t_read + t_group + t_json,
        "read-back + group + encode_json")
    row("gzip of the bodies (shipper.sinks.compress)", t_gzip)
    row("spool rows deflated (pack, ISA-L level 1)", t_pack, t_pack_plain, "the rows plain")
    row("inflate of the stored rows (offload process)", t_inflate)
    row("Loki body straight from the rows (1 MiB batches)", t_rows_body, t_batches_body,
        "from batches of annexed events")
    total = t_parse + t_seal + t_read + t_group + t_json + t_gzip
    row("sum of the stages", total, t_split, "the split into lines")
    annexed_total = t_parse + t_seal_annex + t_annexed + t_gzip
    row("sum of the stages with annexes", annexed_total, total, "the sum without")
    for label, dt in (("parse", t_parse), ("seal", t_seal), ("read-back", t_read), ("group", t_group),
                      ("encode_json", t_json), ("gzip", t_gzip)):
        print(f"   {label:<12} {dt / total * 100:5.1f} % of the sum")
    size = sum(map(len, bodies)) / 1e6
    print(f"   bodies {size:.1f} MB uncompressed, {sum(map(len, packed)) / 1e6:.1f} MB gzip")
    plain_mb = sum(len(r[3]) + len(r[4] or b"") for r in plain_rows) / 1e6
    stored_mb = sum(len(r[3]) + len(r[4] or b"") for r in stored) / 1e6
    print(f"   spool rows {plain_mb:.1f} MB plain (events and annexes), {stored_mb:.1f} MB deflated "
          f"({plain_mb / stored_mb:.1f}x smaller)")


if __name__ == "__main__":
    main()
