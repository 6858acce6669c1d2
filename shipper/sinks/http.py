"""What every HTTP sink shares: one pooled client (shipper.util.httpclient), TLS, and the reading of answers.

Why one module: Loki and Elasticsearch disagree on bodies but agree on transport. Both need the
same TLS (CA, mTLS client certificate), the same bounded timeouts (python-logging-loki has none,
and a hung server then blocks forever), and the same answer to "may I send this again?":

* 2xx                              -> delivered (the caller still reads the body: ES reports
                                      per-item failures inside a 200, Loki says 260 = dropped);
* 429, 5xx, timeouts, refused       -> :class:`~shipper.api.RetryableError`, with the server's
                                      ``Retry-After`` (seconds or an HTTP date) honoured;
* 401/403/404/407                  -> RetryableError too, slowly: a wrong password or URL is
                                      fixed by the operator, and then everything must arrive;
* 413                               -> :class:`shipper.api.TooLarge`: the *request* is too big for the
                                      receiver or a gateway in front of it (nginx
                                      ``client_max_body_size``, 1 MB by default), not the data
                                      bad; the sink worker splits the batch and sends the halves;
* other 4xx                         -> :class:`PermanentError`: sending the same bytes again
                                      can only fail the same way, so the batch is dead-lettered.

Secrets (passwords, tokens, API keys) live only in request headers built here; nothing in this
module logs a header, and :func:`redact_url` strips credentials from URLs before they are shown.
"""

from __future__ import annotations

import base64
import email.utils
import ssl
import time
from collections.abc import Mapping

from shipper.api import RetryableError, TooLarge
from shipper.config import BasicAuth, TLSConfig, read_secret
from shipper.util.httpclient import ClientError, HTTPClient, Response
from shipper.util.urls import redact_url

#: statuses worth retrying besides 5xx: 408 request timeout, 429 too many requests
RETRYABLE_4XX = frozenset({408, 429})
#: answers that mean "the agent is misconfigured" (credentials, URL), not "this data is bad":
#: retried slowly so that fixing the config delivers everything, instead of dead-lettering it all
CONFIG_4XX = frozenset({401, 403, 404, 407})
CONFIG_RETRY_AFTER = 30.0
#: a body excerpt in an error message is capped: a 400 can echo a whole batch back
MAX_REASON_CHARS = 500
#: a Retry-After beyond this is clamped: a wrong header must not park a sink for a day
MAX_RETRY_AFTER = 300.0


