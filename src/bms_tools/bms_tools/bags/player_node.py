"""The ``player`` executable: ``bms bag play`` as a node that launch files start
(launch/replay.launch.xml). It ends when the bag has been played (unless ``loop``).

Parameters: ``bag`` (bag directory, required), ``rate`` (1.0), ``loop`` (false), ``clock`` (false:
publish /clock from the bag's timestamps; to replay a recorded /clock instead, select it in
``topics``), ``topics`` (names; empty = every topic of the bag), ``wait_subscribers`` (0: wait
until each publisher has this many subscriptions before the first message),
``wait_for_manager`` (false: first wait until ``lifecycle_manager/status`` says ``active``). Remap topics with
the launch file's ``remap``.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String

from bms_common import topics
from bms_common.lifecycle import declare
from bms_tools.bags.play import PlayOptions, play
from bms_tools.rosgraph import close_node, open_node

MANAGER_TIMEOUT_S = 120.0


def manager_active(node: Node, stop: threading.Event) -> bool:
    """Wait until ``lifecycle_manager/status`` (latched) says ``active``: every managed node is
    up, so none misses the start of the bag."""
    active = threading.Event()
    subscription = node.create_subscription(
        String, "lifecycle_manager/status", lambda msg: active.set() if msg.data == "active" else None,
        topics.LATCHED)
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    deadline = time.monotonic() + MANAGER_TIMEOUT_S
    try:
        while not active.is_set() and not stop.is_set() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.remove_node(node)
        executor.shutdown()
        node.destroy_subscription(subscription)
    return active.is_set()


def main(argv: list[str] | None = None) -> int:
    context, node = open_node("player", args=sys.argv if argv is None else argv)
    try:
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        try:
            bag = str(declare(node, "bag", ""))
            wait_for_manager = bool(declare(node, "wait_for_manager", False))
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
        if wait_for_manager and not manager_active(node, stop):
            node.get_logger().error(f"the lifecycle manager did not report active within {MANAGER_TIMEOUT_S:g} s")
            return 2
        return play(Path(bag), options, stop, node=node)
    finally:
        close_node(context, node)


if __name__ == "__main__":
    sys.exit(main())
