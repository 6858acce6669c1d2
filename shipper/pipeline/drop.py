"""A source's ``drop:`` rules, compiled once and applied to each batch before it is labelled.

Dropped events never reach the spool, so they get no sequence number: the audit chain has no
gap for them. ``redis_shipper_events_dropped_total{source,rule}`` counts them, and each
``chain_anchor`` event records per stream and rule how many were dropped since the anchor
before it (``fields.dropped``), which ``verify`` adds up.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from parsers.events import Event

from ..config.drop import DropRule
from ..observe import metrics


def _as_set(v: str | list[str] | None) -> frozenset[str] | None:
    if v is None:
        return None
    return frozenset([v] if isinstance(v, str) else v)


@dataclass(frozen=True)
class CompiledRule:
    name: str
    event: frozenset[str] | None
    category: frozenset[str] | None
    level: frozenset[str] | None
    message: re.Pattern[str] | None

    def matches(self, ev: Event) -> bool:
        if self.event is not None and ev.get("event") not in self.event:
            return False
        if self.category is not None and ev.get("category") not in self.category:
            return False
        if self.level is not None and ev.get("level") not in self.level:
            return False
        return self.message is None or self.message.search(str(ev.get("message", ""))) is not None


def compile_rules(rules: Sequence[DropRule]) -> list[CompiledRule]:
    return [CompiledRule(r.name or f"rule{i}", _as_set(r.event), _as_set(r.category), _as_set(r.level),
                         re.compile(r.message) if r.message is not None else None)
            for i, r in enumerate(rules)]


class Dropper:
    """Filters a source's batches; ``dropped`` counts per rule since the agent started, and
    :meth:`take` what was dropped since it was last called (each audit anchor records that)."""

    def __init__(self, source: str, rules: Sequence[DropRule]) -> None:
        self.source = source
        self.rules = compile_rules(rules)
        self.dropped: Counter[str] = Counter()
        self._taken: Counter[str] = Counter()

    @property
    def pending(self) -> bool:
        """Something was dropped that no anchor has recorded yet."""
        return bool(self.dropped - self._taken)

    def take(self) -> dict[str, int]:
        """``{rule: n}`` dropped since the previous call (empty when nothing was)."""
        new = self.dropped - self._taken
        self._taken = Counter(self.dropped)
        return dict(new)

    def filter(self, events: list[Event]) -> list[Event]:
        """The events no rule matches (the first matching rule is the one counted)."""
        if not self.rules:
            return events
        kept: list[Event] = []
        counts: Counter[str] = Counter()
        for ev in events:
            rule = next((r for r in self.rules if r.matches(ev)), None)
            if rule is None:
                kept.append(ev)
            else:
                counts[rule.name] += 1
        for name, n in counts.items():  # one metric update per rule, not per event
            metrics.EVENTS_DROPPED.labels(self.source, name).inc(n)
        self.dropped.update(counts)
        return kept