class PermanentError(Exception):
    """The receiver refused the request for good (a 4xx other than 408/429)."""

    def __init__(self, message: str, *, status: int, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body


def build_ssl_context(tls: TLSConfig | None) -> ssl.SSLContext | None:
    """An SSL context from the sink's ``tls`` block, or ``None`` for the system's CA store.

    ``cert_file`` + ``key_file`` give mutual TLS; ``insecure_skip_verify`` is allowed for test
    rigs, never the default. Errors (missing file, bad PEM) surface at ``start()``, not mid-run.
    """
    if tls is None:
        return None
    ctx = ssl.create_default_context(cafile=tls.ca_file) if tls.ca_file else ssl.create_default_context()
    if tls.cert_file:
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.insecure_skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def make_session(
    *,
    tls: TLSConfig | None,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> HTTPClient:
    """One pooled keep-alive client per sink (or per command).

    ``timeout`` bounds the whole request (connect + send + read), the connection itself at most
    10 s. Request bodies are compressed by the sinks themselves; compressed answers are
    decompressed. ``ssl_context``: one already built from ``tls`` (by the sink's ``start()``).
    """
    ssl_ctx = ssl_context if ssl_context is not None else build_ssl_context(tls)
    return HTTPClient(timeout=timeout, connect_timeout=10.0, ssl_context=ssl_ctx, headers=headers)


class LazySession:
    """A sink's pooled client, built at its first request.

    :meth:`prepare` (called by the sink's ``start()``) builds the TLS context, so missing or bad
    TLS files fail at start; :meth:`get` makes the client when a request needs it.
    """

    def __init__(self, tls: TLSConfig | None, timeout: float) -> None:
        self.tls = tls
        self.timeout = timeout
        self._ssl: ssl.SSLContext | None = None
        self._session: HTTPClient | None = None

    def prepare(self) -> None:
        self._ssl = build_ssl_context(self.tls)

    def get(self) -> HTTPClient:
        if self._session is None:
            self._session = make_session(tls=self.tls, timeout=self.timeout, ssl_context=self._ssl)
        return self._session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def auth_headers(
    *,
    basic_auth: BasicAuth | None = None,
    bearer_token_file: str | None = None,
    bearer_token_env: str | None = None,
    api_key: str | None = None,
    api_key_file: str | None = None,
    api_key_env: str | None = None,
) -> dict[str, str]:
    """``Authorization`` header from the config's secret references (files, env or inline).

    Read once at ``start()``: a missing file or env var is a clear config error then.
    """
    key = read_secret(inline=api_key, file=api_key_file, env=api_key_env, key="api_key")
    if key:
        return {"Authorization": f"ApiKey {key}"}
    if bearer_token_file or bearer_token_env:
        token = read_secret(inline=None, file=bearer_token_file, env=bearer_token_env, key="bearer_token")
        if token:
            return {"Authorization": f"Bearer {token}"}
    if basic_auth is not None:
        pwd = read_secret(
            inline=basic_auth.password, file=basic_auth.password_file, env=basic_auth.password_env,
            key="password",
        ) or ""
        cred = base64.b64encode(f"{basic_auth.username}:{pwd}".encode()).decode("ascii")
        return {"Authorization": f"Basic {cred}"}
    return {}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date (RFC 9110 10.2.3).

    Unparsable values give ``None`` (the worker's own backoff applies); a date in the past gives 0.
    """
    if not value:
        return None
    value = value.strip()
    try:
        secs = float(value)
    except ValueError:
        try:
            dt = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if dt is None:
            return None
        secs = dt.timestamp() - (time.time() if now is None else now)
    if secs != secs:  # NaN
        return None
    return min(max(secs, 0.0), MAX_RETRY_AFTER)


def is_retryable_status(status: int) -> bool:
    return status >= 500 or status in RETRYABLE_4XX


def classify(resp: Response, what: str) -> None:
    """Raise for a non-2xx answer: :class:`RetryableError`, :class:`TooLarge` or :class:`PermanentError`."""
    if 200 <= resp.status < 300:
        return
    reason = f"{what}: HTTP {resp.status}: {resp.text(MAX_REASON_CHARS)}"
    if resp.status == 413:
        raise TooLarge(reason, status=resp.status, body=resp.text(MAX_REASON_CHARS))
    if is_retryable_status(resp.status):
        raise RetryableError(
            reason, retry_after=parse_retry_after(resp.headers.get("Retry-After")), status=resp.status,
        )
    if resp.status in CONFIG_4XX:
        after = parse_retry_after(resp.headers.get("Retry-After"))
        raise RetryableError(
            reason + " (check the sink's url and credentials)",
            retry_after=max(after or 0.0, CONFIG_RETRY_AFTER), status=resp.status,
        )
    raise PermanentError(reason, status=resp.status, body=resp.text(MAX_REASON_CHARS))


async def post(
    session: HTTPClient,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    what: str,
    server_hostname: str | None = None,
) -> Response:
    """POST once. Transport trouble (refused, reset, DNS, TLS, timeout) becomes a RetryableError.

    The error message names the URL without credentials and never echoes a header.
    """
    try:
        return await session.post(url, body, headers=headers, server_hostname=server_hostname)
    except TimeoutError as e:
        raise RetryableError(f"{what}: timeout posting to {redact_url(url)}") from e
    except (ClientError, OSError) as e:  # ClientError is one; ssl errors are too
        raise RetryableError(f"{what}: {type(e).__name__} posting to {redact_url(url)}: {e}") from e
