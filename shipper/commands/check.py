"""``redis-shipper check --config FILE [--connect]``: say everything wrong with a config, at once.

Why every problem at once and with its key path: the person deploying fixes a YAML file in a
ConfigMap or under /etc, often through a slow CI or rollout; one error per attempt is a day lost.
The schema (shipper/config) already reports every validation problem with its path; this
command adds what a schema cannot know:

* ``state_dir`` (and local/file sink directories) writable, or creatable;
* each file source's path or glob matches something readable (nothing yet is a *warning*: the
  agent waits for the file, as it must for a Redis that has not started);
* every ``*_file`` (passwords, tokens, API keys, TLS certificates) readable, every ``*_env``
  variable set;
* ``timezone`` known, ``metrics.listen`` well formed, labels valid (the Labeler's own rules).

``--connect`` then reaches each Redis (PING, INFO -> version, role, run_id, and the poller's own
commands, telling which the ACL denies), each sink (Loki ``/ready`` + build info, Elasticsearch
``GET /`` + the index template) and Prometheus label discovery, and says what works.

Exit status: 2 when the config has errors (nothing is contacted then), 1 when ``--connect``
could not reach or authenticate to something, 0 otherwise (warnings do not fail: a denied
``ACL LOG`` may be deliberate). Secrets are never printed: URLs are shown without credentials and
every output line is scrubbed of the secret values the config resolves to.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..config import (
    AgentConfig,
    ConfigError,
    ElasticsearchSinkConfig,
    FileSinkConfig,
    FileSourceConfig,
    KubernetesSourceConfig,
    LocalSinkConfig,
    LokiSinkConfig,
    RedisSourceConfig,
    load_config,
)
from ..config.redis import RedisPollSettings
from ..registry import SINKS, SOURCES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, help="YAML config file to check")
    parser.add_argument("--connect", action="store_true",
                        help="also reach each Redis, sink and Prometheus and say what works")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="bound of each network check with --connect (default 5)")


# ---------------------------------------------------------------------------------------------
@dataclass
class Report:
    """What ``check`` found; printed at the end, scrubbed of every secret it knows."""

    errors: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    #: --connect results: (status, subject, text), status one of ok / warn / fail
    results: list[tuple[str, str, str]] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    def scrub(self, text: str) -> str:
        for s in sorted(self.secrets, key=len, reverse=True):
            if s and len(s) >= 3:
                text = text.replace(s, "(redacted)")
        return text

    def result(self, status: str, subject: str, text: str) -> None:
        self.results.append((status, subject, text))

    @property
    def connect_failed(self) -> bool:
        return any(s == "fail" for s, _, _ in self.results)


def walk_fields(model: BaseModel, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(key path, field name, value) of every set field in a config tree, nested models included."""
    for name in type(model).model_fields:
        value = getattr(model, name, None)
        key = f"{path}.{name}" if path else name
        if isinstance(value, BaseModel):
            yield from walk_fields(value, key)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from walk_fields(item, f"{key}[{i}]")
        else:
            yield key, name, value


def _readable_file(path: str) -> str | None:
    """None when ``path`` opens for reading, else the reason (opening is the only true test:
    ``os.access`` says yes to root and knows nothing of ACLs on some filesystems)."""
    try:
        with open(path, "rb") as f:
            f.read(1)
        return None
    except IsADirectoryError:
        return "is a directory, not a file"
    except OSError as e:
        return e.strerror or str(e)


def _dir_writable(path: str) -> tuple[str | None, str]:
    """(problem or None, description) for a directory the agent must write into, or create."""
    p = Path(path)
    if p.exists():
        if not p.is_dir():
            return f"{path!r} exists and is not a directory", ""
        if not os.access(p, os.W_OK | os.X_OK):
            return f"{path!r} is not writable by this user (uid {os.getuid()})", ""
        return None, "exists, writable"
    parent = p.absolute().parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot create {path!r}: {str(parent)!r} is not a directory", ""
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot create {path!r}: {str(parent)!r} is not writable by this user (uid {os.getuid()})", ""
    return None, f"will be created under {parent}"


def check_secrets(cfg: AgentConfig, report: Report) -> None:
    """Every ``*_file`` readable, every ``*_env`` set; collect resolved secrets for scrubbing."""
    for key, name, value in walk_fields(cfg):
        if value in (None, "") or not isinstance(value, str):
            continue
        if name.endswith("_file"):
            why = _readable_file(value)
            if why is not None:
                report.errors.append((key, f"cannot read {value!r}: {why}"))
            elif name.startswith(("password", "token", "api_key", "bearer_token")):
                try:
                    secret = Path(value).read_text().rstrip("\r\n")
                except (OSError, UnicodeDecodeError) as e:
                    report.errors.append((key, f"cannot read {value!r} as text: {e}"))
                    continue
                if not secret:
                    report.warnings.append((key, f"{value!r} is empty"))
                report.secrets.add(secret)
        elif name.endswith("_env"):
            if value not in os.environ:
                report.errors.append((key, f"environment variable {value!r} is not set"))
            else:
                report.secrets.add(os.environ[value])
        elif name in ("password", "token", "api_key"):
            report.secrets.add(value)
    for src in cfg.sources:
        if isinstance(src, RedisSourceConfig):
            from urllib.parse import unquote, urlparse

            pw = urlparse(src.url).password
            if pw:
                report.secrets.add(unquote(pw))


