"""``redis-shipper verify``: prove that a shipped audit trail is complete and unaltered.

Reads back what landed in a sink (default: the local sink; or Loki, Elasticsearch, a file sink,
or any JSON Lines files given with ``--input``), checks every stream's sequence numbers and hash
chain (shipper/audit/verify.py) and prints, per stream: events checked, gaps (with ranges and
why), duplicates, chain breaks, and the gaps the agent itself declared.

When the agent's state directory is readable (same host), the spool explains seqs that are
still on their way (not yet acknowledged by that sink) and the dead-letter file explains seqs
the sink refused for good; ``--heads`` also checks the tail against the agent's chain heads (or
a heads file kept elsewhere, see ``--print-heads``).

Exit status: 0 = verified (no unexplained problem), 1 = unexplained problems (or nothing to
verify), 2 = bad config or arguments, 3 = the trail could not be read.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson

from ..audit import readers, trails
from ..audit.anchor import heads_snapshot, parse_heads_file
from ..audit.verify import Report, StreamReport, Verifier
from ..config import AgentConfig, ConfigError, LocalSinkConfig, load_config, named_sinks, parse_config, parse_duration
from ..registry import SINKS
from ..util.tz import parse_when

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_READ = 0, 1, 2, 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help="agent config (sinks' connection settings, state_dir)")
    parser.add_argument("--state-dir", help="override the config's state_dir")
    parser.add_argument("--from", dest="source", choices=SINKS.names(), default="local",
                        help="which sink to read the trail back from (default: local)")
    parser.add_argument("--sink", help="the sink's name when several of that type are configured (loki2...)")
    parser.add_argument("--input", nargs="+", metavar="FILE",
                        help="verify these JSON Lines files instead of reading a sink")
    parser.add_argument("--since", help="check events stamped from this time: a duration ago (1h) or RFC 3339")
    parser.add_argument("--until", help="check events stamped before this time: a duration ago or RFC 3339")
    parser.add_argument("--margin", default="1h",
                        help="also read this much before/after the window, to fill holes of events whose "
                        "timestamps are out of seq order (default 1h)")
    parser.add_argument("--stream", action="append", help="report only this stream (host/source; repeatable)")
    parser.add_argument("--selector", help="Loki stream selector (default: the config's static labels)")
    parser.add_argument("--loki-limit", type=int, default=1000, help="entries per Loki query (default 1000)")
    parser.add_argument("--es-page", type=int, default=readers.ES_PAGE,
                        help="documents per Elasticsearch _search page (default 1000, at most 10000)")
    parser.add_argument("--heads", nargs="?", const="spool", metavar="FILE",
                        help="check the tail against chain heads: the agent's spool (no value) or a heads "
                        "file printed earlier by --print-heads")
    parser.add_argument("--print-heads", action="store_true",
                        help="print the agent's current chain heads as JSON (keep them off this host)")
    parser.add_argument("--no-agent-state", action="store_true",
                        help="ignore the local spool and dead-letter files (verify from another host)")
    parser.add_argument("--require-genesis", action="store_true",
                        help="every stream must start at seq 1 (no retention cut the head of the trail)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--verbose", "-v", action="store_true", help="list every duplicate and declared gap")


def choose_sink(cfg: AgentConfig, kind: str, name: str | None) -> tuple[str, Any]:
    candidates = [(n, sc) for n, sc in named_sinks(cfg) if sc.type == kind]
    if name is not None:
        for n, sc in candidates:
            if n == name:
                return n, sc
        raise ConfigError([("sinks", f"no {kind} sink named {name!r} (have: "
                                     f"{', '.join(n for n, _ in candidates) or 'none'})")])
    if candidates:
        return candidates[0]
    if kind == "local":
        return "local", LocalSinkConfig(type="local")
    raise ConfigError([("sinks", f"no sink of type {kind!r} is configured; --from needs its connection settings")])


def main(args: argparse.Namespace) -> int:
    now = time.time()
    try:
        cfg = load_config(args.config) if args.config else parse_config({}, "defaults")
        if args.state_dir:
            cfg.state_dir = args.state_dir
        since = parse_when(args.since, now) if args.since else None
        until = parse_when(args.until, now) if args.until else None
        margin = int(parse_duration(args.margin) * 1e9)
        if args.input:
            sink_name, sink_cfg = args.sink, None
        else:
            sink_name, sink_cfg = choose_sink(cfg, args.source, args.sink)
    except ConfigError as e:
        print(f"redis-shipper verify: invalid config\n{e}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as e:
        print(f"redis-shipper verify: {e}", file=sys.stderr)
        return EXIT_USAGE

    if args.print_heads:
        try:
            state = readers.read_agent_state(cfg.state_dir, None)
        except readers.ReadError as e:
            print(f"redis-shipper verify: {e}", file=sys.stderr)
            return EXIT_READ
        snap = heads_snapshot(state.heads, host=socket.gethostname(), now=now)
        sys.stdout.write(orjson.dumps(snap, option=orjson.OPT_INDENT_2).decode() + "\n")
        return EXIT_OK

    v = Verifier(sink=sink_name, since_ns=since, until_ns=until, streams=args.stream,
                 require_genesis=args.require_genesis)
    try:
        notes = _agent_state(v, cfg, sink_name, args)
        _read_trail(v, cfg, args, sink_cfg, since, until, margin, now, notes)
    except readers.ReadError as e:
        print(f"redis-shipper verify: {e}", file=sys.stderr)
        return EXIT_READ
    except (OSError, ValueError) as e:
        print(f"redis-shipper verify: {e}", file=sys.stderr)
        return EXIT_USAGE
    report = v.report()
    if args.json:
        doc = report.to_dict()
        doc["notes"] = notes
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        sys.stdout.write(render(report, notes, verbose=args.verbose))
    return EXIT_OK if report.ok else EXIT_PROBLEMS


def _agent_state(v: Verifier, cfg: AgentConfig, sink: str | None, args: argparse.Namespace) -> list[str]:
    """Feed the spool's pending rows, the dead letters and (with --heads) the chain heads."""
    notes: list[str] = []
    if args.heads and args.heads != "spool":
        heads = parse_heads_file(Path(args.heads).read_bytes())
        for s, (q, h) in heads.items():
            v.add_anchor(s, q, h, f"heads file {args.heads}")
        notes.append(f"checked against {len(heads)} chain head(s) from {args.heads}")
    if args.no_agent_state:
        if args.heads == "spool":
            raise ValueError("--heads without a file reads the agent's spool; drop --no-agent-state")
        return notes
    if not readers.spool_path(cfg.state_dir).exists():
        if args.heads == "spool":
            raise readers.ReadError(f"--heads: no spool at {readers.spool_path(cfg.state_dir)}")
        notes.append(f"no agent state under {cfg.state_dir}: pending and dead-lettered events cannot explain gaps")
        return notes
    state = readers.read_agent_state(cfg.state_dir, sink)
    for raw in state.pending:
        v.add_known(raw, "pending", "spool")
    dead = 0
    if sink is not None:
        for raw, where in readers.read_dead_letters(cfg.state_dir, sink, on_invalid=v.add_invalid):
            v.add_known(raw, "deadletter", where)
            dead += 1
    if args.heads == "spool":
        for s, (q, h) in state.heads.items():
            v.add_anchor(s, q, h, "the agent's chain heads")
        notes.append(f"checked against the agent's chain heads ({len(state.heads)} stream(s))")
    notes.append(f"agent state {cfg.state_dir}: {len(state.pending)} event(s) pending for sink {sink}, "
                 f"{dead} dead-lettered")
    return notes


