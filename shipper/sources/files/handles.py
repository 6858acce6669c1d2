"""Files opened during a scan: the descriptor is taken first, so the identity (dev, inode,
first bytes) we decide on cannot change under us between the decision and the first read."""

from __future__ import annotations

import os
from dataclasses import dataclass

from .fingerprint import read_head


@dataclass
class OpenedFile:
    """A file found on disk during a scan, opened so its identity cannot change under us."""

    path: str
    live: str
    is_live: bool
    fd: int
    st: os.stat_result
    head: bytes

    @property
    def ident(self) -> tuple[int, int]:
        return (self.st.st_dev, self.st.st_ino)


def open_file(path: str, n: int) -> tuple[int, os.stat_result, bytes] | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        head = read_head(fd, min(n, st.st_size)) if st.st_size else b""
    except OSError:
        os.close(fd)
        return None
    return fd, st, head


def close_fd(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def last_line_start(fd: int, size: int) -> int:
    """Offset just after the last newline before ``size`` (``start_at: end`` must not begin
    in the middle of a half-written line)."""
    window = min(size, 1 << 16)
    if window <= 0:
        return 0
    tail = os.pread(fd, window, size - window)
    nl = tail.rfind(b"\n")
    return size - window + nl + 1 if nl >= 0 else size
