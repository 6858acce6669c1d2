"""What ``redis-shipper check`` says about a ``type: kubernetes`` source, and what ``--connect``
asks the API server.

Offline, :func:`describe` states what the source will follow (node, namespaces, selector,
container image patterns, log root, what it polls) and which credentials it will use. With
``--connect``, :func:`probe` makes the agent's own two requests (those of
:class:`.watch.PodWatcher`) with those credentials -- the list of the node's pods, then a watch of
them, closed as soon as the server accepts it -- so a ``check`` that passes means the agent's
discovery will too. A 403 names the RBAC verb and
resource the service account lacks (the API server's own message says which user it saw).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

from shipper.config import KubernetesSourceConfig

from .pods import targets_of
from .watch import ApiError, PodWatcher, WatchExpired

#: ``result(status, text)``: one line of the ``--connect`` report (status ok / warn / fail)
Result = Callable[[str, str], None]


def _patterns(patterns: list[str]) -> str:
    return ", ".join(patterns) or "none"


def describe(cfg: KubernetesSourceConfig, polls: list[str]) -> str:
    """One summary line: what the source follows and polls (``polls``: the kinds ``poll:``
    enables), and with which credentials."""
    selector = f"pods matching {cfg.selector!r}" if cfg.selector else "every pod"
    if cfg.poll is not None:
        poll = f"polls {cfg.poll.scheme}://<podIP>:{cfg.poll.port} ({', '.join(polls) or 'nothing'})"
    else:
        poll = "logs only (no poll:)"
    return (f"kubernetes node {cfg.node}: {selector} of every namespace, containers with image "
            f"{_patterns(cfg.images)} (not {_patterns(cfg.exclude_images)}), logs under {cfg.log_root} "
            f"({cfg.container_format}); {poll}; credentials: {credentials(cfg)}")


def credentials(cfg: KubernetesSourceConfig) -> str:
    """Where the API server's address and the token come from, in the order make_client tries."""
    if cfg.kubeconfig:
        return f"kubeconfig {cfg.kubeconfig}"
    if os.path.exists(os.path.join(cfg.service_account_dir, "token")):
        return f"the pod's service account ({cfg.service_account_dir})"
    if os.environ.get("KUBECONFIG"):
        return f"$KUBECONFIG ({os.environ['KUBECONFIG']})"
    return f"the pod's service account ({cfg.service_account_dir}, not present here)"


def offline_problems(cfg: KubernetesSourceConfig) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(errors, warnings) ``check`` can tell without the network, keyed below the source's key."""
    errors: list[tuple[str, str]] = []
    warnings: list[tuple[str, str]] = []
    if cfg.kubeconfig:
        try:
            with open(os.path.expanduser(cfg.kubeconfig), "rb") as f:
                f.read(1)
        except OSError as e:
            errors.append(("kubeconfig", f"cannot read {cfg.kubeconfig!r}: {e.strerror or e}"))
    elif not os.path.exists(os.path.join(cfg.service_account_dir, "token")) and not os.environ.get("KUBECONFIG"):
        warnings.append(("service_account_dir", f"no token in {cfg.service_account_dir!r} and no $KUBECONFIG: "
                         "outside a pod, set kubeconfig"))
    return errors, warnings


def _forbidden(verb: str, e: ApiError) -> str:
    message = e.message or str(e)
    return (f"{verb} pods: HTTP 403: {message[:300]} (the agent's role needs verb {verb!r} on resource "
            "'pods' in API group \"\" at the cluster scope: deploy/kubernetes has the ClusterRole)")


def _api_failure(verb: str, e: BaseException) -> str:
    if isinstance(e, ApiError):
        if e.code == 403:
            return _forbidden(verb, e)
        if e.code == 401:
            return f"{verb} pods: HTTP 401: the token is not accepted (expired, or for another cluster?)"
        return f"{verb} pods: HTTP {e.code}: {(e.message or str(e))[:300]}"
    if isinstance(e, WatchExpired):
        return f"{verb} pods: HTTP 410: {str(e)[:300]}"
    if isinstance(e, TimeoutError):
        return f"{verb} pods: no answer in time"
    return f"{verb} pods: {type(e).__name__}: {str(e)[:300]}"


async def probe(cfg: KubernetesSourceConfig, timeout: float, result: Result) -> None:
    """List, then watch, the node's pods as the agent does; one report line per request."""
    seen: dict[str, dict[str, Any]] = {}

    async def keep(pods: dict[str, dict[str, Any]]) -> None:
        seen.clear()
        seen.update(pods)

    short = cfg.model_copy(update={"timeout": timeout})
    watcher = PodWatcher(short, keep, name=f"kubernetes:{cfg.node}")
    try:
        try:
            watcher.connect()
        except Exception as e:  # noqa: BLE001 - a bad kubeconfig, no service account: one line
            result("fail", f"cannot build the API client: {type(e).__name__}: {str(e)[:300]}")
            return
        try:
            async with asyncio.timeout(timeout):
                await watcher.list_once()
        except Exception as e:  # noqa: BLE001 - every failure is a line of the report
            result("fail", _api_failure("list", e))
            return
        targets = [t for pod in seen.values() for t in targets_of(pod, cfg.images, cfg.exclude_images)]
        shown = ", ".join(f"{t.namespace}/{t.pod}/{t.container}" for t in targets[:10])
        more = f" and {len(targets) - 10} more" if len(targets) > 10 else ""
        matching = " matching the selector" if cfg.selector else ""
        result("ok", f"list pods: allowed; {len(seen)} pod(s){matching} on node {cfg.node} now, "
               f"{len(targets)} Redis container(s) to follow" + (f": {shown}{more}" if targets else ""))
        try:
            async with asyncio.timeout(timeout):
                async with watcher.open_watch():
                    pass  # accepted: the event stream began
        except Exception as e:  # noqa: BLE001
            result("fail", _api_failure("watch", e))
            return
        result("ok", "watch pods: allowed")
    finally:
        await watcher.close()
