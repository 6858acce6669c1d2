"""Test harness for the file follower (no tests here): a stand-in for the runtime's
``emit`` contract, a one-event-per-line parser, and a background agent that can be stopped,
SIGKILL-like cancelled, or crashed inside ``emit``.

The fake runtime commits a batch's events and positions together, as the spool does in one
SQLite transaction, so "what the agent knows after a restart" is exactly ``committed``.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

from parsers.events import Event, make_event
from shipper.api import Batch, SourceContext
from shipper.config import FileSourceConfig
from shipper.sources.files import FileSource


class Crash(Exception):
    """Raised by the fake runtime's emit to simulate the agent dying before a commit."""


class OneEventPerLine:
    """The LogParser contract with no multi-line assembly: every line is one event, so a
    test can say exactly which lines must arrive."""

    pending_offset: int | None = None

    def __init__(self, mtime: float | None = None):
        self.mtime = mtime

    def feed(self, line: bytes, offset: int, *, cut_bytes: int = 0, partial: bool = False) -> list[Event]:
        return [
            make_event(
                timestamp="2026-11-25T00:00:00.000000Z",
                source="redis",
                category="other",
                event="line",
                message=line.decode("utf-8", "replace"),
                fields={"cut_bytes": cut_bytes, "partial": partial, "raw_len": len(line)},
                offset=offset,
            )
        ]

    def flush(self) -> list[Event]:
        return []


class FakeRuntime:
    def __init__(self) -> None:
        self.committed: dict[str, Any] = {}
        self.events: list[Event] = []
        self.batches: list[Batch] = []
        self.crash_at: int | None = None  # number of committed batches after which emit raises

    async def emit(self, batch: Batch) -> None:
        if self.crash_at is not None and len(self.batches) >= self.crash_at:
            self.crash_at = None
            raise Crash("simulated crash before commit")
        # one transaction: events and positions become durable together
        self.events.extend(copy.deepcopy(batch.events))
        for k, v in batch.positions.items():
            if v is None:
                self.committed.pop(k, None)
            else:
                self.committed[k] = copy.deepcopy(v)
        self.batches.append(batch)

    def context(self, stop: asyncio.Event, prefix: str) -> SourceContext:
        positions = {k: copy.deepcopy(v) for k, v in self.committed.items() if k.startswith(prefix)}
        return SourceContext(emit=self.emit, positions=positions, stop=stop, state_dir="/nonexistent")

    # views
    def lines(self) -> list[str]:
        return [e["message"] for e in self.events if e.get("event") == "line"]

    def gaps(self) -> list[Event]:
        return [e for e in self.events if e.get("event") == "data_gap"]


def file_config(path: str, **kw: Any) -> FileSourceConfig:
    base: dict[str, Any] = {"type": "file", "path": path, "poll_interval": 0.02, "inotify": False}
    base.update(kw)
    return FileSourceConfig.model_validate(base)


class Agent:
    """A FileSource running in the background against a FakeRuntime."""

    def __init__(
        self,
        cfg: FileSourceConfig,
        runtime: FakeRuntime | None = None,
        *,
        parser_factory: Callable[[float | None], Any] | None = OneEventPerLine,
        **source_kw: Any,
    ):
        self.cfg = cfg
        self.rt = runtime or FakeRuntime()
        self.parser_factory = parser_factory
        self.source_kw = {"rotate_wait": 0.2, "idle_flush": 0.05, **source_kw}
        self.task: asyncio.Task[None] | None = None
        self.stop_event: asyncio.Event | None = None
        self.source: FileSource | None = None

    def source_key_prefix(self) -> str:
        return FileSource(self.cfg, tz=UTC, parser_factory=self.parser_factory).key_prefix

    @property
    def up(self) -> bool:
        return self.task is not None and not self.task.done()

    def start(self) -> None:
        assert not self.up
        self.stop_event = asyncio.Event()
        self.source = FileSource(self.cfg, tz=UTC, parser_factory=self.parser_factory, **self.source_kw)
        self.task = asyncio.get_running_loop().create_task(
            self.source.run(self.rt.context(self.stop_event, self.source.key_prefix))
        )

    async def stop(self) -> None:
        assert self.task is not None and self.stop_event is not None
        self.stop_event.set()
        try:
            await asyncio.wait_for(self.task, 10)
        except Crash:
            pass  # it had died in emit before we asked it to stop
        self.task = None

    async def kill(self) -> None:
        """Like SIGKILL: whatever was not committed is gone."""
        assert self.task is not None
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, Crash):
            pass
        self.task = None

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            if self.task is not None and self.task.done():
                exc = self.task.exception()
                if exc is not None and not isinstance(exc, Crash):
                    raise exc
                if predicate():
                    return True
            await asyncio.sleep(0.01)
        return predicate()
