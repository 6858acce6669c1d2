"""``redis-shipper events``: read the trail back from the local sink, with filters.

For users without Loki or Elasticsearch: the embedded local sink keeps JSON Lines under
``state_dir/events``; this command filters them by time, category, event name, instance,
source and level, and prints one readable line per event (or the raw JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from ..config import ConfigError, LocalSinkConfig, load_config
from ..sinks.local import event_files, local_dir
from ..util.tz import ns_to_rfc3339, parse_when


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help="agent config (to find state_dir and the local sink)")
    parser.add_argument("--state-dir", help="state directory (default ./state, or the config's)")
    parser.add_argument("--since", help="only events newer than this: a duration (1h, 30m) or an RFC 3339 time")
    parser.add_argument("--until", help="only events older than this: a duration ago or an RFC 3339 time")
    parser.add_argument("--category", action="append", help="e.g. failover, replication (repeatable)")
    parser.add_argument("--event", action="append", help="event name, e.g. sentinel_switch_master (repeatable)")
    parser.add_argument("--source", action="append", help="redis, sentinel, slowlog, latency, acl, config, agent")
    parser.add_argument("--level", action="append", help="debug, verbose, notice, warning")
    parser.add_argument("--instance", action="append", help="the instance label (as in redis_exporter's metrics)")
    parser.add_argument("--grep", help="substring of the message")
    parser.add_argument("--limit", type=int, help="print at most N events (the newest N)")
    parser.add_argument("--json", action="store_true", help="print the events as JSON Lines, byte for byte")
    parser.add_argument("--follow", "-f", action="store_true", help="keep printing new events")


def _when(value: str, now: float) -> str:
    """A duration ago or an RFC 3339 time -> a comparable RFC 3339 UTC string."""
    return ns_to_rfc3339(parse_when(value, now))


def _lines(directory: Path, follow: bool) -> Iterator[bytes]:
    seen: dict[Path, int] = {}
    while True:
        for path in event_files(directory):
            try:
                with open(path, "rb") as f:
                    f.seek(seen.get(path, 0))
                    data = f.read()
            except FileNotFoundError:
                continue
            end = data.rfind(b"\n") + 1
            seen[path] = seen.get(path, 0) + end
            yield from data[:end].splitlines()
        if not follow:
            return
        time.sleep(0.5)


def format_text(ev: dict) -> str:
    labels = ev.get("labels") or {}
    inst = labels.get("instance") or ev.get("host") or "-"
    msg = ev.get("message", "").split("\n", 1)[0]
    if len(msg) > 300:
        msg = msg[:300] + "..."
    return (f"{ev.get('timestamp', '?')}  {inst}  {ev.get('source', '?')}/{ev.get('category', '?')}  "
            f"{ev.get('event', '?')}  {ev.get('level', '?')}  {msg}")


def main(args: argparse.Namespace) -> int:
    state_dir = args.state_dir or "./state"
    local_cfg: LocalSinkConfig | None = None
    if args.config:
        try:
            cfg = load_config(args.config)
        except ConfigError as e:
            print(f"redis-shipper: invalid config\n{e}", file=sys.stderr)
            return 2
        state_dir = args.state_dir or cfg.state_dir
        local_cfg = next((s for s in cfg.sinks if s.type == "local"), None)
    directory = local_dir(local_cfg, state_dir)
    if not directory.is_dir():
        print(f"redis-shipper: no local events under {directory} (is the local sink configured, "
              f"and is this the right --state-dir?)", file=sys.stderr)
        return 1
    now = time.time()
    try:
        since = _when(args.since, now) if args.since else None
        until = _when(args.until, now) if args.until else None
    except ValueError as e:
        print(f"redis-shipper: {e}", file=sys.stderr)
        return 2
    cats = set(args.category or [])
    names = set(args.event or [])
    sources = set(args.source or [])
    levels = set(args.level or [])
    insts = set(args.instance or [])
    out: list[str] = []
    for line in _lines(directory, args.follow):
        try:
            ev = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        ts = ev.get("timestamp", "")
        if (since and ts < since) or (until and ts > until):
            continue
        if (cats and ev.get("category") not in cats) or (names and ev.get("event") not in names):
            continue
        if (sources and ev.get("source") not in sources) or (levels and ev.get("level") not in levels):
            continue
        if insts and (ev.get("labels") or {}).get("instance") not in insts:
            continue
        if args.grep and args.grep not in ev.get("message", ""):
            continue
        text = line.decode("utf-8", "replace") if args.json else format_text(ev)
        if args.follow or args.limit is None:
            print(text, flush=args.follow)
        else:
            out.append(text)
            if len(out) > args.limit * 2:
                del out[: len(out) - args.limit]
    if args.limit is not None and not args.follow:
        for text in out[-args.limit:]:
            print(text)
    return 0
