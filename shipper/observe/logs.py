"""The agent's own logs: one object per line on stderr, JSON (default) or logfmt.

JSON, so the agent's logs can be shipped and queried like everything else; logfmt
(``--log-format logfmt``) for a person reading a terminal; stderr, so systemd's journal and
Kubernetes pick them up with no file to rotate. Python warnings (a library's
``DeprecationWarning``, redis-py's ``UserWarning``) go through the same logger as one line
each, logger ``py.warnings``: nothing else is ever written to stderr once logging is set up.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import warnings
from typing import Any, TextIO

import orjson

_STD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
FORMATS = ("json", "logfmt")


def _fields(formatter: logging.Formatter, record: logging.LogRecord) -> dict[str, Any]:
    t = record.created
    out: dict[str, Any] = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for k, v in record.__dict__.items():
        if k not in _STD and not k.startswith("_"):
            out[k] = v
    if record.exc_info:
        out["exc"] = formatter.formatException(record.exc_info)
    return out


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return orjson.dumps(_fields(self, record), default=str).decode()


_BARE = re.compile(r"^[^\s\"=]+$")


def _logfmt_value(v: Any) -> str:
    if isinstance(v, str):
        text = v
    elif isinstance(v, bool | int | float) or v is None:
        text = orjson.dumps(v).decode()
    else:
        text = orjson.dumps(v, default=str).decode()
    if _BARE.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class LogfmtFormatter(logging.Formatter):
    """``time=... level=info logger=... msg="..." key=value``: one line, quoted where needed."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in _fields(self, record).items())


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    logging.getLogger("py.warnings").warning(
        str(message), extra={"category": category.__name__, "where": f"{filename}:{lineno}"})


_format = {"current": "json"}


def setup_logging(level: str = "info", stream: TextIO | None = None, fmt: str | None = None) -> None:
    """Log to ``stream`` (stderr) in ``fmt`` (None: the format set last, so a reload keeps the
    command line's choice); route Python warnings through the logger."""
    fmt = fmt or _format["current"]
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    _format["current"] = fmt
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else LogfmtFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for noisy in ("watchdog", "asyncio", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.showwarning = _show_warning
