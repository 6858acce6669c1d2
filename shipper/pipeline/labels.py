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

This module schedules the targets and merges their labels; the config checks are in
:mod:`.label_rules`, the Prometheus query and series choice in :mod:`.label_prometheus`, a
target's record and Redis client in :mod:`.label_target`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from parsers.events import Event
from shipper.config import AgentConfig, ConfigError, KubernetesSourceConfig, RedisSourceConfig
from shipper.util.urls import redact_url

from .label_presets import expand_template, parse_redis_url, preset_instance
from .label_prometheus import choose_series, promql_string, query_vector, series_identity
from .label_rules import (
    LABEL_NAME,
    MAX_LABELS,
    MAX_STREAM_LABELS,
    MAX_VALUE_LENGTH,
    METRIC_NAME,
    PINNING_LABELS,
    SINK_LABELS,
    check_label_budget,
    copied_label_names,
    static_labels,
)
from .label_target import LABELS_CLIENT_NAME, LabelTarget, describe_error, redis_client

#: what importers find here, wherever it is defined
__all__ = [
    "LABELS_CLIENT_NAME", "LABEL_NAME", "MAX_LABELS", "MAX_STREAM_LABELS", "MAX_VALUE_LENGTH", "METRIC_NAME",
    "PINNING_LABELS", "SINK_LABELS", "Labeler", "choose_series", "expand_template", "parse_redis_url",
    "preset_instance", "promql_string", "redact_url",
]

log = logging.getLogger("shipper.labels")

