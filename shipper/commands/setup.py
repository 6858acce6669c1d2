"""``redis-shipper setup elasticsearch --config FILE``: prepare each Elasticsearch/OpenSearch sink.

Like ``filebeat setup --index-management``: before the first event, install through the API

* the lifecycle policy ``redis-shipper`` (Elasticsearch ILM: roll over daily or at 50 GB, delete
  after ``--retention``; OpenSearch ISM: the same, attached by its ``ism_template``);
* the index template ``redis-shipper`` (the one shipped in the wheel, ``shipper/sinks/templates``,
  equal to ``deploy/elasticsearch`` / ``deploy/opensearch``), its patterns widened to the sink's
  ``index`` when that name does not match them, and without ``data_stream`` for plain indices;
* the data stream itself when the sink writes to one (``data_stream: true``), so that its
  mappings exist before a first bulk request could create it from another template.

Every step is idempotent: a second run puts the same documents (ILM and templates are
replaced in place, an ISM policy is updated with its sequence number, an existing data stream
is fine), so it belongs in a deploy pipeline. Exit 0 when every step worked, 1 otherwise, 2 for
a config error.
"""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import sys
from importlib.resources import files
from typing import Any

from ..config import ConfigError, ElasticsearchSinkConfig, load_config, parse_duration

NAME = "redis-shipper"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=["elasticsearch"], help="what to set up (OpenSearch included)")
    parser.add_argument("--config", "-c", required=True, help="the agent's YAML config (its elasticsearch sinks)")
    parser.add_argument("--retention", default="30d", metavar="DURATION",
                        help="delete indices older than this (the lifecycle policy; default 30d)")
    parser.add_argument("--no-policy", action="store_true", help="install no ILM/ISM policy")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="bound of each request")


def template_document(distribution: str) -> dict[str, Any]:
    """The index template shipped in the package for this distribution."""
    name = "opensearch" if distribution == "opensearch" else "elasticsearch"
    text = files("shipper.sinks").joinpath("templates", f"{name}-index-template.json").read_text("utf-8")
    return json.loads(text)


def template_for(sink: ElasticsearchSinkConfig, distribution: str, policy: str | None) -> dict[str, Any]:
    """The template as this sink needs it: patterns that match its index, data stream or not, policy."""
    doc = template_document(distribution)
    if not any(fnmatch.fnmatchcase(sink.index, p) for p in doc["index_patterns"]):
        doc["index_patterns"] = [sink.index if sink.data_stream else f"{sink.index}*"]
    if not sink.data_stream:
        doc.pop("data_stream", None)
    if policy is not None and distribution != "opensearch":
        settings = doc.setdefault("template", {}).setdefault("settings", {}).setdefault("index", {})
        settings["lifecycle"] = {"name": policy}
    return doc


def _age(seconds: float) -> str:
    return f"{int(seconds // 86400)}d" if seconds >= 86400 and seconds % 86400 == 0 else f"{int(seconds)}s"


def ilm_policy(retention: float) -> dict[str, Any]:
    """Elasticsearch ILM: one hot phase rolling over, deletion after the retention."""
    return {"policy": {
        "_meta": {"managed_by": NAME},
        "phases": {
            "hot": {"actions": {"rollover": {"max_age": "1d", "max_primary_shard_size": "50gb"}}},
            "delete": {"min_age": _age(retention), "actions": {"delete": {}}},
        },
    }}


def ism_policy(retention: float, patterns: list[str]) -> dict[str, Any]:
    """OpenSearch ISM: the same lifecycle, attached to new indices by ``ism_template``."""
    return {"policy": {
        "description": f"{NAME}: roll over daily, delete after {_age(retention)}",
        "default_state": "hot",
        "states": [
            {"name": "hot", "actions": [{"rollover": {"min_index_age": "1d", "min_primary_shard_size": "50gb"}}],
             "transitions": [{"state_name": "delete", "conditions": {"min_index_age": _age(retention)}}]},
            {"name": "delete", "actions": [{"delete": {}}], "transitions": []},
        ],
        "ism_template": [{"index_patterns": patterns, "priority": 200}],
    }}


class Step(Exception):
    """A request that failed: the line to print."""


