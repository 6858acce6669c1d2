"""What a labels config may contain, checked once when the :class:`~shipper.pipeline.labels.Labeler`
is built.

Why a module of its own: the limits come from outside (Prometheus' label-name grammar, Loki's
``max_label_names_per_series`` and ``max_label_value_length``, the names the Loki sink sets per
stream), and every one of them must fail the config with a clear problem at start-up rather than
as a rejected push hours later. The checks collect ``(config key, message)`` problems so one
:class:`~shipper.config.ConfigError` lists them all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from shipper.config import AgentConfig, DiscoverLabelsConfig, KubernetesSourceConfig

from .label_presets import expand_template

log = logging.getLogger("shipper.labels")

#: Prometheus and Loki accept the same label names; ``__*`` names are reserved for internal use.
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
#: labels the Loki sink adds per stream; a user label of the same name would be overwritten there
SINK_LABELS = ("source", "level")
#: Loki's default ``max_label_names_per_series``
MAX_STREAM_LABELS = 15
MAX_LABELS = MAX_STREAM_LABELS - len(SINK_LABELS)
#: Loki's default ``max_label_value_length``
MAX_VALUE_LENGTH = 2048
# Labels a user sets in `labels:` to say which scrape job's series discovery must adopt.
PINNING_LABELS = ("job", "instance")

#: ``(config key, message)`` pairs, gathered into one ConfigError
Problems = list[tuple[str, str]]


def check_label_name(name: str, key: str) -> None:
    """Raise ValueError (prefixed with ``key``) unless ``name`` may be a shipped label's name."""
    if not LABEL_NAME.match(name) or name.startswith("__"):
        raise ValueError(
            f"{key}: {name!r} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
        )
    if name in SINK_LABELS:
        raise ValueError(f"{key}: {name!r} is set per stream by the Loki sink; choose another name")


def static_labels(
    labels: Mapping[str, object], env: Mapping[str, str], hostname: str, problems: Problems
) -> dict[str, str]:
    """The ``labels:`` map with templates expanded; an empty value is dropped (with a warning),
    a bad name or an over-long value is a problem."""
    static: dict[str, str] = {}
    for name, value in labels.items():
        key = f"labels.{name}"
        try:
            check_label_name(name, key)
            value = expand_template(str(value), env, hostname, key)
        except ValueError as e:
            problems.append((key, str(e).removeprefix(f"{key}: ")))
            continue
        if value == "":
            # Prometheus treats an empty value as "label absent"; so do we (and say so)
            log.warning("label %s has an empty value and is not shipped", name)
            continue
        if len(value) > MAX_VALUE_LENGTH:
            problems.append((key, f"value is {len(value)} characters; Loki accepts at most {MAX_VALUE_LENGTH}"))
            continue
        static[name] = value
    return static


def copied_label_names(discover: DiscoverLabelsConfig | None, problems: Problems) -> list[str]:
    """The valid names of ``discover_labels.copy``; the metric and Prometheus URL are checked too."""
    copy: list[str] = []
    if discover is not None:
        for i, name in enumerate(discover.copy_labels):
            key = f"discover_labels.copy[{i}]"
            try:
                check_label_name(name, key)
            except ValueError as e:
                problems.append((key, str(e).removeprefix(f"{key}: ")))
                continue
            copy.append(name)
        if not METRIC_NAME.match(discover.metric):
            problems.append(("discover_labels.metric", f"{discover.metric!r} is not a metric name"))
        if not discover.prometheus_url.startswith(("http://", "https://")):
            problems.append(("discover_labels.prometheus_url", "must start with http:// or https://"))
    return copy


def check_label_budget(cfg: AgentConfig, static: Mapping[str, str], copy: list[str], problems: Problems) -> None:
    """Every stream, including a discovered pod's, must fit Loki's label limit next to the sink's
    own labels."""
    names = set(static) | set(copy)
    if cfg.instance_preset and "instance" not in static:
        names.add("instance")
    if len(names) > MAX_LABELS:
        problems.append((
            "labels",
            f"{len(names)} labels ({', '.join(sorted(names))}); at most {MAX_LABELS} fit in a Loki stream "
            f"next to {' and '.join(SINK_LABELS)} (limit {MAX_STREAM_LABELS}): keep high-cardinality "
            "values in the event, not in labels",
        ))

    for i, src in enumerate(cfg.sources):
        if isinstance(src, KubernetesSourceConfig):
            from shipper.sources.kubernetes.pods import POD_LABELS, sanitize_label_name

            pod = set(static) | set(copy) | set(POD_LABELS) | set(src.labels) | {
                sanitize_label_name(k) for k in src.pod_labels}
            if len(pod) > MAX_LABELS:
                problems.append((
                    f"sources[{i}]",
                    f"a discovered pod's events would carry {len(pod)} labels ({', '.join(sorted(pod))}); "
                    f"at most {MAX_LABELS} fit in a Loki stream next to {' and '.join(SINK_LABELS)}",
                ))
