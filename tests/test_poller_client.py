"""One Redis client factory: the poller's connection and the label discovery's INFO client are
built by ``shipper.sources.redis.client.connection_pool``, so one source config gives both the
same credentials, TLS settings, timeouts and retry policy, checked on the connections redis-py
actually builds and against a real TLS Redis."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import warnings
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.retry import Retry
from redis.exceptions import ConnectionError as RedisConnectionError
from test_poller_support import make_tls_certs, redis_cfg

from parsers.replies import SELF_CLIENT_NAME, parse_info
from shipper.config import RedisSourceConfig
from shipper.pipeline.labels import LABELS_CLIENT_NAME, _redis_client
from shipper.sources.redis.client import RedisConnection

from servers import free_port, require, start_server


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("openssl", shutil.which("openssl") is not None)
    d = tmp_path_factory.mktemp("certs")
    make_tls_certs(d)
    return d


def _built(conn: Any) -> dict[str, Any]:
    """What a redis-py connection will do when it connects: address, auth, TLS, timeouts."""
    out = {
        "class": type(conn).__name__,
        "host": getattr(conn, "host", None),
        "port": getattr(conn, "port", None),
        "path": getattr(conn, "path", None),
        "db": conn.db,
        "username": conn.username,
        "password": conn.password,
        "socket_timeout": conn.socket_timeout,
        "socket_connect_timeout": conn.socket_connect_timeout,
        "retries": (type(conn.retry), conn.retry.get_retries()),
        "health_check_interval": conn.health_check_interval,
        "protocol": conn.protocol,
        "driver_info": conn.driver_info,
    }
    tls = getattr(conn, "ssl_context", None)
    if tls is not None:
        out["tls"] = {k: getattr(tls, k) for k in ("ca_certs", "certfile", "keyfile", "cert_reqs", "check_hostname")}
    return out


def _poller_connection(cfg: RedisSourceConfig) -> Any:
    return RedisConnection(cfg)._make()


def _labels_connection(cfg: RedisSourceConfig) -> Any:
    return _redis_client(cfg).connection_pool.make_connection()


def test_the_same_tls_config_gives_the_poller_and_the_labels_the_same_connection(certs: Path) -> None:
    cfg = redis_cfg("rediss://agent@db1.internal:6380/2", password="s3cret-pw", timeout=1.5,
                    tls={"ca_file": str(certs / "ca.crt"), "cert_file": str(certs / "server.crt"),
                         "key_file": str(certs / "server.key")})
    poller, labels = _poller_connection(cfg), _labels_connection(cfg)
    assert _built(poller) == _built(labels)
    assert _built(poller) == {
        "class": "SSLConnection", "host": "db1.internal", "port": 6380, "path": None, "db": 2,
        "username": "agent", "password": "s3cret-pw", "socket_timeout": 1.5, "socket_connect_timeout": 1.5,
        "retries": (Retry, 0), "health_check_interval": 0, "protocol": 2, "driver_info": None,
        "tls": {"ca_certs": str(certs / "ca.crt"), "certfile": str(certs / "server.crt"),
                "keyfile": str(certs / "server.key"), "cert_reqs": ssl.CERT_REQUIRED, "check_hostname": True},
    }
    # what differs is what each user needs: raw bytes for the parsers, its own name in CLIENT LIST
    assert (poller.client_name, poller.encoder.decode_responses) == (SELF_CLIENT_NAME, False)
    assert (labels.client_name, labels.encoder.decode_responses) == (LABELS_CLIENT_NAME, True)


def test_insecure_skip_verify_turns_off_certificate_and_host_checks_for_both() -> None:
    cfg = redis_cfg("rediss://127.0.0.1:6380", tls={"insecure_skip_verify": True})
    poller, labels = _built(_poller_connection(cfg)), _built(_labels_connection(cfg))
    assert poller == labels
    assert (poller["tls"]["cert_reqs"], poller["tls"]["check_hostname"]) == (ssl.CERT_NONE, False)


def test_a_password_file_and_a_unix_socket_are_read_the_same_way_by_both(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-the-file\n")
    cfg = redis_cfg("unix:///run/redis/redis.sock", username="shipper", password_file=str(tmp_path / "pw"))
    poller, labels = _built(_poller_connection(cfg)), _built(_labels_connection(cfg))
    assert poller == labels
    assert (poller["class"], poller["path"], poller["username"], poller["password"]) == \
        ("UnixDomainSocketConnection", "/run/redis/redis.sock", "shipper", "from-the-file")


@pytest.mark.parametrize(("url", "tls", "message"), [
    ("redis://127.0.0.1:6379", {"ca_file": None}, "does not start with rediss://"),
    ("rediss://127.0.0.1:6380", {"ca_file": "/nonexistent/ca.pem"}, "does not exist"),
])
def test_a_tls_config_that_cannot_work_is_refused_by_both(url: str, tls: dict[str, Any], message: str) -> None:
    cfg = redis_cfg(url, tls=tls)
    with pytest.raises(ValueError, match=message):
        _poller_connection(cfg)
    with pytest.raises(ValueError, match=message):
        _labels_connection(cfg)


def test_building_a_client_raises_no_redis_py_warning() -> None:
    """A sync ``redis.retry.Retry`` handed to the asyncio client makes redis-py warn on every
    connect; the factory gives the asyncio one."""
    cfg = redis_cfg("redis://127.0.0.1:6379")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _poller_connection(cfg)
        _labels_connection(cfg)


@pytest.mark.integration
def test_both_read_the_run_id_over_tls_with_the_ca_and_both_refuse_another_ca(
        tmp_path: Path, certs: Path) -> None:
    tls_port = free_port()
    rp = start_server("redis7", tmp_path, config={
        "tls-port": str(tls_port), "tls-cert-file": str(certs / "server.crt"),
        "tls-key-file": str(certs / "server.key"), "tls-ca-cert-file": str(certs / "ca.crt"),
        "tls-auth-clients": "no"})
    url = f"rediss://127.0.0.1:{tls_port}"
    good = redis_cfg(url, tls={"ca_file": str(certs / "ca.crt")})
    wrong = redis_cfg(url, tls={"ca_file": str(certs / "other.crt")})

    async def run_ids(cfg: RedisSourceConfig) -> tuple[Any, Any]:
        """(poller's run_id or error, labels' run_id or error)"""
        out: list[Any] = []
        conn = RedisConnection(cfg)
        try:
            await conn.ensure()
            out.append(parse_info(await conn.call("INFO", "server"))["run_id"])
        except Exception as e:  # noqa: BLE001 - the error is the result under test
            out.append(e)
        finally:
            await conn.close()
        client = _redis_client(cfg)
        try:
            out.append((await client.info("server"))["run_id"])
        except Exception as e:  # noqa: BLE001
            out.append(e)
        finally:
            await client.aclose()
        return out[0], out[1]

    try:
        expected = rp.client().info("server")["run_id"]
        assert asyncio.run(run_ids(good)) == (expected, expected)
        refused = asyncio.run(run_ids(wrong))
    finally:
        rp.stop()
    for err in refused:
        assert isinstance(err, RedisConnectionError | ssl.SSLError | OSError), err
        assert "certificate" in str(err).lower() or "ssl" in str(err).lower(), err
