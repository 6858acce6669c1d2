"""Config of ``type: file`` sources (owned by the file follower)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import Duration, Size, Strict
from .drop import DropRule


class FileSourceConfig(Strict):
    type: Literal["file"]
    #: a path or a glob; several sources may be configured
    path: str
    format: Literal["auto", "redis", "sentinel"] = "auto"
    #: a container runtime's envelope around each line: ``cri`` (containerd, CRI-O, podman
    #: k8s-file), ``docker`` (json-file), ``plain`` (none); ``auto`` decides per file from its first line
    container_format: Literal["auto", "plain", "cri", "docker"] = "auto"
    #: labels of this source's events, over the global ``labels`` (several Redis on one host)
    labels: dict[str, str] = Field(default_factory=dict)
    #: where to start in a file never seen before (a known file always resumes from its checkpoint)
    start_at: Literal["beginning", "end"] = "beginning"
    #: patterns (relative to the live file's name, ``{name}`` = its base name) of rotated files
    #: to finish first after a restart
    rotated_patterns: list[str] = Field(
        default_factory=lambda: ["{name}.[0-9]", "{name}.[0-9]*[0-9]", "{name}-[0-9]*[0-9]",
                                 "{name}-[0-9]*[0-9].backup"]
    )
    #: a renamed-away (rotated) file is still read until it has not grown for this long
    rotate_wait: Duration = 5.0
    #: a pending event (it may still get continuation lines) is shipped after this long without new bytes
    idle_flush: Duration = 1.0
    #: checkpoints of files not seen anywhere for this long are forgotten
    stale_after: Duration = 3600.0
    #: a half-written last line is shipped as is after waiting this long for its newline
    partial_line_timeout: Duration = 5.0
    #: lines longer than this are cut (the event says how many bytes were cut)
    max_line_bytes: Size = 1 << 20
    #: stat() every file at least this often, whatever inotify says (the source of truth)
    poll_interval: Duration = 1.0
    #: use inotify (watchdog) as a wake-up hint; false = poll only (NFS, some overlay mounts)
    inotify: bool = True
    #: bytes read per chunk
    read_chunk: Size = 1 << 20
    #: events per batch handed to the spool
    max_batch_events: int = Field(default=2000, ge=1)
    #: bytes of the file head used to fingerprint it (identity = dev + inode + fingerprint)
    fingerprint_bytes: int = Field(default=256, ge=16)
    #: year for formats without one (Redis < 5.0); default: inferred from the file's mtime
    year: int | None = None
    #: events not to ship (shipper/config/drop.py); counted, never a gap in the audit chain
    drop: list[DropRule] = Field(default_factory=list)
