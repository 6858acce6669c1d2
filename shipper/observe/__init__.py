"""The agent observing itself: Prometheus metrics, health endpoints, JSON logs.

Importing this package registers ``prometheus_client`` with :func:`light_package` first, so that
the agent's metrics (shipper/observe/metrics.py) and its /metrics encoders
(shipper/observe/exposition.py) load the client's light modules and not its exposition module.
"""

from __future__ import annotations

import importlib.util
import pkgutil
import sys
from typing import Any

PROMETHEUS_CLIENT = "prometheus_client"


def light_package() -> None:
    """Register ``prometheus_client`` as a package whose ``__init__`` has not run yet.

    Its ``__init__`` imports ``prometheus_client.exposition``, and that module an HTTP server, a
    WSGI server, ``urllib.request``, gzip and snappy support, for helpers the agent does not use
    (``start_http_server``, the push gateway): 5-6 MB of RSS. Submodules
    (``prometheus_client.metrics``, ``.registry``, ``.openmetrics.exposition``...) import as
    usual; the first attribute asked of the package itself that is not one of them
    (``from prometheus_client import generate_latest``) runs the real ``__init__``, and from then
    on the package is the ordinary one. A no-op when it is already imported or not installed.
    """
    if PROMETHEUS_CLIENT in sys.modules:
        return
    spec = importlib.util.find_spec(PROMETHEUS_CLIENT)
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return
    pkg = importlib.util.module_from_spec(spec)
    loader = spec.loader
    # ``from . import values`` asks the package for the attribute first: a submodule is imported
    # then, not a reason to run the package's __init__
    submodules = {m.name for m in pkgutil.iter_modules(spec.submodule_search_locations)}
    initialised: list[bool] = []

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module-level hook of PEP 562
        if not initialised and name not in submodules and not (name.startswith("__") and name.endswith("__")):
            initialised.append(True)
            loader.exec_module(pkg)
            if name in pkg.__dict__:
                return pkg.__dict__[name]
        raise AttributeError(f"module {PROMETHEUS_CLIENT!r} has no attribute {name!r}")

    pkg.__getattr__ = __getattr__  # type: ignore[attr-defined]
    sys.modules[PROMETHEUS_CLIENT] = pkg


light_package()
