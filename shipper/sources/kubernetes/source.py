"""``type: kubernetes``: follow every Redis container of this node's pods, as they come and go.

The source reads no log itself. It watches the node's pods (:mod:`.watch`), asks :mod:`.pods`
which Redis containers run, and keeps the agent's set of per-pod sources equal to that: a file
source on the container's kubelet log files and, with ``poll``, a Redis poller on the pod's IP,
both labelled with the pod's identity and the ``instance`` redis_exporter gives it. A pod that goes
has its sources drained and stopped (their checkpoints and audit streams stay in the spool); a pod
that comes back under the same name resumes them.

The agent side is a :class:`SourceControl` (``ctx.sources``): the runtime's dynamic-source
mechanism, the same one SIGHUP reload uses.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from shipper.api import Source, SourceContext
from shipper.config import KubernetesSourceConfig
from shipper.observe import metrics

from .pods import Target, target_labels, targets_of
from .watch import PodWatcher

log = logging.getLogger("redis_shipper.kubernetes")


@dataclass(frozen=True)
class Managed:
    """One source this discovery runs for a target: its name (stable: the audit stream's name),
    its config (as a config file would give it), its labels, and the labeler target its events
    take discovered labels from (``k8s:<ns>/<pod>/<container>``, shared by the container's log
    files and its poller: both are that one Redis)."""

    name: str
    config: dict[str, Any]
    labels: dict[str, str]
    target: str | None = None


class SourceControl(Protocol):
    """How a discovery source adds and stops other sources in the running agent.

    ``add`` starts a source from a config dict (validated like the config file's ``sources``) whose
    events carry ``labels`` merged over the agent's global labels, and, once the poller of
    ``target`` asked Prometheus, the labels redis_exporter's series of that Redis carry; adding a
    name that runs already replaces nothing and returns. ``stop`` drains the named source (what it
    has read is committed) and stops it; its checkpoints and audit stream stay, so adding it again resumes.
    """

    async def add(self, name: str, config: dict[str, Any], labels: dict[str, str], *,
                  target: str | None = None) -> None: ...

    async def stop(self, name: str) -> None: ...


def managed_for(cfg: KubernetesSourceConfig, t: Target) -> list[Managed]:
    """The sources one target calls for: its log files, and its Redis when ``poll`` is set. Their
    labels go over the agent's global ones (the runtime merges them)."""
    port = cfg.poll.port if cfg.poll is not None else 6379
    labels = target_labels(t, preset=cfg.instance_preset, port=port, copy_pod_labels=cfg.pod_labels,
                           static=dict(cfg.labels))
    # the kubernetes source's drop: rules, on each of a pod's sources (absent when there are none)
    drop = {"drop": [r.model_dump(exclude_none=True) for r in cfg.drop]} if cfg.drop else {}
    target = f"k8s:{t.key}"
    out = [Managed(f"k8s:{t.key}:file",
                   {"type": "file", "path": t.log_glob(cfg.log_root), "container_format": cfg.container_format,
                    **drop},
                   labels, target)]
    if cfg.poll is not None:
        poll = cfg.poll.model_dump(exclude_none=True, exclude={"port", "scheme"})
        host = f"[{t.pod_ip}]" if ":" in t.pod_ip else t.pod_ip
        out.append(Managed(f"k8s:{t.key}:redis",
                           {"type": "redis", "url": f"{cfg.poll.scheme}://{host}:{cfg.poll.port}", **poll, **drop},
                           labels, target))
    return out


class KubernetesSource(Source):
    """Discovers the Redis pods of one node and runs their sources through ``ctx.sources``."""

    def __init__(self, cfg: KubernetesSourceConfig, *, name: str | None = None, client_factory: Any = None) -> None:
        self.cfg = cfg
        self.name = name or f"kubernetes:{cfg.node}"
        self.key_prefix = f"kubernetes:{cfg.node}:"
        #: name -> what runs now (config and labels): a pod's new IP replaces its poller
        self.running: dict[str, Managed] = {}
        #: what the runtime refused to start (reported once; tried again when the pod changes)
        self.refused: dict[str, Managed] = {}
        self._lock = asyncio.Lock()
        self._control: SourceControl | None = None
        kwargs = {"client_factory": client_factory} if client_factory is not None else {}
        self.watcher = PodWatcher(cfg, self._reconcile, name=self.name, **kwargs)

    async def run(self, ctx: SourceContext) -> None:
        control = getattr(ctx, "sources", None)
        if control is None:
            raise RuntimeError("a kubernetes source needs the runtime's source control (ctx.sources)")
        self._control = control
        try:
            await self.watcher.run(ctx.stop)
        finally:
            await self._stop_all()

    async def _reconcile(self, pods: dict[str, dict[str, Any]]) -> None:
        """Make the running set equal to what ``pods`` call for: stop what went or changed, add what
        is new. Stops first, so a pod whose IP changed gets its poller back on the new address."""
        wanted: dict[str, Managed] = {}
        for pod in pods.values():
            for t in targets_of(pod, self.cfg.images, self.cfg.exclude_images):
                for m in managed_for(self.cfg, t):
                    wanted[m.name] = m
        async with self._lock:
            assert self._control is not None
            for name in [n for n, m in self.running.items() if wanted.get(n) != m]:
                log.info("kubernetes source %s: stopping %s", self.name, name, extra={"source": self.name})
                await self._control.stop(name)
                del self.running[name]
            for name, m in wanted.items():
                if name in self.running or self.refused.get(name) == m:
                    continue
                try:
                    await self._control.add(name, m.config, m.labels, target=m.target)
                except Exception as e:  # a config the schema refuses: said once, the others go on
                    self.refused[name] = m
                    log.error("kubernetes source %s: cannot follow %s: %s", self.name, name, e,
                              extra={"source": self.name})
                    continue
                self.refused.pop(name, None)
                log.info("kubernetes source %s: following %s (%s)", self.name, name,
                         m.config.get("path") or "poller", extra={"source": self.name})
                self.running[name] = m
            metrics.KUBERNETES_TARGETS.labels(source=self.name).set(
                sum(1 for n in self.running if n.endswith(":file")))

    async def _stop_all(self) -> None:
        """At the agent's shutdown the runtime stops every source itself; at a reload that removes
        this discovery, its sources go with it."""
        if self._control is None:
            return
        async with self._lock:
            for name in list(self.running):
                try:
                    await self._control.stop(name)
                except Exception as e:  # shutting down: report and go on with the others
                    log.warning("kubernetes source %s: stopping %s failed: %s", self.name, name, e)
                del self.running[name]
