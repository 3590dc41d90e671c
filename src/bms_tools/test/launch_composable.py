"""A composable stand-in node module for launcher tests: ``build(stop, cli_args)`` as
docs/launch.md asks; each node records its fully qualified name, process and parameters."""

import os
import sys
import threading

from rclpy.node import Node


def build(stop: threading.Event, cli_args: list[str] | None) -> list[Node]:
    node = Node("composable", cli_args=cli_args, use_global_arguments=cli_args is None,
                automatically_declare_parameters_from_overrides=True)
    values = {k: p.value for k, p in node.get_parameters_by_prefix("").items() if k != "use_sim_time"}
    path = os.path.join(os.environ["PROBE_DIR"], f"{node.get_name()}.events")
    with open(path, "a") as events:
        events.write(f"built {os.getpid()} {node.get_fully_qualified_name()} {sorted(values.items())}\n")
    return [node]


def main() -> int:
    import rclpy

    rclpy.init(args=sys.argv)
    stop = threading.Event()
    nodes = build(stop, None)
    try:
        rclpy.spin(nodes[0])
    except KeyboardInterrupt:
        pass
    return 0
