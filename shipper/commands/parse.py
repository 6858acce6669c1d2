"""``redis-shipper parse``: Redis / Valkey / Sentinel log files -> JSON Lines events on stdout.

The same parser the agent runs (:class:`parsers.logfile.LogParser`), over whole files, so a
user can see exactly what the agent would ship before shipping anything::

    redis-shipper parse sample-logs/redis-7.0/*.log | jq -c '{event, fields}'

Files are read in chunks (a multi-gigabyte log is fine); a line longer than
``--max-line-bytes`` is cut while reading, never held whole. A file that cannot be read is
reported on stderr and the exit status is 1, after every readable file has been parsed.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, tzinfo
from typing import BinaryIO

from parsers.events import dumps
from parsers.logfile import KINDS, LogParser

from ..util.tz import host_timezone, parse_timezone

CHUNK = 1 << 20


def _timezone_arg(name: str) -> tzinfo:
    try:
        return parse_timezone(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def iter_lines(f: BinaryIO, max_line_bytes: int) -> Iterator[tuple[bytes, int, int, bool]]:
    """(line without ``\\n``, offset, bytes cut, partial) for each line of a binary stream.

    Keeps at most ``max_line_bytes + 1`` bytes of a line (the extra byte lets a trailing
    ``\\r`` of a line exactly at the limit be stripped by the parser instead of counted as cut).
    """
    keep = max_line_bytes + 1
    offset = 0  # file offset of the current line
    parts: list[bytes] = []
    have = 0  # bytes kept of the current line
    cut = 0
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            break
        start = 0
        n = len(chunk)
        while start < n:
            nl = chunk.find(b"\n", start)
            end = n if nl < 0 else nl
            piece_len = end - start
            if have + piece_len <= keep:
                if not parts and nl >= 0:
                    line = chunk[start:end]  # the common case: the whole line is in this chunk
                    yield line, offset, 0, False
                    offset += piece_len + 1
                    start = nl + 1
                    continue
                parts.append(chunk[start:end])
                have += piece_len
            else:
                room = keep - have
                if room > 0:
                    parts.append(chunk[start : start + room])
                    have += room
                cut += piece_len - max(room, 0)
            if nl < 0:
                break
            line = b"".join(parts)
            yield line, offset, cut, False
            offset += len(line) + cut + 1
            parts, have, cut = [], 0, 0
            start = nl + 1
    if parts or cut:
        yield b"".join(parts), offset, cut, True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="log files to parse; - reads stdin")
    parser.add_argument(
        "--timezone",
        type=_timezone_arg,
        default=None,
        metavar="TZ",
        help="zone of the local timestamps Redis writes (IANA name or +HH:MM; default: the host's zone)",
    )
    parser.add_argument(
        "--year",
        type=int,
        default=None,
        help="year of timestamps that carry none (Redis < 5.0); default: from the file's modification time",
    )
    parser.add_argument(
        "--format",
        choices=KINDS,
        default="auto",
        help="auto: Sentinel if the lines say so (role X / role=sentinel), else Redis",
    )
    parser.add_argument(
        "--max-line-bytes",
        type=int,
        default=1 << 20,
        metavar="N",
        help="cut longer lines (the event says how many bytes were cut); default 1 MiB",
    )


def _parse_stream(f: BinaryIO, out: BinaryIO, parser: LogParser, max_line_bytes: int) -> None:
    batch: list[bytes] = []
    feed = parser.feed
    for line, offset, cut, partial in iter_lines(f, max_line_bytes):
        if cut or partial:
            evs = feed(line, offset, cut_bytes=cut, partial=partial)
        else:
            evs = feed(line, offset)
        for ev in evs:
            batch.append(dumps(ev))
        if len(batch) >= 4096:
            batch.append(b"")
            out.write(b"\n".join(batch))
            batch = []
    for ev in parser.flush():
        batch.append(dumps(ev))
    if batch:
        batch.append(b"")
        out.write(b"\n".join(batch))


def main(args: argparse.Namespace) -> int:
    tz = args.timezone if args.timezone is not None else host_timezone()
    if args.max_line_bytes < 1:
        print("redis-shipper parse: --max-line-bytes must be at least 1", file=sys.stderr)
        return 2
    out = sys.stdout.buffer
    status = 0
    for name in args.files:
        try:
            if name == "-":
                f: BinaryIO = sys.stdin.buffer
                reference = datetime.now(UTC)
            else:
                f = open(name, "rb")  # noqa: SIM115 - closed below
                reference = datetime.fromtimestamp(os.fstat(f.fileno()).st_mtime, UTC)
        except OSError as e:
            print(f"redis-shipper parse: cannot read {name}: {e.strerror or e}", file=sys.stderr)
            status = 1
            continue
        parser = LogParser(
            kind=args.format, tz=tz, reference_time=reference, year=args.year, max_line_bytes=args.max_line_bytes
        )
        try:
            _parse_stream(f, out, parser, args.max_line_bytes)
        except OSError as e:
            if isinstance(e, BrokenPipeError):
                raise
            print(f"redis-shipper parse: error reading {name}: {e.strerror or e}", file=sys.stderr)
            status = 1
            for ev in parser.flush():
                out.write(dumps(ev) + b"\n")
        finally:
            if f is not sys.stdin.buffer:
                f.close()
        out.flush()
    return status
