"""``redis-shipper version`` (and ``redis-shipper --version``)."""

from __future__ import annotations

import argparse
import platform
from importlib.metadata import PackageNotFoundError, version


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def main(args: argparse.Namespace) -> int:
    try:
        v = version("redis-shipper")
    except PackageNotFoundError:
        v = "unknown"
    print(f"redis-shipper {v} (Python {platform.python_version()})")
    return 0
