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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="redis-shipper",
        description="Ship Redis, Valkey and Sentinel logs, SLOWLOG, LATENCY, ACL LOG and config drift "
        "as structured events to Loki, Elasticsearch or a local store.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        try:
            module = importlib.import_module(f"shipper.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"shipper.commands.{name}":
                raise
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "_module", None) is None:
        if args.command is None and "run" in COMMANDS:
            # no command: `run` with defaults, like promtail with no flags
            args = parser.parse_args(["run", *(argv or sys.argv[1:])])
        else:
            parser.print_help(sys.stderr)
            return 2
    try:
        return int(args._module.main(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
