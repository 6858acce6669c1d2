"""Following log files: identity (fingerprint), names (paths), change hints (watcher),
bytes to lines (reader), one stream (follower), and the source with its checkpoints (source)."""

from .source import FileSource

__all__ = ["FileSource"]
