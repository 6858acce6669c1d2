"""The Prometheus exposition formats of ``/metrics``, without ``prometheus_client.exposition``.

That module costs 5-6 MB of RSS (an HTTP server, a WSGI server, ``urllib.request``... for
helpers the agent does not use; shipper/observe/__init__.py keeps it out), and the agent serves
/metrics with its own handler (shipper/observe/server.py). This module gives it the two things it
uses from there, on the light modules of the same package:

* :func:`choose_encoder` -- the same choice as ``prometheus_client.exposition.choose_encoder``
  for an ``Accept`` header: OpenMetrics when the scraper asks for it (Prometheus does, first),
  the Prometheus text format otherwise (``curl``, older scrapers), with the same Content-Type;
* :func:`generate_latest` -- the Prometheus text format (0.0.4, and 1.0.0's name escaping), the
  same bytes as ``prometheus_client.exposition.generate_latest``; OpenMetrics comes from
  ``prometheus_client.openmetrics.exposition``, which imports nothing heavy.

tests/test_observe_exposition.py checks both functions byte for byte against prometheus_client's
own, for the headers Prometheus 2 and 3 send.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString, parse_version

#: the Prometheus text format, as prometheus_client names its versions
CONTENT_TYPE_PLAIN_0_0_4 = "text/plain; version=0.0.4; charset=utf-8"
CONTENT_TYPE_PLAIN_1_0_0 = "text/plain; version=1.0.0; charset=utf-8"

Encoder = Callable[[Collector], bytes]


def choose_encoder(accept_header: str | None) -> tuple[Encoder, str]:
    """The encoder and Content-Type for a scrape's ``Accept`` header (prometheus_client's rules:
    the first OpenMetrics entry of version 1.0.0 or later, or without a version, wins; a
    ``text/plain`` of version 1.0.0 or later gets its escaping; anything else the 0.0.4 text)."""
    for accepted in (accept_header or "").split(","):
        toks = accepted.split(";")
        kind = toks[0].strip()
        if kind == "application/openmetrics-text":
            version, escaping = _param(toks, "version"), _escaping(toks)
            if not version:
                return (partial(openmetrics.generate_latest, escaping=openmetrics.UNDERSCORES, version="1.0.0"),
                        openmetrics.CONTENT_TYPE_LATEST)
            if parse_version(version) >= (1, 0, 0):
                return (partial(openmetrics.generate_latest, escaping=escaping, version=version),
                        f"application/openmetrics-text; version={version}; charset=utf-8; escaping={escaping}")
        elif kind == "text/plain":
            version, escaping = _param(toks, "version"), _escaping(toks)
            if version and parse_version(version) >= (1, 0, 0):
                return partial(generate_latest, escaping=escaping), f"{CONTENT_TYPE_PLAIN_1_0_0}; escaping={escaping}"
    return generate_latest, CONTENT_TYPE_PLAIN_0_0_4


def _param(toks: list[str], key: str) -> str:
    for tok in toks:
        if "=" in tok:
            k, value = tok.strip().split("=", 1)
            if k == key:
                return value
    return ""


def _escaping(toks: list[str]) -> str:
    value = _param(toks, "escaping")
    known = (openmetrics.ALLOWUTF8, openmetrics.UNDERSCORES, openmetrics.DOTS, openmetrics.VALUES)
    return value if value in known else openmetrics.UNDERSCORES


def generate_latest(registry: Collector, escaping: str = openmetrics.UNDERSCORES) -> bytes:
    """Every metric of ``registry`` in the Prometheus text format (counters as ``_total``, an
    info as a gauge ``_info``, OpenMetrics-only samples as gauges after their family)."""
    name_of = partial(openmetrics.escape_metric_name, escaping=escaping)

    def sample_line(s: Any) -> str:
        labels = ",".join(f'{openmetrics.escape_label_name(k, escaping)}="{_label_value(v)}"'
                          for k, v in sorted(s.labels.items()))
        stamp = f" {int(float(s.timestamp) * 1000):d}" if s.timestamp is not None else ""
        value = floatToGoString(s.value)
        if escaping != openmetrics.ALLOWUTF8 or openmetrics._is_valid_legacy_metric_name(s.name):
            braced = f"{{{labels}}}" if labels else ""
            return f"{name_of(s.name)}{braced} {value}{stamp}\n"
        return f"{{{name_of(s.name)}{',' if labels else ''}{labels}}} {value}{stamp}\n"

    out: list[str] = []
    for metric in registry.collect():
        name, kind = metric.name, metric.type
        if kind == "counter":
            name += "_total"
        elif kind == "info":
            name, kind = name + "_info", "gauge"
        elif kind == "stateset":
            kind = "gauge"
        elif kind == "gaugehistogram":
            kind = "histogram"
        elif kind == "unknown":
            kind = "untyped"
        doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name_of(name)} {doc}\n# TYPE {name_of(name)} {kind}\n")
        extra: dict[str, list[str]] = {}
        for s in metric.samples:
            suffix = next((x for x in ("_created", "_gsum", "_gcount") if s.name == metric.name + x), None)
            if suffix is None:
                out.append(sample_line(s))
            else:
                extra.setdefault(suffix, []).append(sample_line(s))
        for suffix, lines in sorted(extra.items()):
            out.append(f"# HELP {name_of(metric.name + suffix)} {doc}\n# TYPE {name_of(metric.name + suffix)} gauge\n")
            out.extend(lines)
    return "".join(out).encode("utf-8")


def _label_value(v: str) -> str:
    """A label value in the text format: UTF-8 as is; backslash, newline and quote escaped."""
    return v.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
