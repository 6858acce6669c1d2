"""``redis-shipper events``: read the trail back from the local sink, with filters.

For users without Loki or Elasticsearch: the embedded local sink keeps JSON Lines under
``state_dir/events``; this command filters them by time, category, event name, instance,
source and level, and prints one readable line per event (or the raw JSON with ``--json``).

A line that is not one event (a fragment a full disk or a crash left) is never skipped
silently: the command says on stderr how many such lines there were and where the first one is
(``--follow``: each as it comes). A torn write, a fragment with the whole event appended after
it, still gives its event, which is printed: exit 0. A line that gives no event means the output
misses one: exit 1, so a script reading ``events --json`` knows it did not get the whole trail.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from ..audit.readers import split_torn
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


def _lines(directory: Path, follow: bool) -> Iterator[tuple[bytes, str]]:
    """Each complete line of the local sink's files, oldest first, with ``file:line``."""
    seen: dict[Path, tuple[int, int]] = {}  # path -> (bytes read, lines read)
    while True:
        for path in event_files(directory):
            offset, count = seen.get(path, (0, 0))
            try:
                with open(path, "rb") as f:
                    f.seek(offset)
                    data = f.read()
            except FileNotFoundError:
                continue
            end = data.rfind(b"\n") + 1  # a line still being written is read once complete
            lines = data[:end].splitlines()
            seen[path] = (offset + end, count + len(lines))
            for n, line in enumerate(lines, count + 1):
                yield line, f"{path.name}:{n}"
        if not follow:
            return
        time.sleep(0.5)


class Unparsable:
    """Lines of the trail that are not one event: counted, the first one's place kept, reported.

    A torn line (a fragment of a write cut short, with the whole event appended after it) still
    gives its event, which is printed; a line that gives none means an event this command could
    not show.
    """

    def __init__(self) -> None:
        self.torn = 0
        self.lost = 0
        self.first: str | None = None

    def add(self, where: str, follow: bool, *, recovered: bool) -> None:
        if recovered:
            self.torn += 1
        else:
            self.lost += 1
        self.first = self.first or where
        if follow:  # no end to report at: say it as it happens
            what = "a torn write, the event after the fragment printed" if recovered else \
                "not a JSON event, skipped"
            print(f"redis-shipper: {where}: {what}", file=sys.stderr, flush=True)

    def report(self) -> None:
        parts = []
        if self.lost:
            parts.append(f"{self.lost} line(s) are not JSON events and were not printed")
        if self.torn:
            parts.append(f"{self.torn} line(s) are torn writes (a fragment before a whole event: the event was "
                         "printed)")
        print(f"redis-shipper: {'; '.join(parts)} (first at {self.first}); `redis-shipper verify` tells whether "
              "each event is in the trail whole", file=sys.stderr)


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
    bad = Unparsable()
    for line, where in _lines(directory, args.follow):
        if not line.strip():
            continue
        try:
            ev = orjson.loads(line)
        except orjson.JSONDecodeError:
            ev = None
        if not isinstance(ev, dict):
            torn = split_torn(line)
            bad.add(where, args.follow, recovered=torn is not None)
            if torn is None:
                continue
            line = line[len(torn[0]):]
            ev = torn[1]
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
    if bad.first is not None:
        bad.report()
    return 1 if bad.lost else 0
