"""The ``bms`` command line. Each subcommand lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from bms_tools import introspect
from bms_tools.bags import commands as bag_commands
from bms_tools.launcher.command import add_parser as add_launch_parser

Handler = Callable[[argparse.Namespace], int]


def _version(_: argparse.Namespace) -> int:
    from bms_common.version import INTERFACE_VERSION, PACKAGE_VERSION

    print(f"bms {PACKAGE_VERSION}")
    print(f"bms_interfaces {INTERFACE_VERSION}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bms",
        description="Open BMS runtime: run, inspect and record the ROS 2 battery management system.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    version = sub.add_parser("version", help="print the package and interface versions")
    version.set_defaults(handler=_version)
    add_launch_parser(sub)
    bag_commands.register(sub)
    introspect.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2 if argv is None and len(sys.argv) <= 1 else 0
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
