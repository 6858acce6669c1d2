"""Checkpoints: what is durable of each followed byte stream, and how it is stored.

Checkpoint keys are ``file:<source hash>:<dev>:<ino>:<head checksum at birth>``, one per
byte stream; the value (:class:`Record`) says where the stream is now (dev, ino, path) and
how far it is durable. A second kind of key, ``file:<source hash>:live:<path hash>``, marks a
live path this source has followed: after a restart, an unknown rotated sibling of such a
path is new data, while at the very first start it is history from before the agent.

A :class:`Record` is the single owner of a stream's identity and place (origin, live path,
path, dev, inode, head): the open :class:`~shipper.sources.files.follower.Stream` holds a
reference to its record and reads and moves these fields there, so what is checkpointed is
always where the stream really is. The stream owns what only an open file has (descriptor,
splitter, parser, the head's bytes as read); ``offset`` and ``size`` are written into the
record from the stream just before each emit (``RunState._sync_record``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from .fingerprint import Head, head_hash

log = logging.getLogger(__name__)


@dataclass
class Record:
    """The checkpoint of one byte stream (the JSON value stored under its key)."""

    origin: str
    live: str  # the live path this stream belongs to (redis.log for redis.log.1)
    path: str  # where the stream's bytes were last seen
    dev: int
    ino: int
    head_len: int
    head: str
    offset: int  # every byte before this is durable (in the spool) as events
    size: int  # file size last seen: what a data_gap can name as lost
    #: the ``head_len`` first bytes themselves, hex ("" when unknown: older checkpoints). The
    #: checksum cannot recognise a copytruncate copy shorter than the head (we had read lines
    #: written after the copy); these bytes can, after a restart too.
    start: str = ""

    def set_head(self, head: bytes) -> None:
        """The stream's first bytes are now ``head``: its length, checksum and bytes together."""
        self.head_len = len(head)
        self.head = head_hash(head)
        self.start = head.hex()

    def progress(self) -> tuple[int, str, int, int, int, str]:
        """What of this record must reach the spool even in a batch without events: the
        offset, where the stream is (path, dev, inode), how long its known head is, its origin."""
        return (self.offset, self.path, self.dev, self.ino, self.head_len, self.origin)

    def start_bytes(self) -> bytes | None:
        if len(self.start) != 2 * self.head_len:
            return None
        try:
            return bytes.fromhex(self.start)
        except ValueError:
            return None

    def holds_start_of(self, head: bytes) -> bool:
        """A file whose first bytes are ``head`` starts like this stream (see ``state.holds_start_of``)."""
        if self.head_len and self.fingerprint.matches(head):
            return True
        if not head or len(head) >= self.head_len:
            return False
        start = self.start_bytes()
        return start is not None and start.startswith(head)

    def value(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_value(cls, value: Any) -> Record | None:
        try:
            return cls(
                origin=str(value["origin"]),
                live=str(value["live"]),
                path=str(value["path"]),
                dev=int(value["dev"]),
                ino=int(value["ino"]),
                head_len=int(value["head_len"]),
                head=str(value["head"]),
                offset=int(value["offset"]),
                size=int(value["size"]),
                start=str(value.get("start", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None

    @property
    def fingerprint(self) -> Head:
        return Head(self.head_len, self.head)


def live_marker_key(prefix: str, live: str) -> str:
    """The key that marks ``live`` as followed by the source whose keys start with ``prefix``."""
    digest = hashlib.blake2b(live.encode("utf-8", "surrogateescape"), digest_size=8).hexdigest()
    return f"{prefix}live:{digest}"


def load_checkpoints(positions: Mapping[str, Any], prefix: str) -> tuple[dict[str, Record], set[str]]:
    """The records and the followed live paths stored under ``prefix`` (other keys belong to
    other sources). An unreadable record is logged and ignored: its file is then new to us."""
    records: dict[str, Record] = {}
    marked: set[str] = set()
    for key, value in positions.items():
        if not key.startswith(prefix):
            continue
        if key.startswith(prefix + "live:"):
            if isinstance(value, dict) and isinstance(value.get("live"), str):
                marked.add(value["live"])
            continue
        rec = Record.from_value(value)
        if rec is None:
            log.warning("ignoring unreadable checkpoint %s: %r", key, value)
            continue
        records[key] = rec
    return records, marked