async def _request(session: Any, method: str, url: str, body: Any = None, *,
                   params: dict[str, str] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data is not None else {}
    resp = await session.request(method, url, body=data, headers=headers, params=params)
    raw = resp.body
    try:
        return resp.status, json.loads(raw) if raw else {}
    except ValueError:
        return resp.status, raw[:200].decode("utf-8", "replace")


def _reason(body: Any) -> str:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return f"{body['error'].get('type')}: {body['error'].get('reason')}"
    return str(body)[:300]


async def setup_sink(sink: ElasticsearchSinkConfig, *, retention: float | None, timeout: float) -> list[str]:
    """Install policy, template and data stream for one sink; the lines to print. Raises Step."""
    from ..sinks import http

    headers = http.auth_headers(basic_auth=sink.basic_auth, api_key=sink.api_key, api_key_file=sink.api_key_file,
                                api_key_env=sink.api_key_env)
    base = sink.url.rstrip("/")
    out: list[str] = []
    async with http.make_session(tls=sink.tls, timeout=timeout, headers=headers) as session:
        status, body = await _request(session, "GET", base + "/")
        if status != 200:
            raise Step(f"GET /: HTTP {status}: {_reason(body)}")
        version = body.get("version") or {}
        distribution = version.get("distribution") or "elasticsearch"
        out.append(f"{distribution} {version.get('number', '?')}")
        policy = NAME if retention is not None else None
        doc = template_for(sink, distribution, policy)
        if retention is not None:
            out.append(await _put_policy(session, base, distribution, retention, doc["index_patterns"]))
        status, body = await _request(session, "PUT", f"{base}/_index_template/{NAME}", doc)
        if status != 200:
            raise Step(f"PUT _index_template/{NAME}: HTTP {status}: {_reason(body)}")
        out.append(f"index template {NAME} installed (patterns {', '.join(doc['index_patterns'])})")
        if sink.data_stream:
            status, body = await _request(session, "PUT", f"{base}/_data_stream/{sink.index}")
            if status == 200:
                out.append(f"data stream {sink.index} created")
            elif status == 400 and isinstance(body, dict) and \
                    (body.get("error") or {}).get("type") == "resource_already_exists_exception":
                out.append(f"data stream {sink.index} exists")
            else:
                raise Step(f"PUT _data_stream/{sink.index}: HTTP {status}: {_reason(body)}")
    return out


async def _put_policy(session: Any, base: str, distribution: str, retention: float, patterns: list[str]) -> str:
    if distribution != "opensearch":
        status, body = await _request(session, "PUT", f"{base}/_ilm/policy/{NAME}", ilm_policy(retention))
        if status != 200:
            raise Step(f"PUT _ilm/policy/{NAME}: HTTP {status}: {_reason(body)}")
        return f"ILM policy {NAME} installed (delete after {_age(retention)})"
    url = f"{base}/_plugins/_ism/policies/{NAME}"
    status, body = await _request(session, "GET", url)
    params = None
    if status == 200:  # an update needs the current sequence number, else 409
        params = {"if_seq_no": str(body.get("_seq_no")), "if_primary_term": str(body.get("_primary_term"))}
    elif status != 404:
        raise Step(f"GET _plugins/_ism/policies/{NAME}: HTTP {status}: {_reason(body)}")
    status, body = await _request(session, "PUT", url, ism_policy(retention, patterns), params=params)
    if status not in (200, 201):
        raise Step(f"PUT _plugins/_ism/policies/{NAME}: HTTP {status}: {_reason(body)}")
    return f"ISM policy {NAME} {'updated' if params else 'created'} (delete after {_age(retention)})"


def main(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
        retention = None if args.no_policy else parse_duration(args.retention)
    except ConfigError as e:
        print(f"redis-shipper setup: invalid config\n{e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"redis-shipper setup: --retention: {e}", file=sys.stderr)
        return 2
    sinks = [(i, s) for i, s in enumerate(cfg.sinks) if isinstance(s, ElasticsearchSinkConfig)]
    if not sinks:
        print(f"redis-shipper setup: {args.config} has no elasticsearch sink", file=sys.stderr)
        return 2
    from ..sinks.http import redact_url

    failed = False
    for i, sink in sinks:
        subject = f"sinks[{i}] {redact_url(sink.url)}"
        try:
            lines = asyncio.run(setup_sink(sink, retention=retention, timeout=args.timeout))
        except (Step, ValueError, OSError, TimeoutError) as e:
            print(f"FAIL {subject}: {e}", file=sys.stderr)
            failed = True
            continue
        except Exception as e:  # noqa: BLE001 - HTTP, ssl, DNS: one line each
            print(f"FAIL {subject}: {type(e).__name__}: {e}", file=sys.stderr)
            failed = True
            continue
        for line in lines:
            print(f"OK   {subject}: {line}")
    return 1 if failed else 0
