"""The agent's own stderr: JSON lines only (library warnings included), or logfmt when asked."""

from __future__ import annotations

import io
import logging
import warnings

import orjson

from shipper.observe.logs import setup_logging


def test_a_library_warning_becomes_one_json_line_on_the_log_stream() -> None:
    out = io.StringIO()
    saved = warnings.showwarning
    try:
        setup_logging("info", out, fmt="json")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            # what redis-py 8 says when given a synchronous Retry (shipper/sources/redis/client.py)
            warnings.warn("A synchronous redis.retry.Retry was passed to an asyncio client", UserWarning,
                          stacklevel=1)
    finally:
        warnings.showwarning = saved
    lines = out.getvalue().splitlines()
    assert len(lines) == 1
    rec = orjson.loads(lines[0])
    assert rec["level"] == "warning" and rec["logger"] == "py.warnings" and rec["category"] == "UserWarning"
    assert rec["msg"] == "A synchronous redis.retry.Retry was passed to an asyncio client"
    assert rec["where"].endswith(".py:" + rec["where"].rsplit(":", 1)[1])


def test_logfmt_quotes_what_needs_quoting_and_keeps_extra_fields() -> None:
    out = io.StringIO()
    try:
        setup_logging("info", out, fmt="logfmt")
        logging.getLogger("redis_shipper").info('started "now"', extra={"sources": ["file"], "n": 3})
    finally:
        setup_logging("info", fmt="json")
    line = out.getvalue().rstrip("\n")
    assert "\n" not in line
    assert line.startswith("time=") and " level=info logger=redis_shipper " in line
    assert 'msg="started \\"now\\""' in line and ' n=3' in line and 'sources="[\\"file\\"]"' in line


def test_a_reload_keeps_the_format_chosen_on_the_command_line() -> None:
    first, second = io.StringIO(), io.StringIO()
    try:
        setup_logging("info", first, fmt="logfmt")
        setup_logging("debug", second)  # what run does after a reload: no format given
        logging.getLogger("redis_shipper").debug("reloaded")
    finally:
        setup_logging("info", fmt="json")
    assert second.getvalue().startswith("time=")
