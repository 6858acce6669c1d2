"""Asking Prometheus which series carries a Redis's ``run_id``, and choosing one.

Why a module of its own: this is the part of label discovery that speaks Prometheus' language
(PromQL literals, the ``/api/v1/query`` answer) and decides between series when several scrape
jobs watch the same Redis; the :class:`~shipper.pipeline.labels.Labeler` only schedules it and
keeps the last good answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from .label_rules import PINNING_LABELS


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal (escapes backslash, quote, newline)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def choose_series(
    series: list[dict[str, Any]], prefer: Mapping[str, str], current: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Pick one series when several share the run_id (two jobs scrape the same Redis).

    First the one agreeing most with the configured labels (static + preset: the user's way of
    saying which job they mean), then the one agreeing with what we adopted last time (a
    stream must not flip between two equally good series on every refresh), then the smallest
    label set in sorted order -- deterministic, so two agents on one host choose alike.
    Sample timestamps are deliberately not used: both jobs are scraped continuously, and the
    freshest one changes from one query to the next.
    """
    current = current or {}

    def key(s: dict[str, Any]) -> tuple[int, int, list[tuple[str, str]]]:
        labels = s.get("metric") or {}
        agree = sum(1 for k, v in prefer.items() if labels.get(k) == v)
        same = sum(1 for k, v in current.items() if labels.get(k) == v)
        return (-agree, -same, sorted(labels.items()))

    return min(series, key=key)


def series_identity(series: dict[str, Any]) -> dict[str, str]:
    """The job/instance of a series: what says which scrape it belongs to."""
    return {k: v for k, v in (series.get("metric") or {}).items() if k in PINNING_LABELS}


async def query_vector(session: Any, prometheus_url: str, query: str) -> list[dict[str, Any]]:
    """Prometheus instant query (``GET /api/v1/query``) through an
    :class:`~shipper.util.httpclient.HTTPClient`; the vector's series. Anything but a successful
    vector answer raises RuntimeError."""
    url = prometheus_url.rstrip("/") + "/api/v1/query"
    resp = await session.get(url, params={"query": query})
    text = resp.text(200)
    try:
        body = orjson.loads(resp.body)
    except orjson.JSONDecodeError:
        raise RuntimeError(f"HTTP {resp.status}, not JSON: {text!r}") from None
    if not isinstance(body, dict) or body.get("status") != "success":
        err = body.get("error") if isinstance(body, dict) else None
        raise RuntimeError(f"HTTP {resp.status}: {err or text[:200]!r}")
    data = body.get("data") or {}
    if data.get("resultType") != "vector":
        raise RuntimeError(f"expected a vector, got {data.get('resultType')!r}")
    result = data.get("result") or []
    return [s for s in result if isinstance(s, dict)]