def check_file_source(key: str, sc: FileSourceConfig, report: Report) -> int:
    """Readable matches of a path/glob; returns how many. Nothing yet -> warning."""
    pattern = sc.path
    matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else ([pattern] if os.path.lexists(pattern)
                                                                           else [])
    if not matches:
        # tell "nothing there yet" from "cannot look": an unlistable directory is an error
        d = Path(pattern).parent
        while glob.has_magic(str(d)) and d != d.parent:
            d = d.parent
        if d.is_dir():
            try:
                os.listdir(d)
            except OSError as e:
                report.errors.append((f"{key}.path", f"cannot list {str(d)!r}: {e.strerror} (Debian's /var/log/redis "
                                      "is redis:adm 2750: add the agent's user to group adm)"))
                return 0
        report.warnings.append((f"{key}.path", f"nothing matches {pattern!r} yet; the agent will pick it up "
                                "when it appears"))
        return 0
    readable = 0
    for m in matches[:1000]:
        if os.path.isdir(m):
            if not glob.has_magic(pattern):
                report.errors.append((f"{key}.path", f"{m!r} is a directory; use a glob like {m.rstrip('/')}/*.log"))
            continue
        why = _readable_file(m)
        if why is not None:
            report.errors.append((f"{key}.path", f"cannot read {m!r}: {why}"))
        else:
            readable += 1
    return readable


def check_offline(cfg: AgentConfig, report: Report) -> list[str]:
    """Everything that needs no network; returns the summary lines."""
    from ..observe.server import parse_listen
    from ..pipeline.labels import Labeler
    from ..pipeline.runtime import resolve_timezone

    summary: list[str] = []
    check_secrets(cfg, report)

    problem, state_desc = _dir_writable(cfg.state_dir)
    if problem:
        report.errors.append(("state_dir", problem))

    try:
        tz = resolve_timezone(cfg.timezone)
        tz_desc = str(getattr(tz, "key", tz)) + ("" if cfg.timezone else " (the host's zone)")
    except ConfigError as e:
        report.errors.extend(e.problems)
        tz_desc = "?"

    try:
        listen = parse_listen(cfg.metrics.listen)
    except ValueError as e:
        report.errors.append(("metrics.listen", str(e)))
        listen = None
        metrics_desc = "?"
    else:
        if listen is None:
            metrics_desc = "disabled (metrics.listen is empty)"
        else:
            host = f"[{listen[0]}]" if ":" in listen[0] else listen[0]
            metrics_desc = f"http://{host}:{listen[1]}/metrics (and /healthz, /ready)"
            if listen[0] not in ("127.0.0.1", "::1", "localhost"):
                report.warnings.append(("metrics.listen", f"{cfg.metrics.listen} is reachable from other hosts; "
                                        "fine for Kubernetes probes, otherwise keep it on loopback"))

    try:
        Labeler(cfg)
    except ConfigError as e:
        report.errors.extend(e.problems)

    summary.append(f"sources: {len(cfg.sources)}")
    if not cfg.sources:
        report.warnings.append(("sources", "no sources: the agent will ship only its own events"))
    for i, sc in enumerate(cfg.sources):
        key = f"sources[{i}]"
        summary.append(f"  {key} {SOURCES.get(sc.type).describe(key, sc, cfg, report)}")

    sinks = list(cfg.sinks) or [LocalSinkConfig(type="local")]
    summary.append(f"sinks: {len(sinks)}" + ("" if cfg.sinks else " (none configured: the local sink)"))
    for i, sk in enumerate(sinks):
        key = f"sinks[{i}]"
        summary.append(f"  {key} {SINKS.get(sk.type).describe(key, sk, cfg, report)}")
    summary.append(f"state_dir: {cfg.state_dir}" + (f" ({state_desc})" if state_desc else ""))
    summary.append(f"timezone: {tz_desc}")
    summary.append(f"metrics: {metrics_desc}")
    summary.append(f"shutdown_timeout: {cfg.shutdown_timeout:g}s (give the service manager more than this "
                   "to stop it)")
    return summary


