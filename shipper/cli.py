"""``redis-shipper`` command line: run | check | parse | events | verify | version.

Each subcommand lives in ``shipper/commands/<name>.py`` with two functions,
``add_arguments(parser)`` and ``main(args) -> int``; this module only wires them, so a
command's code is found by its name.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = {
    "run": "run the agent until SIGTERM/SIGINT",
    "check": "validate a config (and with --connect, reach Redis and the sinks)",
    "parse": "parse Redis/Valkey/Sentinel log files to JSON Lines events on stdout",
    "events": "read back events from the local sink",
    "verify": "check that a shipped audit trail is complete and unaltered",
    "version": "print the version",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only``, just that command's module is imported.

    Importing a command module pulls in what it needs (the parsers' compiled catalogue, aiohttp,
    prometheus-client...), so `redis-shipper version` or `parse` must not pay for `run`'s imports.
    """
    parser = argparse.ArgumentParser(
        prog="redis-shipper",
        description="Ship Redis, Valkey and Sentinel logs, SLOWLOG, LATENCY, ACL LOG and config drift "
        "as structured events to Loki, Elasticsearch or a local store.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or name == only:
            module = importlib.import_module(f"shipper.commands.{name}")
            module.add_arguments(p)
            p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    if chosen is None and not any(a in ("-h", "--help") for a in argv):
        # no command: `run` with defaults, like promtail with no flags
        chosen, argv = "run", ["run", *argv]
    args = build_parser(chosen).parse_args(argv)
    if getattr(args, "_module", None) is None:
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
