"""``redis-shipper`` command line: run | check | setup | parse | events | verify | version.

Each subcommand lives in ``shipper/commands/<name>.py`` with two functions,
``add_arguments(parser)`` and ``main(args) -> int``; this module only wires them, so a
command's code is found by its name.

No command prints the usage and exits 2 (like ``git`` and ``kubectl``): an agent that starts
because someone typed its name to see what it does is a surprise, not a convenience.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys

COMMANDS = {
    "run": "run the agent until SIGTERM/SIGINT",
    "check": "validate a config (and with --connect, reach Redis and the sinks)",
    "setup": "install what a sink needs before the first event (the Elasticsearch index template, policy)",
    "parse": "parse Redis/Valkey/Sentinel log files to JSON Lines events on stdout",
    "events": "read back events from the local sink",
    "verify": "check that a shipped audit trail is complete and unaltered",
    "version": "print the version",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only``, just that command's module is imported.

    Importing a command module pulls in what it needs (the parsers' compiled catalogue, the HTTP client,
    prometheus-client...), so `redis-shipper version` or `parse` must not pay for `run`'s imports.
    """
    parser = argparse.ArgumentParser(
        prog="redis-shipper",
        description="Ship Redis, Valkey and Sentinel logs, SLOWLOG, LATENCY, ACL LOG and config drift "
        "as structured events to Loki, Elasticsearch or a local store.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            module = importlib.import_module(f"shipper.commands.{name}")
            module.add_arguments(p)
            p.set_defaults(_module=module)
    return parser


def closest_command(word: str) -> str | None:
    """The command a typo most likely meant (``chek`` -> ``check``), or None."""
    close = difflib.get_close_matches(word, list(COMMANDS), n=1, cutoff=0.6)
    return close[0] if close else None


def usage_error(message: str) -> int:
    build_parser().print_usage(sys.stderr)
    print(f"redis-shipper: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--version"]:
        argv = ["version"]
    if not argv:
        build_parser().print_help(sys.stderr)
        return 2
    first = argv[0]
    if not first.startswith("-") and first not in COMMANDS:
        guess = closest_command(first)
        hint = f" (did you mean {guess}?)" if guess else ""
        return usage_error(f"unknown command {first!r}{hint}; commands: {', '.join(COMMANDS)}")
    chosen = first if first in COMMANDS else None
    args = build_parser(chosen).parse_args(argv)
    if getattr(args, "_module", None) is None:
        if args.version:
            args = build_parser("version").parse_args(["version"])
        else:
            build_parser().print_help(sys.stderr)
            return 2
    try:
        return int(args._module.main(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
