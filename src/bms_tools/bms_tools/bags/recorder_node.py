"""The ``recorder`` executable: ``bms bag record`` as a node that launch files start.

Parameters: ``output`` (bag directory; default ``runs/<YYYYmmdd-HHMMSS>`` under the working
directory, so launched runs collect in one place), ``storage`` (mcap|sqlite3),
``max_total_size`` (bytes, 0 = unlimited; oldest splits are dropped), ``max_bag_size`` (bytes),
``max_bag_duration`` (s), ``topics`` (list of names; empty = every /bms topic).
"""

from __future__ import annotations

import signal
import sys
import threading
from datetime import datetime
from pathlib import Path

from bms_common.lifecycle import declare
from bms_tools.bags.record import Recorder, RecordOptions, run_until_stopped
from bms_tools.bags.writer import SplitLimits
from bms_tools.rosgraph import close_node, open_node


def run_directory() -> Path:
    return Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")


def main(argv: list[str] | None = None) -> int:
    context, node = open_node("recorder", args=sys.argv if argv is None else argv)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        output = declare(node, "output", "")
        selected = declare(node, "topics", [""])
        options = RecordOptions(
            output=Path(output) if output else run_directory(),
            storage=declare(node, "storage", "mcap"),
            topics=[t for t in selected if t],
            limits=SplitLimits(declare(node, "max_bag_size", 0), declare(node, "max_bag_duration", 0.0),
                               declare(node, "max_total_size", 0)),
        )
        recorder = Recorder(options, node=node)
    except (FileExistsError, ValueError) as error:
        node.get_logger().error(str(error))
        close_node(context, node)
        return 2
    path = run_until_stopped(recorder, stop)
    node.get_logger().info(f"bag written to {path} ({recorder.writer.messages} messages)")
    close_node(context, node)
    return 0


if __name__ == "__main__":
    sys.exit(main())
