"""The ``bms`` command line. Each subcommand lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable

from bms_gui import cli as gui_command
from bms_tools import introspect
from bms_tools.bags import commands as bag_commands
from bms_tools.conformance import command as conformance_command
from bms_tools.launcher.command import add_parser as add_launch_parser
from bms_tools.replay import command as replay_command

Handler = Callable[[argparse.Namespace], int]


def _version(_: argparse.Namespace) -> int:
    from bms_common.version import INTERFACE_VERSION, PACKAGE_VERSION

    print(f"bms {PACKAGE_VERSION}")
    print(f"bms_interfaces {INTERFACE_VERSION}")
    return 0


def _faults(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from bms_safety.persistence import format_fault_log, load_state, state_file

    path = state_file(Path(args.state_dir or os.environ.get("BMS_STATE_DIR", "state")))
    if not path.exists():
        print(f"no fault log at {path} (the supervisor has not run with this state_dir)", file=sys.stderr)
        return 1
    state, problem = load_state(path)
    if problem:
        print(f"{path}: {problem}", file=sys.stderr)
        return 1
    print(format_fault_log(state))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bms",
        description="Open BMS runtime: run, inspect and record the ROS 2 battery management system.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    version = sub.add_parser("version", help="print the package and interface versions")
    version.set_defaults(handler=_version)
    faults = sub.add_parser("faults", help="print the safety supervisor's latched faults and fault log")
    faults.add_argument("--state-dir", default="", help="the supervisor's state_dir (default $BMS_STATE_DIR or ./state)")
    faults.set_defaults(handler=_faults)
    add_launch_parser(sub)
    bag_commands.register(sub)
    introspect.register(sub)
    replay_command.register(sub)
    conformance_command.register(sub)
    gui_command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Started from a background job of a non-interactive shell, a process inherits SIGINT
    # ignored, and so would every node the command starts: Ctrl-C, and the SIGINT that ends a
    # node in order, would do nothing. The command takes SIGINT as usual in any case.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
