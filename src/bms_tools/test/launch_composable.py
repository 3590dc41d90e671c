"""A composable stand-in node module for launcher tests: ``build(stop, cli_args)`` as
docs/launch.md asks. Its lifecycle node records its fully qualified name, process, parameters
and every transition in ``$PROBE_DIR/<name>.events``."""

import os
import sys
import threading

from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node


class RecordingNode(LifecycleNode):
    def __init__(self, cli_args: list[str] | None) -> None:
        super().__init__("composable", cli_args=cli_args, use_global_arguments=cli_args is None,
                         automatically_declare_parameters_from_overrides=True)
        values = {k: p.value for k, p in self.get_parameters_by_prefix("").items() if k != "use_sim_time"}
        self.record(f"{self.get_fully_qualified_name()} {sorted(values.items())}")

    def record(self, text: str) -> None:
        with open(os.path.join(os.environ["PROBE_DIR"], f"{self.get_name()}.events"), "a") as events:
            events.write(f"{os.getpid()} {text}\n")

    def on_configure(self, state) -> TransitionCallbackReturn:
        self.record("configure")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        self.record("activate")
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self.record("deactivate")
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self.record("cleanup")
        return TransitionCallbackReturn.SUCCESS


def build(stop: threading.Event, cli_args: list[str] | None) -> list[Node]:
    return [RecordingNode(cli_args)]


def main() -> int:
    import rclpy

    rclpy.init(args=sys.argv)
    nodes = build(threading.Event(), None)
    try:
        rclpy.spin(nodes[0])
    except KeyboardInterrupt:
        pass
    return 0
