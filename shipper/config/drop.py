"""``drop:`` rules of a source: the noise an operator chooses not to ship (promtail's ``drop``)."""

from __future__ import annotations

import re

from pydantic import field_validator, model_validator

from .base import Strict


class DropRule(Strict):
    """Drop the events that match *every* condition given (at least one is required).

    ``event``, ``category`` and ``level`` take one value or a list; ``message`` is a regular
    expression searched in the event's message. ``name`` labels the drop counter and the
    audit anchors (default: ``rule<N>``, its position in the list).
    """

    name: str | None = None
    event: str | list[str] | None = None
    category: str | list[str] | None = None
    level: str | list[str] | None = None
    message: str | None = None

    @field_validator("message")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as e:
                raise ValueError(f"not a regular expression: {e}") from None
        return v

    @model_validator(mode="after")
    def _something(self) -> DropRule:
        if all(getattr(self, k) is None for k in ("event", "category", "level", "message")):
            raise ValueError("a drop rule needs at least one of event, category, level, message")
        return self