def _read_trail(v: Verifier, cfg: AgentConfig, args: argparse.Namespace, sink_cfg: Any, since: int | None,
                until: int | None, margin: int, now: float, notes: list[str]) -> None:
    def unfinished(where: str) -> None:
        notes.append(f"{where}: the last line is still being written; not checked (its event is sealed "
                     "in the spool and will be there whole)")

    if args.input:
        v.add_lines(readers.read_files(args.input))
        return
    query = trails.TrailQuery(sink_cfg, cfg, since, until, margin, now, selector=args.selector,
                               loki_limit=args.loki_limit, es_page=args.es_page, on_unfinished=unfinished,
                               on_invalid=v.add_invalid)
    lines = SINKS.get(args.source).read(query)
    if isinstance(lines, AsyncIterator):
        asyncio.run(_drain(v, lines))
    else:
        v.add_lines(lines)


async def _drain(v: Verifier, lines: AsyncIterator[trails.Line]) -> None:
    async for raw, where in lines:
        v.add(raw, where)


# ---------------------------------------------------------------------------------- rendering
def render(report: Report, notes: list[str], *, verbose: bool = False) -> str:
    out: list[str] = []
    sink = f" from sink {report.sink}" if report.sink else ""
    out.append(f"redis-shipper verify: {report.lines_read} line(s) read{sink}, {len(report.streams)} stream(s)")
    for n in notes:
        out.append(f"  note: {n}")
    for s in report.streams:
        out.extend(_render_stream(s, verbose))
    for bad in report.invalid:
        status = f"ok: {bad.explanation}" if bad.explanation else "PROBLEM"
        out.append(f"line {bad.where}: {bad.reason} [{status}] {bad.excerpt[:80]!r}")
    for stream, rules in sorted(report.dropped.items()):
        counts = ", ".join(f"{r} {n}" for r, n in sorted(rules.items()))
        out.append(f"{stream}: dropped by drop: rules (recorded in the anchors, not gaps): {counts}")
    problems = report.problems()
    if report.ok:
        out.append("VERIFIED: no unexplained gap, conflict or chain break")
    else:
        out.append(f"NOT VERIFIED: {len(problems)} unexplained problem(s)")
        for p in problems:
            out.append(f"  - {p}")
    return "\n".join(out) + "\n"


