"""Which files a ``type: file`` source covers: the live files (a path or a glob) and, for each
live file, its rotated siblings (``redis.log.1``, ``redis.log-20261125``, ``redis.log.2.gz``).

Rotated files matter in two moments. While the agent runs, a rename rotation is followed
through the open file descriptor, so the names only label events and let a closed, drained
file be found again. After a restart, the rotated names are where the unread end of a file
we were following can be found (renamed while the agent was down), where a copytruncate copy
holding the rest of our stream sits, and, when compressed, the proof that data was lost
(``data_gap``).

Patterns are relative to the live file's directory; ``{name}`` is the live file's base name.
Matching lists the directory once and uses ``fnmatch`` on the names, so a poll costs one
``listdir`` per directory whatever the number of patterns.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import stat

#: suffixes of compressed files: never read, only recognised (see fingerprint.py)
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z")

#: used when the config does not set ``rotated_patterns``: numbered (``.0`` .. ``.99``:
#: savelog, logrotate) and dateext (``-20261125``, ``-2026112513``, ``-20261125-1764072000``),
#: and logrotate's ``-2026112513.backup``: in ``create`` mode, when the writer recreated the log
#: between logrotate's rename and its create (Redis reopens its log for every line), logrotate
#: renames that file to this name ("destination ... already exists") and creates a new one; the
#: lines in it are read like any rotated file's, or they would be lost
DEFAULT_ROTATED_PATTERNS = (
    "{name}.[0-9]",
    "{name}.[0-9]*[0-9]",
    "{name}-[0-9]*[0-9]",
    "{name}-[0-9]*[0-9].backup",
)

_NUM_SUFFIX = re.compile(r"(\d+)$")


def is_compressed(path: str) -> bool:
    return path.endswith(COMPRESSED_SUFFIXES)


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _listdir(d: str) -> list[str]:
    try:
        return os.listdir(d or ".")
    except OSError:
        return []


def _name_patterns(name: str, patterns: list[str] | tuple[str, ...]) -> list[str]:
    escaped = glob.escape(name)
    return [p.replace("{name}", escaped) for p in patterns]


def siblings(
    live: str, patterns: list[str] | tuple[str, ...], *, compressed: bool = False
) -> list[str]:
    """Rotated files of ``live``, oldest first (the order to finish them in).

    ``compressed=False``: the readable (uncompressed) ones; ``True``: only the compressed ones.
    """
    d, name = os.path.split(live)
    pats = _name_patterns(name, patterns)
    out = []
    for entry in _listdir(d):
        if entry == name:
            continue
        if compressed:
            if not is_compressed(entry):
                continue
            base = entry
            for suffix in COMPRESSED_SUFFIXES:
                if base.endswith(suffix):
                    base = base[: -len(suffix)]
                    break
        else:
            if is_compressed(entry):
                continue
            base = entry
        if any(fnmatch.fnmatchcase(base, p) for p in pats):
            full = os.path.join(d, entry)
            if _is_regular(full):
                out.append(full)
    return sort_oldest_first(out)


def expand(pattern: str, rotated_patterns: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Live files matching a configured path or glob, sorted.

    A broad glob (``/var/log/redis/*``) also matches rotated and compressed files; those
    are not live files (they are followed as rotated siblings), so they are left out.
    """
    if not glob.has_magic(pattern):
        return [pattern] if _is_regular(pattern) else []
    found = sorted(p for p in glob.glob(pattern) if not is_compressed(p) and _is_regular(p))
    rotated: set[str] = set()
    for p in found:
        rotated.update(siblings(p, rotated_patterns))
    return [p for p in found if p not in rotated]


def sort_oldest_first(paths: list[str]) -> list[str]:
    """Oldest modification time first; on a tie the higher rotation number first
    (``.3`` is older than ``.2``), then by name (dateext names sort by date)."""

    def key(p: str) -> tuple[float, int, str]:
        try:
            mtime = os.stat(p).st_mtime
        except OSError:
            mtime = 0.0
        base = p
        for suffix in COMPRESSED_SUFFIXES:
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        m = _NUM_SUFFIX.search(base)
        num = int(m.group(1)) if m and len(m.group(1)) < 6 else 0  # .1 .2 ...; dates sort by name
        return (mtime, -num, p)

    return sorted(paths, key=key)


def watch_dirs(pattern: str) -> tuple[str, bool]:
    """The directory to watch for a path or glob, and whether it must be watched recursively
    (only when the directory part itself has glob metacharacters)."""
    d = os.path.dirname(os.path.abspath(pattern))
    parts = d.split(os.sep)
    fixed: list[str] = []
    for part in parts:
        if glob.has_magic(part):
            return os.sep.join(fixed) or os.sep, True
        fixed.append(part)
    return d, False
