"""URLs fit for logs, names and metric labels: no credentials, ever."""

from __future__ import annotations

from urllib.parse import urlsplit


def redact_url(url: str, *, drop_query: bool = False) -> str:
    """``url`` without ``user:password@``; with ``drop_query`` also without query and fragment.

    Redis URLs can carry ``?password=``, so the Redis side drops the query too
    (:func:`shipper.sources.redis.client.safe_url`); HTTP sink URLs keep theirs.
    """
    parts = urlsplit(url)
    if parts.username is None and parts.password is None and not (drop_query and (parts.query or parts.fragment)):
        return url
    host = parts.hostname or ""
    if ":" in host:  # IPv6: urlsplit strips the brackets
        host = f"[{host}]"
    if parts.port:
        host += f":{parts.port}"
    out = f"{parts.scheme}://{host}{parts.path}"  # not urlunsplit: it drops the // of unix:///path
    if not drop_query:
        out += (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return out
