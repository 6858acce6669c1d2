"""``redis-shipper check --connect``: reach what the config names and say what works.

Each source or sink type's probe is registered with the type (shipper/registry/): a Redis is
asked PING, INFO and every command its pollers send (naming what the ACL denies), Loki its
``/ready`` and build info, Elasticsearch ``GET /`` and the index template, the Kubernetes API
server the list and watch of the node's pods (shipper/sources/kubernetes/probe.py); Prometheus
label discovery is checked against the run_ids the Redis probes saw. Every failure is one line of
the report, never an exception.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..config import AgentConfig, ElasticsearchSinkConfig, KubernetesSourceConfig, LokiSinkConfig, RedisSourceConfig
from ..registry import SINKS, SOURCES

if TYPE_CHECKING:
    from .check import Report

#: poll kind -> (the command the poller sends, the ACL permission it needs)
POLLER_COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "slowlog": (("SLOWLOG", "GET", "1"), "+slowlog|get"),
    "commandlog": (("COMMANDLOG", "GET", "1", "slow"), "+commandlog|get"),
    "latency": (("LATENCY", "LATEST"), "+latency|latest"),
    "acl_log": (("ACL", "LOG", "1"), "+acl|log"),
    "config": (("CONFIG", "GET", "maxmemory"), "+config|get"),
}
#: what every connection needs whatever is polled (INFO for identity, CLIENT SETNAME at connect)
BASE_PERMISSIONS = ("+ping", "+info", "+client|setname")

ES_TEMPLATE_NAME = "redis-shipper"


def _err_text(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return f"{type(e).__name__}: {text}" if text != type(e).__name__ else text


async def check_redis(key: str, sc: RedisSourceConfig, timeout: float, report: Report) -> str | None:
    """Reach one Redis with the poller's own connection code; returns its run_id."""
    from redis.exceptions import ResponseError

    from parsers.replies import identity_from_info, parse_info

    from ..sources.redis.client import RedisConnection, safe_url
    from ..sources.redis.poll import is_unsupported
    from ..sources.redis.source import classify_error

    subject = f"{key} redis {safe_url(sc.url)}"
    conn = RedisConnection(sc)
    try:
        try:
            await asyncio.wait_for(conn.ensure(), timeout)
            replies = await asyncio.wait_for(conn.pipeline(("PING",), ("INFO", "server"), ("INFO", "replication")),
                                             timeout)
        except Exception as e:  # noqa: BLE001 - every failure is a line of the report
            kind = classify_error(e)
            hint = {
                "auth": "check username / password_file (NOAUTH / WRONGPASS)",
                "noperm": "the user may not run CLIENT SETNAME at connect: grant +client|setname",
                "timeout": f"no answer within {timeout:g}s",
                "connection": "connection refused, reset or name not resolved",
                "loading": "Redis is loading its dataset; try again",
            }.get(kind, "")
            report.result("fail", subject, f"{kind}: {_err_text(e)}" + (f" ({hint})" if hint else ""))
            return None
        for name, rep in zip(("PING", "INFO server"), replies[:2], strict=True):
            if isinstance(rep, ResponseError):
                grant = "+ping" if name == "PING" else "+info"
                report.result("fail", subject, f"{name} refused: {rep} (grant {grant})")
                return None
        info = parse_info(replies[1])
        if not isinstance(replies[2], ResponseError):
            info.update(parse_info(replies[2]))
        ident = identity_from_info(info)
        run_id = ident.get("run_id") or None
        report.result("ok", subject, f"{ident.get('server')} {ident.get('version')}, role {ident.get('role')}, "
                      f"run_id {run_id}")
        denied: list[str] = []
        for kind, (command, perm) in POLLER_COMMANDS.items():
            if not getattr(sc, kind).enabled:
                continue
            try:
                (rep,) = await asyncio.wait_for(conn.pipeline(command), timeout)
            except Exception as e:  # noqa: BLE001
                report.result("fail", subject, f"{' '.join(command)}: {_err_text(e)}")
                return run_id
            cmd = " ".join(command[:2])
            if isinstance(rep, ResponseError):
                text = str(rep)
                if "NOPERM" in text or "no permissions" in text.lower():
                    denied.append(perm)
                    report.result("warn", subject, f"{cmd}: denied by ACL ({perm} missing): {kind} events will "
                                  "not be shipped")
                elif is_unsupported(rep):
                    if kind == "commandlog":
                        report.result("ok", subject, f"{cmd}: not supported by this server (fine: SLOWLOG is "
                                      "polled; COMMANDLOG is Valkey 8.1+)")
                    else:
                        report.result("warn", subject, f"{cmd}: not supported by this server ({text[:120]})")
                else:
                    report.result("warn", subject, f"{cmd}: error reply: {text[:200]}")
            else:
                report.result("ok", subject, f"{cmd}: allowed")
        if sc.cluster.enabled:  # only a cluster-mode Redis is asked CLUSTER commands
            from ..sources.redis.cluster import check_cluster_access
            for status, text, perm in await asyncio.wait_for(check_cluster_access(conn), timeout):
                report.result(status, subject, text)
                denied += [perm] if perm else []
        if denied:
            user = sc.username or "<user>"
            report.result("warn", subject, f"to ship everything: ACL SETUSER {user} {' '.join(denied)}")
        return run_id
    finally:
        await conn.close()


