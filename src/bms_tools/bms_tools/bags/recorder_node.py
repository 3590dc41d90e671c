"""The ``recorder`` executable: ``bms bag record`` as a node that launch files start.

Parameters: ``output`` (bag directory; default ``runs/<YYYYmmdd-HHMMSS>`` under the working
directory, so launched runs collect in one place), ``storage`` (mcap|sqlite3),
``max_total_size`` (bytes, 0 = unlimited; oldest splits are dropped), ``max_bag_size`` (bytes),
``max_bag_duration`` (s), ``topics`` (list of names; empty = every /bms topic).

Composable (``build``): in ``bms launch --composed`` the recorder joins the container, where it
records from the container's executor and finishes the bag when the container ends.
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

from rclpy.node import Node

from bms_common.lifecycle import declare, ignore_late_signals
from bms_tools.bags.record import Recorder, RecordOptions, run_until_stopped
from bms_tools.bags.writer import SplitLimits
from bms_tools.rosgraph import close_node, open_node


def run_directory() -> Path:
    return Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")


def options_from(node: Node) -> RecordOptions:
    """The recorder's parameters; ValueError names a parameter of the wrong type."""
    output = declare(node, "output", "")
    selected = declare(node, "topics", [""])
    return RecordOptions(
        output=Path(output) if output else run_directory(),
        storage=declare(node, "storage", "mcap"),
        topics=[t for t in selected if t],
        limits=SplitLimits(declare(node, "max_bag_size", 0), declare(node, "max_bag_duration", 0.0),
                           declare(node, "max_total_size", 0)),
    )


class RecorderNode(Node):
    """The recorder inside a container: spun by the container's executor."""

    def __init__(self, cli_args: list[str] | None = None) -> None:
        super().__init__("recorder", cli_args=cli_args)
        self.recorder = Recorder(options_from(self), node=self, spun_by_caller=True, announce=True)
        self.recorder.start()

    def before_exit(self) -> None:
        """Called by the container's spin loop before the node is destroyed: write metadata."""
        path = self.recorder.stop()
        self.get_logger().info(f"bag written to {path} ({self.recorder.writer.messages} messages)")


def build(stop: threading.Event, cli_args: list[str] | None = None) -> RecorderNode:
    return RecorderNode(cli_args)


def main(argv: list[str] | None = None) -> int:
    context, node = open_node("recorder", args=sys.argv if argv is None else argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        recorder = Recorder(options_from(node), node=node, announce=True)
    except (FileExistsError, ValueError) as error:
        node.get_logger().error(str(error))
        close_node(context, node)
        return 2
    path = run_until_stopped(recorder, stop)
    node.get_logger().info(f"bag written to {path} ({recorder.writer.messages} messages)")
    close_node(context, node)
    ignore_late_signals()
    return 0


if __name__ == "__main__":
    sys.exit(main())
