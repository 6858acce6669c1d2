"""``redis-shipper run [--config FILE]``: run the agent until SIGTERM/SIGINT.

With no config, it looks for what a Debian host usually has (``/var/log/redis/redis-server.log``,
``/var/log/redis/redis-sentinel.log``, a Redis answering on ``127.0.0.1:6379``), ships to the
embedded local sink under ``./state``, and says what it found and where events go.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
import sys
from typing import Any

from ..config import AgentConfig, ConfigError, load_config, parse_config
from ..observe.logs import setup_logging
from ..observe.server import ObserveServer, agent_status
from ..util.memory import release_free_memory
from ..util.tuning import tune_agent

log = logging.getLogger("redis_shipper")

DEBIAN_LOGS = ("/var/log/redis/redis-server.log", "/var/log/redis/redis-sentinel.log")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", help="YAML config file (default: discover local Redis logs)")
    parser.add_argument("--state-dir", help="override state_dir")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="override log_level")
    parser.add_argument("--log-format", choices=["json", "logfmt"], default="json",
                        help="stderr as JSON lines (default) or logfmt for a person at a terminal")


def default_config(state_dir: str | None = None) -> tuple[AgentConfig, list[str]]:
    """What ``run`` does with no config: local Debian logs, a local Redis if it answers."""
    found: list[str] = []
    sources: list[dict[str, Any]] = []
    for path in DEBIAN_LOGS:
        if os.access(path, os.R_OK):
            sources.append({"type": "file", "path": path})
            found.append(f"log file {path}")
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith((b"+PONG", b"-NOAUTH")):
                sources.append({"type": "redis", "url": "redis://127.0.0.1:6379"})
                found.append("Redis at redis://127.0.0.1:6379")
    except OSError:
        pass
    data: dict[str, Any] = {"sources": sources, "state_dir": state_dir or "./state"}
    return parse_config(data, "defaults"), found


def main(args: argparse.Namespace) -> int:
    try:
        if args.config:
            cfg = load_config(args.config)
            found: list[str] | None = None
        else:
            cfg, found = default_config(args.state_dir)
        if args.state_dir:
            cfg.state_dir = args.state_dir
        if args.log_level:
            cfg.log_level = args.log_level
    except ConfigError as e:
        print(f"redis-shipper: invalid config\n{e}", file=sys.stderr)
        return 2
    setup_logging(cfg.log_level, fmt=args.log_format)
    tune_agent()  # the interpreter and allocator settings, with their measurements: shipper/util/tuning.py
    if found is not None:
        where = ", ".join(found) if found else "nothing (no Debian Redis log, no Redis on 127.0.0.1:6379)"
        sinks = "the local sink under " + os.path.join(cfg.state_dir, "events")
        print(f"redis-shipper: no --config; found {where}; events go to {sinks} "
              f"(read them with: redis-shipper events --state-dir {cfg.state_dir})", file=sys.stderr)
    try:
        return asyncio.run(_run(cfg, args.config))
    except ConfigError as e:
        print(f"redis-shipper: invalid config\n{e}", file=sys.stderr)
        return 2


async def _run(cfg: AgentConfig, config_path: str | None) -> int:
    try:
        os.makedirs(cfg.state_dir, exist_ok=True)
        probe = os.path.join(cfg.state_dir, ".write-test")
        with open(probe, "w") as f:
            f.write("ok")
        os.unlink(probe)
    except OSError as e:
        raise ConfigError([("state_dir", f"cannot write to {cfg.state_dir!r}: {e.strerror}")]) from None
    stop = asyncio.Event()
    reload = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if config_path:
        loop.add_signal_handler(signal.SIGHUP, reload.set)
    holder: dict[str, Any] = {}

    def status() -> dict[str, Any]:
        return agent_status(holder["agent"]) if "agent" in holder else {"started": False}

    # first, so that a busy port is a config error (exit 2) before anything is read
    server = ObserveServer(cfg.metrics.listen, status)

    def request_reload() -> str | None:
        """POST /-/reload (HTTP thread): the SIGHUP reload, refused at once if the file is broken."""
        if not config_path:
            return "the agent runs without --config: nothing to reload"
        try:
            load_config(config_path)
        except ConfigError as e:
            return str(e)
        loop.call_soon_threadsafe(reload.set)
        return None

    server.reload = request_reload
    await server.start()
    try:
        agent = holder["agent"] = await _start(cfg)
        while True:
            await _wait_signal(stop, reload)
            if stop.is_set():
                break
            # SIGHUP: validate the new config first; a broken one keeps the running agent as it is
            try:
                new_cfg = load_config(config_path)  # type: ignore[arg-type]
            except ConfigError as e:
                log.error("reload refused, keeping the running config: %s", e)
                continue
            if sources_only_change(cfg, new_cfg):
                stopped, started = await agent.dynamic.reload(list(new_cfg.sources))
                agent.cfg = cfg = new_cfg
                log.info("reloaded %s: the sources changed, the rest runs on", config_path,
                         extra={"stopped": stopped, "started": started})
                continue
            log.info("reloading %s: stopping the current pipeline (positions are kept in the spool)", config_path)
            await agent.shutdown()
            holder.pop("agent", None)
            if new_cfg.state_dir != cfg.state_dir:
                log.warning("state_dir changed on reload; positions start from the new state_dir")
            if new_cfg.metrics.listen != cfg.metrics.listen:
                try:
                    new_server = ObserveServer(new_cfg.metrics.listen, status)
                    new_server.reload = request_reload
                    await server.close()
                    await new_server.start()
                    server = new_server
                except ConfigError as e:
                    log.error("metrics.listen not changed: %s", e)
            cfg = new_cfg
            setup_logging(cfg.log_level)
            agent = holder["agent"] = await _start(cfg)
        log.info("stopping: flushing for at most %.0fs", cfg.shutdown_timeout)
        await agent.shutdown()
        log.info("stopped")
    finally:
        await server.close()  # after the flush, so /metrics answers during it
    return 0


def sources_only_change(old: AgentConfig, new: AgentConfig) -> bool:
    """A reload that adds, removes or changes file or kubernetes sources and nothing else is applied
    to the running agent (the sources that stay go on untouched: no re-read, no restart of the
    sinks). Anything else, a Redis source among it (the labeler keys its discovery by the Redis
    sources), restarts the pipeline."""
    if old.model_dump(exclude={"sources"}) != new.model_dump(exclude={"sources"}):
        return False
    from ..pipeline.runtime import source_name

    if len({source_name(s) for s in new.sources}) != len(new.sources):
        return False  # two entries with one name: only a restart keeps them apart
    return [s for s in old.sources if s.type == "redis"] == [s for s in new.sources if s.type == "redis"]


async def _start(cfg: AgentConfig):  # type: ignore[no-untyped-def]
    from ..pipeline.runtime import Agent

    agent = Agent(cfg)
    await agent.start()
    # what start-up freed (the compiler's scratch memory of the parser's generated catalogue,
    # ~4-6 MB) goes back to the kernel; from now on freed heap is kept for the next batch
    release_free_memory()
    log.info("started", extra={"sources": [s.name for s in agent.sources],
                                "sinks": [s.name for s in agent.sinks], "state_dir": cfg.state_dir})
    return agent


async def _wait_signal(stop: asyncio.Event, reload: asyncio.Event) -> None:
    reload.clear()
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(reload.wait())]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for w in waiters:
        w.cancel()
