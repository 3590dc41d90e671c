"""The ``player`` executable: ``bms bag play`` as a node that launch files start
(launch/replay.launch.xml). It ends when the bag has been played (unless ``loop``).

Parameters: ``bag`` (bag directory, required), ``rate`` (1.0), ``loop`` (false), ``clock`` (false:
publish /clock from the bag's timestamps; to replay a recorded /clock instead, select it in
``topics``), ``topics`` (names; empty = every topic of the bag), ``wait_subscribers`` (0: wait
until each publisher has this many subscriptions before the first message). Remap topics with
the launch file's ``remap``.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from bms_common.lifecycle import declare
from bms_tools.bags.play import PlayOptions, play
from bms_tools.rosgraph import close_node, open_node


def main(argv: list[str] | None = None) -> int:
    context, node = open_node("player", args=sys.argv if argv is None else argv)
    try:
        try:
            bag = str(declare(node, "bag", ""))
            selected = declare(node, "topics", [""])
            options = PlayOptions(
                rate=float(declare(node, "rate", 1.0)),
                loop=bool(declare(node, "loop", False)),
                topics=[t for t in selected if t],
                clock=bool(declare(node, "clock", False)),
                wait_subscribers=int(declare(node, "wait_subscribers", 0)),
            )
        except ValueError as error:
            node.get_logger().error(str(error))
            return 2
        if not bag:
            node.get_logger().error("parameter bag (the bag directory to play) is required")
            return 2
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        return play(Path(bag), options, stop, node=node)
    finally:
        close_node(context, node)


if __name__ == "__main__":
    sys.exit(main())
