"""Registers the ``bms bag`` subcommands; each command's work lives in its own module."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path


def _stop_on_signals() -> threading.Event:
    """SIGINT and SIGTERM end the operation cleanly (metadata written, summary printed)."""
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _record(args: argparse.Namespace) -> int:
    from bms_tools.bags.progress import Progress
    from bms_tools.bags.record import Recorder, RecordOptions, default_output, run_until_stopped
    from bms_tools.bags.writer import SplitLimits

    options = RecordOptions(
        output=args.output or default_output(), storage=args.storage, topics=args.topics,
        all_topics=args.all,
        limits=SplitLimits(args.max_bag_size, args.max_bag_duration, args.max_total_size),
    )
    try:
        recorder = Recorder(options)
    except (FileExistsError, ValueError) as error:
        print(f"bms bag record: {error}")
        return 2
    run_until_stopped(recorder, _stop_on_signals(), args.duration, Progress())
    return 0


def _play(args: argparse.Namespace) -> int:
    from bms_tools.bags.play import PlayOptions, play

    try:
        remaps = dict(_parse_remap(r) for r in args.remap)
    except ValueError as error:
        print(f"bms bag play: {error}")
        return 2
    options = PlayOptions(rate=args.rate, loop=args.loop, topics=args.topics, remaps=remaps,
                          clock=args.clock, clock_hz=args.clock_hz, wait_subscribers=args.wait_subscribers)
    return play(args.bag, options, _stop_on_signals())


def _parse_remap(text: str) -> tuple[str, str]:
    source, sep, target = text.partition(":=")
    if not sep or not source or not target:
        raise ValueError(f"--remap expects FROM:=TO, got {text!r}")
    return source, target


def _info(args: argparse.Namespace) -> int:
    from bms_tools.bags.info import print_info

    return print_info(args.bag)


def _plot(args: argparse.Namespace) -> int:
    from bms_tools.bags.plot import plot_bag

    return plot_bag(args.bag, args.output or args.bag / "plots")


def _export(args: argparse.Namespace) -> int:
    from bms_tools.bags.export import export_bag

    return export_bag(args.bag, args.output or args.bag / "csv", args.topics)


def register(sub: argparse._SubParsersAction) -> None:
    bag = sub.add_parser("bag", help="record, play, summarise, plot and export rosbag2 bags")
    bag_sub = bag.add_subparsers(dest="bag_command", metavar="BAG_COMMAND", required=True)

    record = bag_sub.add_parser("record", help="record live topics into a rosbag2 directory")
    record.add_argument("topics", nargs="*", help="topics to record (default: every /bms topic)")
    record.add_argument("--all", action="store_true", help="record every topic of the graph")
    record.add_argument("-o", "--output", type=Path, help="bag directory (must not exist)")
    record.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    record.add_argument("--max-bag-size", type=int, default=0, metavar="BYTES",
                        help="split storage files at this size")
    record.add_argument("--max-bag-duration", type=float, default=0.0, metavar="S",
                        help="split storage files after this many seconds")
    record.add_argument("--max-total-size", type=int, default=0, metavar="BYTES",
                        help="cap the bag's size: the oldest splits are deleted")
    record.add_argument("--duration", type=float, default=0.0, metavar="S",
                        help="stop after S seconds (wall clock)")
    record.set_defaults(handler=_record)

    play = bag_sub.add_parser("play", help="publish a bag's messages with their original timing")
    play.add_argument("bag", type=Path)
    play.add_argument("--rate", type=float, default=1.0, help="speed factor (2 = twice as fast)")
    play.add_argument("--loop", action="store_true")
    play.add_argument("--topics", nargs="+", default=[], help="play only these topics")
    play.add_argument("--remap", nargs="+", default=[], metavar="FROM:=TO")
    play.add_argument("--clock", action="store_true", help="publish /clock from the bag's time")
    play.add_argument("--clock-hz", type=float, default=100.0, help="/clock rate between messages")
    play.add_argument("--wait-subscribers", type=int, default=0, metavar="N",
                      help="start once every played topic has N matched subscribers (max 10 s)")
    play.set_defaults(handler=_play)

    info = bag_sub.add_parser("info", help="summarise a bag")
    info.add_argument("bag", type=Path)
    info.set_defaults(handler=_info)

    plot = bag_sub.add_parser("plot", help="PNG plots of cell voltages, temperatures, current, "
                                           "SOC and safety level")
    plot.add_argument("bag", type=Path)
    plot.add_argument("-o", "--output", type=Path, help="directory (default BAG/plots)")
    plot.set_defaults(handler=_plot)

    export = bag_sub.add_parser("export", help="one CSV file per topic")
    export.add_argument("bag", type=Path)
    export.add_argument("-o", "--output", type=Path, help="directory (default BAG/csv)")
    export.add_argument("--topics", nargs="+", default=[])
    export.set_defaults(handler=_export)
