"""pygtail 0.14 against a plain read loop and our follower: speed, invalid UTF-8, copytruncate.

    python bench/pygtail_compare.py [--mib 200]

Measures, on one file of real Redis log lines (sample-logs/, repeated):

1. speed: a plain binary ``for line in f`` loop (the baseline), pygtail's default iteration,
   pygtail ``with_offsets()`` (its at-least-once mode), and our follower's Stream with a
   no-op parser (the same work: lines + offsets), each as lines/s and the ratio to the loop;
2. invalid UTF-8: a file with one ``\\xff`` byte in its 3rd line, read twice by pygtail
   (with its offset file) and once by our follower;
3. copytruncate in a long-lived reader: pygtail reads a file, the file is copied and
   truncated, refilled past the old offset, and read again.

Prints the numbers; docs/follower.md cites them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pygtail import Pygtail  # noqa: E402

from shipper.sources.files.checkpoint import Record  # noqa: E402
from shipper.sources.files.follower import Stream  # noqa: E402


def sample_lines() -> list[bytes]:
    lines: list[bytes] = []
    for p in sorted((ROOT / "sample-logs").glob("*/*.log")):
        lines.extend(x + b"\n" for x in p.read_bytes().splitlines() if x)
    return lines


def build(path: Path, nbytes: int) -> int:
    lines = sample_lines()
    block = b"".join(line for line in lines if b"\xff" not in line)
    try:
        block.decode("utf-8")
    except UnicodeDecodeError:
        block = b"".join(line for line in lines if _utf8(line))
    n = 0
    with open(path, "wb") as f:
        written = 0
        while written < nbytes:
            f.write(block)
            written += len(block)
            n += block.count(b"\n")
    return n


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


class NoParser:
    """Counts lines; makes no events (isolates the follower's own cost)."""

    pending_offset = None

    def __init__(self) -> None:
        self.n = 0

    def feed(self, line: bytes, offset: int, *, cut_bytes: int = 0, partial: bool = False) -> list:
        self.n += 1
        return []

    def flush(self) -> list:
        return []


def time_it(fn) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    n = fn()
    return time.perf_counter() - t0, n


def plain_loop(path: Path) -> int:
    n = 0
    with open(path, "rb") as f:
        for _ in f:
            n += 1
    return n


def text_readline(path: Path) -> int:
    n = 0
    with open(path, encoding="utf-8") as f:
        while f.readline():
            n += 1
    return n


def pygtail_default(path: Path, tmp: Path) -> int:
    off = tmp / "pyg.offset"
    off.unlink(missing_ok=True)
    n = 0
    for _ in Pygtail(str(path), offset_file=str(off)):
        n += 1
    return n


def pygtail_offsets(path: Path, tmp: Path) -> int:
    off = tmp / "pyg2.offset"
    off.unlink(missing_ok=True)
    t = Pygtail(str(path), offset_file=str(off), save_on_end=False, copytruncate=False)
    n = 0
    last = None
    for _line, offset in t.with_offsets():
        n += 1
        last = offset
    if last is not None:
        t.write_offset_to_file(last)
    return n


def follower(path: Path) -> int:
    fd = os.open(path, os.O_RDONLY)
    parser = NoParser()
    s = Stream(key="k", record=Record("o", str(path), str(path), 0, 0, 0, "", 0, 0), fd=fd,
               parser=parser, max_line_bytes=1 << 20, read_chunk=1 << 20, fingerprint_bytes=256)
    try:
        while True:
            r = s.read_batch(1 << 30, now=0.0, partial_timeout=5, idle_flush=1)
            if not r.more:
                break
    finally:
        os.close(fd)
    return parser.n


def invalid_utf8(tmp: Path) -> None:
    print("\n== invalid UTF-8 (one \\xff byte in line 3 of 5) ==")
    p = tmp / "bad.log"
    p.write_bytes(b"1:M 25 Nov 2026 17:00:00.000 * line 1\n1:M 25 Nov 2026 17:00:00.001 * line 2\n"
                  b"1:M 25 Nov 2026 17:00:00.002 * bad \xff byte\n1:M 25 Nov 2026 17:00:00.003 * line 4\n"
                  b"1:M 25 Nov 2026 17:00:00.004 * line 5\n")
    off = tmp / "bad.offset"
    for attempt in (1, 2):
        got = []
        try:
            for line in Pygtail(str(p), offset_file=str(off), encoding="utf-8"):
                got.append(line.rstrip("\n")[-6:])
            print(f"pygtail run {attempt}: lines {got}")
        except UnicodeDecodeError as e:
            saved = off.read_text().split() if off.exists() and off.stat().st_size else None
            print(f"pygtail run {attempt}: UnicodeDecodeError after {len(got)} lines ({e.reason}); "
                  f"offset file: {saved} -> the next run starts from the same place and fails again")
    fd = os.open(p, os.O_RDONLY)
    events: list[str] = []

    class Collect(NoParser):
        def feed(self, line: bytes, offset: int, *, cut_bytes: int = 0, partial: bool = False) -> list:
            events.append(line.decode("utf-8", "replace")[-10:])
            return []

    s = Stream(key="k", record=Record("o", str(p), str(p), 0, 0, 0, "", 0, 0), fd=fd,
               parser=Collect(), max_line_bytes=1 << 20, read_chunk=1 << 20, fingerprint_bytes=256)
    s.read_batch(100, now=0.0, partial_timeout=5, idle_flush=1)
    os.close(fd)
    print(f"follower: {len(events)} lines: {events}")


def copytruncate_long_lived(tmp: Path) -> None:
    print("\n== copytruncate with a long-lived pygtail reader ==")
    p = tmp / "ct.log"
    off = tmp / "ct.offset"
    p.write_bytes(b"".join(b"first-generation-line-%03d\n" % i for i in range(10)))
    t = Pygtail(str(p), offset_file=str(off))
    first = [x.rstrip("\n") for x in t]
    shutil.copyfile(p, tmp / "ct.log.1")
    with open(p, "r+b") as f:
        f.truncate(0)
    with open(p, "ab") as f:
        f.write(b"".join(b"second-generation-much-longer-line-%03d\n" % i for i in range(10)))
    second = [x.rstrip("\n") for x in t]
    print(f"pygtail read {len(first)} lines, then after copytruncate + regrowth: {second[:2]} ...")
    print(f"  ({len(second)} lines; the first of them starts mid-line: {not second[0].startswith('second')})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mib", type=int, default=200, help="size of the speed-test file (MiB)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pygtail-bench-"))
    try:
        path = tmp / "redis.log"
        n = build(path, args.mib << 20)
        size = path.stat().st_size
        print(f"file: {size / 2**20:.0f} MiB, {n} lines of real Redis/Valkey/Sentinel log (sample-logs/), "
              "page cache warm")
        plain_loop(path)  # warm the page cache
        rows = []
        for name, fn in [
            ("plain binary `for line in f`", lambda: plain_loop(path)),
            ("plain text `readline()` loop", lambda: text_readline(path)),
            ("our follower (Stream.read_batch, no-op parser)", lambda: follower(path)),
            ("pygtail default iteration", lambda: pygtail_default(path, tmp)),
            ("pygtail with_offsets() (at-least-once mode)", lambda: pygtail_offsets(path, tmp)),
        ]:
            secs, got = time_it(fn)
            assert got == n, (name, got, n)
            rows.append((name, secs, got))
        base, text = rows[0][1], rows[1][1]
        print(f"\n{'reader':50} {'seconds':>8} {'lines/s':>12} {'MB/s':>8} {'vs binary loop':>15} "
              f"{'vs readline':>12}")
        for name, secs, got in rows:
            print(f"{name:50} {secs:8.2f} {got / secs:12,.0f} {size / secs / 1e6:8.1f} {secs / base:14.1f}x "
                  f"{secs / text:11.1f}x")
        invalid_utf8(tmp)
        copytruncate_long_lived(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
