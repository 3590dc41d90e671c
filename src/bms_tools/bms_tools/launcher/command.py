"""The ``bms launch`` subcommand."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from bms_tools.launcher import composition
from bms_tools.launcher.errors import LaunchError
from bms_tools.launcher.parser import load
from bms_tools.launcher.runner import ProcessSpec, Runner, Timeouts


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "launch", help="run a ROS 2 XML launch file (like `ros2 launch`)",
        description="Run a ROS 2 XML launch file with the semantics of `ros2 launch` for the "
                    "vocabulary in docs/launch.md. Ctrl-C stops it in order: the lifecycle manager "
                    "first, then SIGINT, SIGTERM and SIGKILL to the rest.")
    parser.add_argument("file", help="a launch file, or NAME for launch/NAME.launch.xml of the bms package")
    parser.add_argument("arguments", nargs="*", metavar="name:=value", help="launch arguments")
    parser.add_argument("--composed", action="store_true",
                        help="host composable nodes in one process (supervisor and contactor apart)")
    parser.add_argument("--dry-run", "--print", dest="dry_run", action="store_true",
                        help="print the resolved processes and exit without starting them")
    parser.add_argument("--strict", action="store_true",
                        help="make errors of what ros2 launch only warns about or ignores: an argument "
                             "nobody declares, a missing parameter file")
    parser.add_argument("--log-dir", type=Path, help="where output='log' nodes write (default: "
                                                     "$ROS_LOG_DIR or ~/.ros/log, in launch-<time>/)")
    parser.add_argument("--manager-timeout", type=float, default=30.0, metavar="S",
                        help="how long the lifecycle manager may take to bring the nodes down")
    parser.add_argument("--sigint-timeout", type=float, default=5.0, metavar="S",
                        help="SIGTERM a process this long after SIGINT")
    parser.add_argument("--sigterm-timeout", type=float, default=5.0, metavar="S",
                        help="SIGKILL a process this long after SIGTERM")
    parser.set_defaults(handler=run)


def resolve_file(name: str) -> Path:
    """A path as given, else NAME from the source tree's launch/ (so edits count without a
    rebuild), else from the installed share of package bms."""
    given = Path(name)
    if given.is_file():
        return given
    stem = name if name.endswith(".xml") else f"{name}.launch.xml"
    candidates = []
    if os.environ.get("BMS_ROOT"):
        candidates.append(Path(os.environ["BMS_ROOT"]) / "launch" / stem)
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("bms")) / "launch" / stem)
    except LookupError:
        pass
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates) or "no bms package found"
    raise FileNotFoundError(f"no launch file '{name}' (looked at {name}, {looked})")


def parse_arguments(items: list[str], what: str = "launch arguments") -> dict[str, str]:
    """``name:=value`` items as a dict (also the replay's parameter options)."""
    arguments: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition(":=")
        if not sep or not name:
            raise ValueError(f"{what} are name:=value, got {item!r}")
        arguments[name] = value
    return arguments


def launch_arguments(items: list[str]) -> dict[str, str]:
    """Command-line launch arguments; an empty value is refused, as ``ros2 launch`` refuses it."""
    arguments = parse_arguments(items)
    for name, value in arguments.items():
        if not value:
            raise ValueError(f"launch argument {name!r} has no value ({name}:= is refused by ros2 launch "
                             f"too); for an empty string pass {name}:=\"''\"")
    return arguments


def default_log_dir() -> Path:
    base = os.environ.get("ROS_LOG_DIR") or Path(os.environ.get("ROS_HOME", Path.home() / ".ros")) / "log"
    return Path(base) / f"launch-{time.strftime('%Y-%m-%d-%H-%M-%S')}-{os.getpid()}"


def describe(spec: ProcessSpec) -> str:
    notes = [f"respawn after {spec.respawn_delay_s:g} s"] if spec.respawn else []
    notes += ["on_exit=shutdown"] if spec.shutdown_on_exit else []
    notes += ["stopped first"] if spec.stop_first else []
    line = f"[{spec.label}] {shlex.join(spec.argv)}"
    return line + (f"\n    # {', '.join(notes)}" if notes else "")


def run(args: argparse.Namespace) -> int:
    try:
        path = resolve_file(args.file)
        plan = load(path, launch_arguments(args.arguments), strict=args.strict)
        specs = (composition.composed if args.composed else composition.isolated)(plan.nodes)
    except (LaunchError, FileNotFoundError, ValueError) as exc:
        print(f"bms launch: error: {exc}", file=sys.stderr)
        return 2
    for warning in plan.warnings:
        print(f"bms launch: warning: {warning}", file=sys.stderr)
    if args.dry_run:
        mode = "composed" if args.composed else "isolated"
        print(f"# {path}: {len(specs)} processes ({mode})")
        for spec in specs:
            print(describe(spec))
        return 0
    runner = Runner(specs, args.log_dir or default_log_dir(),
                    Timeouts(args.manager_timeout, args.sigint_timeout, args.sigterm_timeout))
    return runner.run()