async def check_kubernetes(key: str, sc: KubernetesSourceConfig, timeout: float, report: Report) -> None:
    """The agent's own list and watch of the node's pods, with the configured credentials."""
    from ..sources.kubernetes import probe

    subject = f"{key} kubernetes node {sc.node}"
    await probe.probe(sc, timeout, lambda status, text: report.result(status, subject, text))


async def _http_get(session: Any, url: str, timeout: float) -> tuple[int, bytes]:
    async with asyncio.timeout(timeout):
        resp = await session.get(url)
        return resp.status, resp.body


async def check_sink(key: str, sk: LokiSinkConfig | ElasticsearchSinkConfig, timeout: float,
                     report: Report) -> None:
    import orjson

    from ..sinks import http

    subject = f"{key} {sk.type} {http.redact_url(sk.url)}"
    try:
        if isinstance(sk, LokiSinkConfig):
            headers = http.auth_headers(basic_auth=sk.basic_auth, bearer_token_file=sk.bearer_token_file,
                                        bearer_token_env=sk.bearer_token_env)
            if sk.tenant:
                headers["X-Scope-OrgID"] = sk.tenant
        else:
            headers = http.auth_headers(basic_auth=sk.basic_auth, api_key=sk.api_key, api_key_file=sk.api_key_file,
                                        api_key_env=sk.api_key_env)
        for v in headers.values():
            report.secrets.add(v.split(" ", 1)[-1])
        session = http.make_session(tls=sk.tls, timeout=timeout, headers=headers)
    except (ValueError, OSError) as e:
        report.result("fail", subject, f"cannot prepare the client: {_err_text(e)}")
        return
    base = sk.url.rstrip("/")
    try:
        if isinstance(sk, LokiSinkConfig):
            from ..sinks.loki import PUSH_PATH

            base = base.removesuffix(PUSH_PATH)
            status, body = await _http_get(session, base + "/ready", timeout)
            text = body[:200].decode("utf-8", "replace").strip()
            if status == 200:
                report.result("ok", subject, f"/ready: {text or 'ready'}")
            elif status in (401, 403):
                report.result("fail", subject, f"/ready: HTTP {status} (check basic_auth / bearer_token_file)")
            elif status == 404:
                report.result("warn", subject, "/ready: HTTP 404 (a gateway that hides it? the push path is what "
                              "matters)")
            else:
                report.result("fail", subject, f"/ready: HTTP {status}: {text}")
            status, body = await _http_get(session, base + "/loki/api/v1/status/buildinfo", timeout)
            if status == 200:
                try:
                    version = orjson.loads(body).get("version")
                except (orjson.JSONDecodeError, AttributeError):
                    version = None
                report.result("ok", subject, f"Loki version {version or '?'}")
        else:
            dist = "elasticsearch"
            status, body = await _http_get(session, base + "/", timeout)
            if status == 401:
                report.result("fail", subject, "GET /: HTTP 401 (check api_key_file / basic_auth)")
                return
            if status == 403:
                # authenticated; a writer-only role (create_doc) may not read GET / -- fine for shipping
                report.result("warn", subject, "GET /: HTTP 403: the credentials work but this role may not read "
                              "the cluster info (a create_doc-only role is enough for shipping)")
            elif status != 200:
                report.result("fail", subject, f"GET /: HTTP {status}: {body[:200].decode('utf-8', 'replace')}")
                return
            else:
                try:
                    ver = orjson.loads(body).get("version") or {}
                except (orjson.JSONDecodeError, AttributeError):
                    ver = {}
                dist = ver.get("distribution") or "elasticsearch"
                report.result("ok", subject, f"{dist} {ver.get('number', '?')}")
            status, _ = await _http_get(session, f"{base}/_index_template/{ES_TEMPLATE_NAME}", timeout)
            if status == 200:
                report.result("ok", subject, f"index template {ES_TEMPLATE_NAME} installed")
            elif status == 404:
                template = "deploy/opensearch" if dist == "opensearch" else "deploy/elasticsearch"
                report.result("warn", subject, f"index template {ES_TEMPLATE_NAME} not installed: PUT "
                              f"_index_template/{ES_TEMPLATE_NAME} with {template}/index-template.json")
            else:
                report.result("warn", subject, f"could not read the index template (HTTP {status})")
    except (TimeoutError, OSError, Exception) as e:  # noqa: BLE001 - HTTP, ssl, DNS: all one line
        report.result("fail", subject, _err_text(e))
    finally:
        await session.close()


