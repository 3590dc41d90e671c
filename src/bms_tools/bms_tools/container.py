"""Hosts several node executables in one process: one rclpy context, one executor.

``python -m bms_tools.container --node '{"module": M, "label": L, "cli_args": [...]}' ...``
imports each module and calls its ``build(stop, cli_args)``, which returns the node(s) that the
executable would run on its own, built with ``cli_args`` (``--ros-args -r __node:=...``) so that
each keeps its own name, namespace, parameters and remaps (docs/launch.md, "Composable node
executables"). All nodes share ``stop``: when any of them sets it (a simulation whose duration
elapsed), or on SIGINT / SIGTERM, the container destroys its nodes and exits 0.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import threading

import rclpy
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from bms_common.lifecycle import ignore_late_signals, spin


def build_nodes(specs: list[dict], stop: threading.Event) -> list[Node]:
    nodes: list[Node] = []
    for spec in specs:
        built = importlib.import_module(spec["module"]).build(stop, list(spec["cli_args"]))
        nodes += [built] if isinstance(built, Node) else list(built)
    return nodes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bms_tools.container", description=__doc__.splitlines()[0])
    parser.add_argument("--node", action="append", required=True, type=json.loads,
                        help="JSON: module (with build(stop, cli_args)), label, cli_args")
    args = parser.parse_args(argv)
    # No global ROS arguments: each node gets its own through cli_args.
    rclpy.init(args=[], signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    # Building may take a while (a large pack): a signal meanwhile must still end us cleanly.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        nodes = build_nodes(args.node, stop)
        print(f"hosting {len(nodes)} nodes: {', '.join(n.get_fully_qualified_name() for n in nodes)}",
              flush=True)
        spin(nodes, stop=stop)
    finally:
        if rclpy.ok():
            rclpy.shutdown()
        ignore_late_signals()
    return 0


if __name__ == "__main__":
    sys.exit(main())