#: fastest and slowest retry after a failed discovery (the slowest is also capped by ``refresh``)
_RETRY_MIN = 0.5


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
        self._session: Any = None  # an HTTPClient, created in start()
        self._started = False
        self._closed: asyncio.Event | None = None  # created in start(), inside the running loop
        #: passwords that must never reach a log line or status(), even inside an exception text
        self._secrets: set[str] = set()
        problems: list[tuple[str, str]] = []

        static = static_labels(cfg.labels, self._env, self._hostname, problems)
        copy = copied_label_names(self._discover, problems)
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

        check_label_budget(cfg, static, copy, problems)

        self._targets: list[LabelTarget] = []
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
            self._targets.append(LabelTarget(index, src, base, dict(base), name, pinned=pinned))
        if problems:
            raise ConfigError(problems)

        # lookup for labels_for_source: index, URL as configured, redacted URL
        self._by_key: dict[Any, LabelTarget] = {}
        for t in self._targets:
            if t.source is not None:
                self._by_key[t.index] = t
                self._by_key[t.source.url] = t
                self._by_key[t.name] = t
        self._default = self._targets[0]
        #: targets added at run time (a discovered pod's poller), by the key given to add_target
        self._dynamic: dict[str, LabelTarget] = {}

    # --- the hot path

    def apply(self, event: Event, source: int | str | None = None) -> None:
        """Set ``event["labels"]`` to a new dict of the labels of ``source`` (default: the first
        Redis source). A new dict each time, so a later change never rewrites spooled events."""
        t = self._default if source is None else self._by_key.get(source, self._default)
        event["labels"] = t.merged.copy()

    def apply_global(self, event: Event) -> None:
        """Set ``event["labels"]`` to a new dict of the global static labels only: for a source
        that belongs to no polled Redis (a discovered pod whose Redis is not polled), whose
        events must not carry what discovery found for a configured Redis, a different server."""
        event["labels"] = self._static.copy()

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
        t = LabelTarget(-1, source, base, dict(base), key,
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
        await t.release()
        t.forget_metrics()

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
        from ..util.httpclient import HTTPClient

        self._closed = asyncio.Event()
        prom_password = urlsplit(self._discover.prometheus_url).password
        if prom_password:
            self._secrets.update({prom_password, unquote(prom_password)})
        self._session = HTTPClient(
            timeout=self._discover.timeout,
            headers={"Accept": "application/json", "User-Agent": "redis-shipper"},
        )
        configured = [t for t in self._targets if t.source is not None]
        firsts = await asyncio.gather(*(self._bounded_refresh(t) for t in configured))
        for t, ok in zip(configured, firsts, strict=True):
            t.task = asyncio.create_task(self._loop(t, ok), name=f"labels:{t.name}")
        for t in self._dynamic.values():  # added before start: their first round runs in their task
            if t.task is None:
                t.task = asyncio.create_task(self._loop(t, None), name=f"labels:{t.name}")

    async def _bounded_refresh(self, t: LabelTarget) -> bool:
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
        await asyncio.gather(*(t.release() for t in targets))
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _loop(self, t: LabelTarget, ok: bool | None) -> None:
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

    async def _guarded_refresh(self, t: LabelTarget) -> bool:
        try:
            return await self._bounded_refresh(t)
        except Exception:  # a bug must not kill the loop and freeze labels forever
            log.exception("label discovery for %s failed unexpectedly", t.name)
            return False

    async def refresh(self, source: int | str | None = None) -> bool:
        """One discovery round for one Redis: read its run_id, query Prometheus, adopt the copied
        labels. Returns True when the labels were confirmed by Prometheus. ``source`` as for
        :meth:`labels_for_source`, or the key of a target added at run time."""
        t = self._default if source is None else self._by_key.get(source, self._default)
        return await self._refresh(t)

    async def _refresh(self, t: LabelTarget) -> bool:
        if self._discover is None or t.source is None or self._session is None:
            return False
        try:
            run_id = await self._read_run_id(t)
        except Exception as e:  # any failure to reach Redis has the same outcome
            return self._failed(t, "redis", f"cannot read run_id from {t.name}: {describe_error(e)}")
        if run_id != t.run_id:
            if t.run_id is not None:
                log.info("run_id of %s changed (%s -> %s): rediscovering labels", t.name, t.run_id, run_id)
            t.run_id = run_id
        query = f"{self._discover.metric}{{run_id={promql_string(run_id)}}}"
        try:
            series = await query_vector(self._session, self._discover.prometheus_url, query)
        except Exception as e:
            return self._failed(t, "prometheus", f"query {query} failed: {describe_error(e)}")
        if not series:
            return self._failed(
                t, "no_series",
                f"Prometheus has no {query} yet (not scraped yet, or redis_exporter does not scrape {t.name})",
            )
        for s_ in series:
            t.seen.update((k, v) for k, v in series_identity(s_).items() if t.pinned.get(k) == v)
        pins = {k: v for k, v in t.pinned.items() if (k, v) in t.seen}
        if pins:
            # The static job/instance has been seen on a series: it names one of several jobs
            # scraping this Redis, not a fallback. Right after a restart the other job may be
            # scraped first; adopting its series would flip the labels to the wrong job.
            agreeing = [s_ for s_ in series if all(series_identity(s_).get(k) == v for k, v in pins.items())]
            if not agreeing:
                wanted = ", ".join(f"{k}={v!r}" for k, v in sorted(pins.items()))
                return self._failed(
                    t, "no_series",
                    f"{len(series)} series match {query} but none has {wanted} from `labels:` yet "
                    f"(found {[series_identity(s_) for s_ in series]})",
                )
            series = agreeing
        if len(series) > 1 and f"many:{run_id}" not in t.warned:
            t.warned.add(f"many:{run_id}")
            log.warning(
                "%d series match %s (%s); using the one agreeing most with the configured labels "
                "(set labels.job or labels.instance to choose)",
                len(series), query,
                [series_identity(s) for s in series],
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
        t.record_success()
        return True

    def _failed(self, t: LabelTarget, kind: str, message: str) -> bool:
        return t.record_failure(kind, message, self._secrets)

    async def _read_run_id(self, t: LabelTarget) -> str:
        client = t.client
        if client is None:
            assert t.source is not None
            client = t.client = redis_client(t.source)
            password = client.connection_pool.connection_kwargs.get("password")
            if password:
                self._secrets.add(password)
        info = await client.info("server")
        run_id = info.get("run_id") if isinstance(info, dict) else None
        if not isinstance(run_id, str) or not run_id:
            raise RuntimeError("INFO server has no run_id")
        return run_id


#: :func:`.label_target.redis_client` under the name tests/test_poller_client.py imports
_redis_client = redis_client
