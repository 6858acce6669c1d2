"""File identity: device + inode + a checksum of the first bytes.

Why not the inode alone: ext4 and xfs hand a freed inode number to the next file created,
so after ``rm redis.log`` (or a rotation that deletes the oldest file) a brand-new log can
carry the inode of one we have a checkpoint for. Trusting that checkpoint would seek into
the middle of the new file and skip its first lines (pygtail does exactly this, see
docs/follower.md). The head checksum tells the two files apart.

Why not the checksum alone: two files can start with the same bytes (a ``copy`` of a log,
or the copytruncate copy ``redis.log.1``), and those must be told apart from the live file
when both exist. So the identity of a byte stream we follow is the triple, and matching is
done in two steps (see :mod:`shipper.sources.files.source`):

1. *exact*: same device, same inode, same head bytes -> the same file, wherever it moved.
2. *content*: same head bytes on another inode -> a copy of the stream (copytruncate's
   rotated copy continues the stream we were reading; its bytes are the same up to the
   point where the copy was taken).

Files shorter than the fingerprint size: the head is whatever bytes exist, and we remember
how many (``head_len``). A stored head matches a file when the file's first ``head_len``
bytes hash the same; the stored head is extended as the file grows, up to ``fingerprint_bytes``.
An empty file has no identity yet: it cannot be confused with anything, and nothing in it
needs a checkpoint.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass


def head_hash(head: bytes) -> str:
    """Checksum of a file's first bytes (blake2b, 64 bits: collisions are not a concern at
    the scale of one host's log files, and the comparison also needs the same length)."""
    return hashlib.blake2b(head, digest_size=8).hexdigest()


def read_head(fd: int, n: int) -> bytes:
    """The first ``n`` bytes of an open file (fewer if the file is shorter)."""
    out = b""
    while len(out) < n:
        chunk = os.pread(fd, n - len(out), len(out))
        if not chunk:
            break
        out += chunk
    return out


@dataclass(frozen=True)
class Head:
    """What we know of a stream's first bytes: how many, and their checksum."""

    length: int
    digest: str

    @classmethod
    def of(cls, head: bytes) -> Head:
        return cls(len(head), head_hash(head))

    def matches(self, head: bytes) -> bool:
        """True when ``head`` (a file's first bytes, at least as many as we know) starts with
        the bytes this Head describes."""
        if len(head) < self.length:
            return False
        return head_hash(head[: self.length]) == self.digest


def make_origin(dev: int, ino: int, head: bytes) -> str:
    """The stable name of a byte stream, used in event ids (``event_id(origin, offset)``).

    It is computed once, when the stream is first seen, and then carried in the checkpoint,
    so replays after a crash and the copytruncate copy (found through its head) reuse it.
    It is deterministic from the file itself, so re-reading a file after the state dir was
    lost yields the same ids and Elasticsearch drops the duplicates.
    """
    return f"{dev}:{ino}:{head_hash(head)}"


def gzip_head_and_size(path: str, n: int) -> tuple[bytes, int] | None:
    """First ``n`` uncompressed bytes of a gzip file and its uncompressed size.

    A rotated file that logrotate already compressed cannot be followed, but it can still
    be *recognised*: its first bytes tell which stream it was, and the gzip trailer
    (ISIZE, the size modulo 2**32) says how many bytes it held, so a ``data_gap`` can name
    the exact byte range we never read. Returns ``None`` when the file is not readable gzip.
    """
    try:
        with open(path, "rb") as f:
            f.seek(-4, os.SEEK_END)
            (isize,) = struct.unpack("<I", f.read(4))
        with gzip.open(path, "rb") as g:
            head = g.read(n)
    except (OSError, EOFError, zlib.error, struct.error):
        return None
    return head, isize
