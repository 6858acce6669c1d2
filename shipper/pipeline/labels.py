"""The labels every event carries, chosen to EQUAL redis_exporter's metric labels.

Why this room exists: a person looking at ``redis_memory_used_bytes{instance="redis://db1:6379",
job="redis"}`` in Grafana clicks through to the events of that Redis; the click only finds them
if the events carry exactly the same ``instance`` / ``job`` / ``env`` ... values. redis_exporter
adds no identity label of its own (1.x dropped ``addr``); ``instance`` is whatever Prometheus
assigned, and that depends on how the scrape is written. So labels come from, in increasing
precedence:

1. an ``instance_preset`` (only when ``labels`` does not set ``instance``): the four real-world
   conventions -- ``multi-target`` (``redis://host:port``, the ``/scrape?target=`` relabel of the
   exporter's README), ``sidecar`` (``<exporter host>:9121``), ``pod`` (the pod name) and
   ``hostname`` (Grafana Alloy's ``constants.hostname``);
2. the static ``labels`` map (``${ENV}`` templates are expanded by the config loader; templates
   that are still there -- a config built in code -- are expanded here, and ``${HOSTNAME}``
   falls back to the kernel's host name, because systemd services have no HOSTNAME variable);
3. ``discover_labels``: ask Prometheus for ``redis_instance_info{run_id="<run_id>"}`` (the
   exporter puts the server's run_id on that series) and adopt the series' labels listed in
   ``copy``. Discovery is the only way to be *sure* of equality, so it wins; 1 and 2 are what
   is shipped before the first answer and whenever Prometheus has never answered. When
   Prometheus or Redis is unreachable the last good labels stay (a label flip in the middle of
   an outage would split a stream for no reason), the failure is logged once per state change
   and counted.

The Redis servers come from two places: the ``type: redis`` sources of the config (targets known
at construction, keyed by index and URL) and the pollers pod discovery starts and stops while the
agent runs (:meth:`Labeler.add_target` / :meth:`Labeler.remove_target`, keyed by a name the pod's
sources share). Each target has its own refresh task; removing a target ends it and closes its
Redis connection, so a node whose pods come and go does not accumulate tasks or queries.

:meth:`Labeler.apply` runs once per event, so it only copies a prepared dict; everything else
happens in :meth:`Labeler.start` and a background refresh task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from parsers.events import Event
from shipper.config import AgentConfig, ConfigError, KubernetesSourceConfig, RedisSourceConfig
from shipper.observe import metrics
from shipper.util.urls import redact_url

from .label_presets import expand_template, parse_redis_url, preset_instance

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
#: fastest and slowest retry after a failed discovery (the slowest is also capped by ``refresh``)
_RETRY_MIN = 0.5


# --- metrics: defined in shipper/observe/metrics.py once the lead adds them; until then None
_M_ERRORS = getattr(metrics, "LABEL_DISCOVERY_ERRORS", None)
_M_LAST_SUCCESS = getattr(metrics, "LABEL_DISCOVERY_LAST_SUCCESS", None)
_M_UP = getattr(metrics, "LABEL_DISCOVERY_UP", None)


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


@dataclass
class _Target:
    """One polled Redis: its fallback labels, what discovery found, and the merged result."""

    index: int  # position in cfg.sources; -1 for a target added at run time
    source: RedisSourceConfig | None
    base: dict[str, str]
    merged: dict[str, str]
    name: str = ""  # redacted URL, for logs and metric labels
    run_id: str | None = None
    discovered: dict[str, str] = field(default_factory=dict)
    last_success: float | None = None
    errors: int = 0
    last_error: str | None = None
    warned: set[str] = field(default_factory=set)
    # job/instance set in `labels:` by the user; once a series has carried one of them it is
    # the user's choice of job, and a series without it is not adopted (see refresh)
    pinned: dict[str, str] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)
    #: its refresh loop, and its redis.asyncio client for INFO (both made by start/add_target)
    task: asyncio.Task[None] | None = None
    client: Any = None
    #: the error kinds counted for it (their metric series go when the target goes)
    error_kinds: set[str] = field(default_factory=set)


class Labeler:
    """Sets ``event["labels"]`` on every event; see the module docstring for the precedence.

    ``env`` and ``hostname`` can be injected (tests, or an agent that knows better); they default
    to ``os.environ`` and ``socket.gethostname()``.
    """

    def __init__(
        self,
        cfg: AgentConfig,
        *,
        env: Mapping[str, str] | None = None,
        hostname: str | None = None,
    ) -> None:
        self._cfg = cfg
        self._env: Mapping[str, str] = os.environ if env is None else env
        self._hostname = hostname if hostname is not None else socket.gethostname()
        self._discover = cfg.discover_labels
        self._session: Any = None  # aiohttp.ClientSession, created in start()
        self._started = False
        self._closed: asyncio.Event | None = None  # created in start(), inside the running loop
        #: passwords that must never reach a log line or status(), even inside an exception text
        self._secrets: set[str] = set()
        problems: list[tuple[str, str]] = []

        static: dict[str, str] = {}
        for name, value in cfg.labels.items():
            key = f"labels.{name}"
            try:
                self._check_name(name, key)
                value = expand_template(str(value), self._env, self._hostname, key)
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

        copy: list[str] = []
        if self._discover is not None:
            for i, name in enumerate(self._discover.copy_labels):
                key = f"discover_labels.copy[{i}]"
                try:
                    self._check_name(name, key)
                except ValueError as e:
                    problems.append((key, str(e).removeprefix(f"{key}: ")))
                    continue
                copy.append(name)
            if not METRIC_NAME.match(self._discover.metric):
                problems.append(("discover_labels.metric", f"{self._discover.metric!r} is not a metric name"))
            if not self._discover.prometheus_url.startswith(("http://", "https://")):
                problems.append(("discover_labels.prometheus_url", "must start with http:// or https://"))
        self._copy = copy
        #: the global static labels: the base of a target added at run time, under its own labels
        self._static = static

        redis_sources = [
            (i, s) for i, s in enumerate(cfg.sources) if isinstance(s, RedisSourceConfig)
        ]
        pod_pollers = any(isinstance(s, KubernetesSourceConfig) and s.poll is not None for s in cfg.sources)
        if self._discover is not None and not redis_sources and not pod_pollers:
            problems.append((
                "discover_labels",
                "needs a `type: redis` source or a `type: kubernetes` source with `poll`: the polled "
                "Redis's run_id (INFO server) selects the Prometheus series",
            ))

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

        self._targets: list[_Target] = []
        targets_in = redis_sources or [(-1, None)]
        for index, src in targets_in:
            base = dict(static)
            addr = parse_redis_url(src.url) if src is not None else None
            if cfg.instance_preset and "instance" not in base:
                try:
                    base["instance"] = preset_instance(cfg.instance_preset, addr, self._env, self._hostname)
                except ValueError as e:
                    problems.append(("instance_preset", str(e)))
            name = redact_url(src.url, drop_query=True) if src is not None else "static"
            pinned = {k: static[k] for k in PINNING_LABELS if k in static}
            self._targets.append(_Target(index, src, base, dict(base), name, pinned=pinned))
        if problems:
            raise ConfigError(problems)

        # lookup for labels_for_source: index, URL as configured, redacted URL
        self._by_key: dict[Any, _Target] = {}
        for t in self._targets:
            if t.source is not None:
                self._by_key[t.index] = t
                self._by_key[t.source.url] = t
                self._by_key[t.name] = t
        self._default = self._targets[0]
        #: targets added at run time (a discovered pod's poller), by the key given to add_target
        self._dynamic: dict[str, _Target] = {}

    @staticmethod
    def _check_name(name: str, key: str) -> None:
        if not LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(
                f"{key}: {name!r} is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
            )
        if name in SINK_LABELS:
            raise ValueError(f"{key}: {name!r} is set per stream by the Loki sink; choose another name")

    # --- the hot path

    def apply(self, event: Event, source: int | str | None = None) -> None:
        """Set ``event["labels"]`` to a new dict of the labels of ``source`` (default: the first
        Redis source). A new dict each time, so a later change never rewrites spooled events."""
        t = self._default if source is None else self._by_key.get(source, self._default)
        event["labels"] = t.merged.copy()

    def labels_for_source(self, source: int | str | None = None) -> dict[str, str]:
        """The labels for a configured source: its index in ``sources``, its URL (as configured
        or redacted), or None for the default (the first ``type: redis`` source; file sources
        use it too, since a log file does not say which Redis wrote it)."""
        t = self._default if source is None else self._by_key.get(source, self._default)
        return t.merged.copy()

    # --- targets added at run time

    def has_target(self, key: str) -> bool:
        """Whether ``key`` names a target added by :meth:`add_target` (and not removed since)."""
        return key in self._dynamic

    def add_target(self, key: str, source: RedisSourceConfig, labels: Mapping[str, str]) -> None:
        """Label the events of ``key`` (a discovered pod's sources) from the Redis ``source`` polls.

        ``labels`` (the pod's namespace, pod, container, node, instance ...) go over the global
        static labels; discovery then overrides the names in ``copy``, as for a configured source.
        The job and instance of that base are pins (see :meth:`refresh`): a pod's preset instance
        that a series has carried is the scrape that pod belongs to. The first discovery round
        runs at once in the target's own task; events emitted before it answers carry the base.
        Adding a key that is there already changes nothing.
        """
        if key in self._dynamic:
            return
        if key in self._by_key:
            raise ValueError(f"label target {key!r} would shadow a configured Redis source")
        base = {**self._static, **{k: v for k, v in labels.items() if v != ""}}
        t = _Target(-1, source, base, dict(base), key,
                    pinned={k: base[k] for k in PINNING_LABELS if k in base})
        self._dynamic[key] = t
        self._by_key[key] = t
        if self._started and self._closed is not None and not self._closed.is_set():
            t.task = asyncio.create_task(self._loop(t, None), name=f"labels:{key}")

    async def remove_target(self, key: str) -> None:
        """Forget ``key``: its refresh loop is cancelled and awaited, its Redis connection closed
        and its metric series removed (a pod that is gone is not queried for again)."""
        t = self._dynamic.pop(key, None)
        if t is None:
            return
        if self._by_key.get(key) is t:
            del self._by_key[key]
        await self._release(t)
        for gauge in (_M_UP, _M_LAST_SUCCESS):
            if gauge is not None:
                with contextlib.suppress(KeyError):
                    gauge.remove(t.name)
        if _M_ERRORS is not None:
            for kind in t.error_kinds:
                with contextlib.suppress(KeyError):
                    _M_ERRORS.remove(t.name, kind)

    @staticmethod
    async def _release(t: _Target) -> None:
        task, t.task = t.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        client, t.client = t.client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    def status(self) -> list[dict[str, Any]]:
        """Per Redis (configured ones first, then those added at run time): run_id, discovered
        labels, last success (unix time), errors, last error; what ``redis-shipper check`` and
        the tests look at."""
        return [
            {
                "redis": t.name,
                "run_id": t.run_id,
                "labels": dict(t.merged),
                "discovered": dict(t.discovered),
                "last_success": t.last_success,
                "errors": t.errors,
                "last_error": t.last_error,
            }
            for t in [*self._targets, *self._dynamic.values()]
        ]

    # --- discovery

    async def start(self) -> None:
        """Try discovery once for every Redis (bounded by the configured timeout, never raises),
        then keep refreshing in the background."""
        if self._discover is None or self._started:
            return
        self._started = True
        import aiohttp  # imported here: a config without discovery never needs it

        self._closed = asyncio.Event()
        prom_password = urlsplit(self._discover.prometheus_url).password
        if prom_password:
            self._secrets.update({prom_password, unquote(prom_password)})
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._discover.timeout),
            headers={"Accept": "application/json", "User-Agent": "redis-shipper"},
        )
        configured = [t for t in self._targets if t.source is not None]
        firsts = await asyncio.gather(*(self._bounded_refresh(t) for t in configured))
        for t, ok in zip(configured, firsts, strict=True):
            t.task = asyncio.create_task(self._loop(t, ok), name=f"labels:{t.name}")
        for t in self._dynamic.values():  # added before start: their first round runs in their task
            if t.task is None:
                t.task = asyncio.create_task(self._loop(t, None), name=f"labels:{t.name}")

    async def _bounded_refresh(self, t: _Target) -> bool:
        """One round with a hard bound, so a black-holed Redis or Prometheus (no RST, no
        answer) can hold up neither the agent's start nor the refresh schedule."""
        assert self._discover is not None and t.source is not None
        bound = self._discover.timeout + t.source.timeout + 1.0
        try:
            return await asyncio.wait_for(self._refresh(t), bound)
        except TimeoutError:
            return self._failed(t, "timeout", f"label discovery for {t.name} took longer than {bound:g}s")

    async def close(self) -> None:
        if self._closed is not None:
            self._closed.set()
        targets = [*self._targets, *self._dynamic.values()]
        for t in targets:
            if t.task is not None:
                t.task.cancel()
        await asyncio.gather(*(self._release(t) for t in targets))
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _loop(self, t: _Target, ok: bool | None) -> None:
        """Refresh ``t`` every ``refresh``, sooner after a failure; ``ok`` is the outcome of the
        first round, or None when the first round is still to do (a target added at run time)."""
        assert self._discover is not None and self._closed is not None
        refresh = max(self._discover.refresh, 0.05)
        retry = _RETRY_MIN
        if ok is None:
            ok = await self._guarded_refresh(t)
        while not self._closed.is_set():
            if ok:
                delay, retry = refresh, _RETRY_MIN
            else:
                # retry sooner than `refresh` after a failure (e.g. a restarted Redis whose new
                # run_id Prometheus has not scraped yet), backing off up to `refresh`
                delay, retry = min(retry, refresh), min(retry * 2, refresh)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closed.wait(), delay)
            if self._closed.is_set():
                return
            ok = await self._guarded_refresh(t)

    async def _guarded_refresh(self, t: _Target) -> bool:
        try:
            return await self._bounded_refresh(t)
        except Exception:  # a bug must not kill the loop and freeze labels forever
            log.exception("label discovery for %s failed unexpectedly", t.name)
            return False

    @staticmethod
    def _identity(series: dict[str, Any]) -> dict[str, str]:
        return {k: v for k, v in (series.get("metric") or {}).items() if k in PINNING_LABELS}

    async def refresh(self, source: int | str | None = None) -> bool:
        """One discovery round for one Redis: read its run_id, query Prometheus, adopt the copied
        labels. Returns True when the labels were confirmed by Prometheus. ``source`` as for
        :meth:`labels_for_source`, or the key of a target added at run time."""
        t = self._default if source is None else self._by_key.get(source, self._default)
        return await self._refresh(t)

    async def _refresh(self, t: _Target) -> bool:
        if self._discover is None or t.source is None or self._session is None:
            return False
        try:
            run_id = await self._read_run_id(t)
        except Exception as e:  # any failure to reach Redis has the same outcome
            return self._failed(t, "redis", f"cannot read run_id from {t.name}: {_describe(e)}")
        if run_id != t.run_id:
            if t.run_id is not None:
                log.info("run_id of %s changed (%s -> %s): rediscovering labels", t.name, t.run_id, run_id)
            t.run_id = run_id
        query = f"{self._discover.metric}{{run_id={promql_string(run_id)}}}"
        try:
            series = await self._query(query)
        except Exception as e:
            return self._failed(t, "prometheus", f"query {query} failed: {_describe(e)}")
        if not series:
            return self._failed(
                t, "no_series",
                f"Prometheus has no {query} yet (not scraped yet, or redis_exporter does not scrape {t.name})",
            )
        for s_ in series:
            t.seen.update((k, v) for k, v in self._identity(s_).items() if t.pinned.get(k) == v)
        pins = {k: v for k, v in t.pinned.items() if (k, v) in t.seen}
        if pins:
            # The static job/instance has been seen on a series: it names one of several jobs
            # scraping this Redis, not a fallback. Right after a restart the other job may be
            # scraped first; adopting its series would flip the labels to the wrong job.
            agreeing = [s_ for s_ in series if all(self._identity(s_).get(k) == v for k, v in pins.items())]
            if not agreeing:
                wanted = ", ".join(f"{k}={v!r}" for k, v in sorted(pins.items()))
                return self._failed(
                    t, "no_series",
                    f"{len(series)} series match {query} but none has {wanted} from `labels:` yet "
                    f"(found {[self._identity(s_) for s_ in series]})",
                )
            series = agreeing
        if len(series) > 1 and f"many:{run_id}" not in t.warned:
            t.warned.add(f"many:{run_id}")
            log.warning(
                "%d series match %s (%s); using the one agreeing most with the configured labels "
                "(set labels.job or labels.instance to choose)",
                len(series), query,
                [self._identity(s) for s in series],
            )
        chosen = choose_series(series, t.base, t.discovered)
        labels = chosen.get("metric") or {}
        found: dict[str, str] = {}
        for name in self._copy:
            value = labels.get(name)
            if isinstance(value, str) and value != "":
                found[name] = value[:MAX_VALUE_LENGTH]
            elif f"missing:{name}" not in t.warned:
                t.warned.add(f"missing:{name}")
                log.warning(
                    "discover_labels.copy lists %r but %s has no such label; shipping %s",
                    name, query, repr(t.base[name]) if name in t.base else "no such label",
                )
        merged = {**t.base, **found}
        if merged != t.merged:
            log.info("labels for %s are now %s", t.name, merged)
        t.discovered = found
        t.merged = merged  # replaced, not mutated: apply() may be copying the old one
        t.last_success = time.time()
        if t.last_error is not None:
            log.info("label discovery for %s recovered", t.name)
        t.last_error = None
        if _M_LAST_SUCCESS is not None:
            _M_LAST_SUCCESS.labels(t.name).set(t.last_success)
        if _M_UP is not None:
            _M_UP.labels(t.name).set(1)
        return True

    def _failed(self, t: _Target, kind: str, message: str) -> bool:
        """Keep the last good labels; log once per change of trouble, count every time."""
        t.errors += 1
        t.error_kinds.add(kind)
        for secret in self._secrets:
            message = message.replace(secret, "***")
        if message != t.last_error:
            log.warning("%s; keeping labels %s", message, t.merged)
        t.last_error = message
        if _M_ERRORS is not None:
            _M_ERRORS.labels(t.name, kind).inc()
        if _M_UP is not None:
            _M_UP.labels(t.name).set(0)
        return False

    async def _read_run_id(self, t: _Target) -> str:
        client = t.client
        if client is None:
            assert t.source is not None
            client = t.client = _redis_client(t.source)
            password = client.connection_pool.connection_kwargs.get("password")
            if password:
                self._secrets.add(password)
        info = await client.info("server")
        run_id = info.get("run_id") if isinstance(info, dict) else None
        if not isinstance(run_id, str) or not run_id:
            raise RuntimeError("INFO server has no run_id")
        return run_id

    async def _query(self, query: str) -> list[dict[str, Any]]:
        """Prometheus instant query (``GET /api/v1/query``); the vector's series."""
        assert self._discover is not None and self._session is not None
        url = self._discover.prometheus_url.rstrip("/") + "/api/v1/query"
        async with self._session.get(url, params={"query": query}) as resp:
            text = await resp.text()
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                raise RuntimeError(f"HTTP {resp.status}, not JSON: {text[:200]!r}") from None
        if not isinstance(body, dict) or body.get("status") != "success":
            err = body.get("error") if isinstance(body, dict) else None
            raise RuntimeError(f"HTTP {resp.status}: {err or text[:200]!r}")
        data = body.get("data") or {}
        if data.get("resultType") != "vector":
            raise RuntimeError(f"expected a vector, got {data.get('resultType')!r}")
        result = data.get("result") or []
        return [s for s in result if isinstance(s, dict)]


#: the client name of the label discovery's INFO connection (CLIENT LIST, SLOWLOG)
LABELS_CLIENT_NAME = "redis-shipper-labels"


def _describe(e: BaseException) -> str:
    """An exception as one short line (timeouts have an empty str())."""
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _redis_client(src: RedisSourceConfig) -> Any:
    """A redis.asyncio client with the source's auth, TLS and timeout (the poller's rules).

    Why not the poller's connection: labels must work (and be tested) on their own, and a second
    connection for one INFO per ``refresh`` costs nothing.
    """
    import redis.asyncio as aioredis

    from shipper.sources.redis.client import connection_pool

    return aioredis.Redis.from_pool(connection_pool(src, client_name=LABELS_CLIENT_NAME, decode_responses=True))