async def check_prometheus(cfg: AgentConfig, run_ids: list[str | None], timeout: float, report: Report) -> None:
    import orjson

    from ..sinks.http import redact_url
    from ..util.httpclient import HTTPClient

    d = cfg.discover_labels
    assert d is not None

    subject = f"discover_labels {redact_url(d.prometheus_url)}"
    url = d.prometheus_url.rstrip("/") + "/api/v1/query"
    try:
        async with HTTPClient(timeout=timeout) as s:
            body = orjson.loads((await s.get(url, params={"query": d.metric})).body)
    except Exception as e:  # noqa: BLE001
        report.result("fail", subject, _err_text(e))
        return
    if not isinstance(body, dict) or body.get("status") != "success":
        report.result("fail", subject, f"query {d.metric} failed: {str(body)[:200]}")
        return
    series = [r.get("metric", {}) for r in (body.get("data") or {}).get("result") or []]
    report.result("ok" if series else "warn", subject,
                  f"{len(series)} series of {d.metric}" + ("" if series else ": is redis_exporter scraped?"))
    for rid in run_ids:
        if not rid:
            continue
        match = [m for m in series if m.get("run_id") == rid]
        if match:
            labels = {k: match[0].get(k) for k in d.copy_labels if k in match[0]}
            report.result("ok", subject, f"run_id {rid}: events will carry {labels}")
        else:
            report.result("warn", subject, f"no {d.metric} series has run_id {rid}: is redis_exporter scraping "
                          "this Redis? (the static labels are used meanwhile)")


async def check_connect(cfg: AgentConfig, timeout: float, report: Report) -> None:
    run_ids: list[str | None] = []
    for i, sc in enumerate(cfg.sources):
        source_probe = SOURCES.get(sc.type).probe
        if source_probe is not None:
            run_ids.append(await source_probe(f"sources[{i}]", sc, timeout, report))
    for i, sk in enumerate(cfg.sinks):
        sink_probe = SINKS.get(sk.type).probe
        if sink_probe is not None:
            await sink_probe(f"sinks[{i}]", sk, timeout, report)
    if cfg.discover_labels is not None:
        await check_prometheus(cfg, run_ids, timeout, report)
