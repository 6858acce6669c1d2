"""The registries of source and sink types: each type is declared once, here, and everything
that depends on the type reads it from its registry.

A type's registration names all its parts: its config model (the ``type:`` tag of its
``sources:``/``sinks:`` entry, validated by the config's discriminated union), its factory (the
runtime builds it), its offline check (``redis-shipper check`` says what is wrong and prints the
summary line), its ``check --connect`` probe (None: nothing to connect to) and, for sinks, the
verify reader (``redis-shipper verify --from TYPE`` reads the trail back). The built-in types
are registered in :mod:`shipper.registry.sinks` and :mod:`shipper.registry.sources`; adding one
is one module with the parts and one ``register`` call (docs/architecture.md, "How to add a sink").
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import tzinfo
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import BaseModel

if TYPE_CHECKING:
    from ..api import Sink, Source
    from ..audit.trails import Line, TrailQuery
    from ..commands.check import Report
    from ..config import AgentConfig

#: ``describe(key, config, agent_config, report)``: the offline checks of one entry (problems go
#: to ``report``), and its summary line
Describe = Callable[[str, Any, "AgentConfig", "Report"], str]


@dataclass(frozen=True)
class SinkType:
    """One kind of sink (``type: NAME`` under ``sinks:``) and everything the agent does with it."""

    name: str
    config: type[BaseModel]
    #: ``build(sink_config, agent_config)``: the Sink the runtime sends to
    build: Callable[[Any, AgentConfig], Sink]
    #: ``read(query)``: the trail as written to this sink, lines (or an async iterator of them)
    read: Callable[[TrailQuery], Iterable[Line] | AsyncIterator[Line]]
    describe: Describe
    #: ``probe(key, sink_config, timeout, report)`` for ``check --connect``; None: nothing to connect to
    probe: Callable[[str, Any, float, Report], Awaitable[None]] | None


@dataclass(frozen=True)
class SourceType:
    """One kind of source (``type: NAME`` under ``sources:``) and everything the agent does with it."""

    name: str
    config: type[BaseModel]
    #: ``build(source_config, tz, name)``: the Source the runtime runs, its audit stream ``name``
    build: Callable[[Any, tzinfo, str], Source]
    #: ``stream_name(source_config)``: the source's default name and audit stream (``file:<path>``)
    stream_name: Callable[[Any], str]
    describe: Describe
    #: ``probe(key, source_config, timeout, report)`` for ``check --connect``: the server's run_id
    #: (None if unknown) for the Prometheus cross-check; None: nothing to connect to
    probe: Callable[[str, Any, float, Report], Awaitable[str | None]] | None


class Lazy:
    """A function named ``"module:attribute"``, imported at its first call: a registration names its
    type's parts without importing them, so loading a config imports no sink's client library and
    no command (the check and verify code import the config themselves)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._fn: Callable[..., Any] | None = None

    def resolve(self) -> Callable[..., Any]:
        if self._fn is None:
            module, _, attr = self.target.partition(":")
            self._fn = getattr(importlib.import_module(module), attr)
        return self._fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Lazy({self.target!r})"


T = TypeVar("T", SinkType, SourceType)


class Registry(Generic[T]):
    """The types of one family, by name, in registration order."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._types: dict[str, T] = {}
        self._listeners: list[Callable[[], None]] = []

    def register(self, t: T) -> T:
        """Add a type; the config union is rebuilt so that config files may use it at once."""
        if t.name in self._types:
            raise ValueError(f"{self.family} type {t.name!r} is already registered")
        self._types[t.name] = t
        self._changed()
        return t

    def unregister(self, name: str) -> None:
        del self._types[name]
        self._changed()

    def get(self, name: str) -> T:
        try:
            return self._types[name]
        except KeyError:
            raise KeyError(f"unknown {self.family} type {name!r} (have: {', '.join(self._types)})") from None

    def names(self) -> list[str]:
        return list(self._types)

    def types(self) -> list[T]:
        return list(self._types.values())

    def models(self) -> tuple[type[BaseModel], ...]:
        return tuple(t.config for t in self._types.values())

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()


SINKS: Registry[SinkType] = Registry("sink")
SOURCES: Registry[SourceType] = Registry("source")

# The built-in types are registered by shipper.config (its unions need them). Importing it here,
# once SINKS and SOURCES exist, makes ``import shipper.registry.sinks`` work as a first import
# too: the config package then registers the built-ins before this package's submodule runs.
importlib.import_module("shipper.config")