# --- the offline checks of each type (registered in shipper/registry/) ----------------------
def describe_file_source(key: str, sc: FileSourceConfig, cfg: AgentConfig, report: Report) -> str:
    n = check_file_source(key, sc, report)
    return f"file {sc.path} ({n} readable file{'s' if n != 1 else ''} now)"


def describe_redis_source(key: str, sc: RedisSourceConfig, cfg: AgentConfig, report: Report) -> str:
    from ..sources.redis.client import safe_url

    if sc.tls is not None and not sc.url.startswith("rediss://"):
        report.errors.append((f"{key}.tls", "tls is set but the url does not start with rediss://"))
    return f"redis {safe_url(sc.url)} (polls: {', '.join(polled_kinds(sc)) or 'none'})"


def polled_kinds(settings: RedisPollSettings) -> list[str]:
    """What a Redis source (or a kubernetes source's ``poll:``) polls: its enabled kinds of
    ``POLL_KINDS``, then INFO (the identity every other kind depends on)."""
    from ..sources.redis.source import POLL_KINDS

    return [k.name for k in POLL_KINDS if k.enabled(settings)] + (["info"] if settings.info.enabled else [])


def describe_kubernetes_source(key: str, sc: KubernetesSourceConfig, cfg: AgentConfig, report: Report) -> str:
    from ..sources.kubernetes import probe

    errors, warnings = probe.offline_problems(sc)
    report.errors += [(f"{key}.{k}", reason) for k, reason in errors]
    report.warnings += [(f"{key}.{k}", reason) for k, reason in warnings]
    return probe.describe(sc, polled_kinds(sc.poll) if sc.poll is not None else [])


def describe_http_sink(key: str, sk: LokiSinkConfig | ElasticsearchSinkConfig, cfg: AgentConfig,
                       report: Report) -> str:
    from ..sinks.http import redact_url

    if not sk.url.startswith(("http://", "https://")):
        report.errors.append((f"{key}.url", f"{redact_url(sk.url)!r} must start with http:// or https://"))
    extra = f" index {sk.index}" if isinstance(sk, ElasticsearchSinkConfig) else f" ({sk.encoding})"
    return f"{sk.type} {redact_url(sk.url)}{extra}"


def describe_local_sink(key: str, sk: LocalSinkConfig, cfg: AgentConfig, report: Report) -> str:
    d = sk.dir or os.path.join(cfg.state_dir, "events")
    if sk.dir:
        problem, _ = _dir_writable(sk.dir)
        if problem:
            report.errors.append((f"{key}.dir", problem))
    return f"local {d} (read with: redis-shipper events --state-dir {cfg.state_dir})"


def describe_file_sink(key: str, sk: FileSinkConfig, cfg: AgentConfig, report: Report) -> str:
    problem, _ = _dir_writable(str(Path(sk.path).absolute().parent))
    if problem:
        report.errors.append((f"{key}.path", problem))
    return f"file {sk.path}"



# --- main ---------------------------------------------------------------------------------------
def _print(report: Report, text: str, file: Any = None) -> None:
    print(report.scrub(text), file=file or sys.stdout)


def _print_errors(name: str, errors: list[tuple[str, str]], report: Report | None = None) -> int:
    for key, reason in errors:
        line = f"{name}: {key}: {reason}" if key else f"{name}: {reason}"
        print(report.scrub(line) if report else line, file=sys.stderr)
    n = len(errors)
    print(f"redis-shipper check: {n} error{'s' if n != 1 else ''} in {name}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    name = args.config
    try:
        cfg = load_config(name)
    except ConfigError as e:
        # the schema's errors, then what every other pass finds in the parts that are valid
        errors = list(e.problems)
        from ..config.partial import best_effort_config, renumber

        partial = best_effort_config(name)
        report = Report()
        if partial is not None:
            check_offline(partial[0], report)
            found = [(renumber(k, partial[1]), r) for k, r in report.errors]
            errors += [p for p in found if p not in errors]
        return _print_errors(name, errors, report)
    report = Report()
    summary = check_offline(cfg, report)
    for key, reason in report.warnings:
        _print(report, f"{name}: warning: {key}: {reason}", sys.stderr)
    if report.errors:
        return _print_errors(name, report.errors, report)
    _print(report, f"{name}: valid")
    for line in summary:
        _print(report, f"  {line}")
    if not args.connect:
        return 0
    report.warnings.clear()
    from .check_connect import check_connect

    asyncio.run(check_connect(cfg, args.timeout, report))
    if not report.results:
        _print(report, "connect: nothing to reach (no Redis source, no Loki/Elasticsearch sink, no discovery)")
    for status, subject, text in report.results:
        _print(report, f"{status.upper():4} {subject}: {text}")
    if report.connect_failed:
        print("redis-shipper check: some checks failed (FAIL above)", file=sys.stderr)
        return 1
    return 0


__all__ = ["add_arguments", "main", "check_offline", "Report"]