def _render_stream(s: StreamReport, verbose: bool) -> list[str]:
    seqs = f"seq {s.first_seq}..{s.last_seq}" if s.first_seq is not None else "no event"
    out = [f"{s.stream}: {s.events} event(s) checked, {seqs}, {s.lines} line(s) -- {'OK' if s.ok else 'PROBLEMS'}"]
    for n in s.notes:
        out.append(f"    note: {n}")
    for gap in s.gaps:
        rng = str(gap.first) if gap.first == gap.last else f"{gap.first}..{gap.last}"
        out.append(f"    gap seq {rng} ({gap.count}): {gap.explanation or 'UNEXPLAINED'}")
    same = [d for d in s.duplicates if d.identical]
    if same:
        shown = ", ".join(str(d.seq) for d in same[:20]) + (" ..." if len(same) > 20 else "")
        out.append(f"    {len(same)} seq(s) delivered more than once with identical bytes "
                   f"(at-least-once replays, harmless): {shown}")
    for d in s.duplicates:
        if not d.identical:
            g = f"; copy #{d.genuine + 1} is the one that chains" if d.genuine is not None else ""
            out.append(f"    CONFLICT seq {d.seq}: {d.copies} copies with different bytes at "
                       f"{', '.join(d.where[:4])}{g}")
        elif verbose:
            out.append(f"    duplicate seq {d.seq}: {', '.join(d.where[:4])}")
    for b in s.breaks:
        out.append(f"    BREAK at seq {b.seq} ({b.where}): {b.diagnosis}")
    if s.altered:
        out.append(f"    altered: seq {', '.join(map(str, s.altered))}")
    if s.reordered:
        out.append("    reordered: " + ", ".join(f"seq {a} (sealed as {b})" for a, b in s.reordered))
    for q in s.not_canonical:
        out.append(f"    seq {q}: not the canonical encoding (re-encoded or edited)")
    for p in s.anchor_problems:
        out.append(f"    ANCHOR {p}")
    if s.anchors_checked:
        out.append(f"    {s.anchors_checked} anchor(s) checked")
    if s.unverified_links:
        out.append(f"    {s.unverified_links} link(s) not checkable (predecessor missing)")
    declared = s.declared if verbose else s.declared[:20]
    for dg in declared:
        out.append(f"    declared seq {dg.seq} {dg.event} at {dg.timestamp}: {dg.message}")
    if len(s.declared) > len(declared):
        out.append(f"    ... {len(s.declared) - len(declared)} more declared gap(s) (-v)")
    return out
