"""Lifecycle manager node: brings managed nodes up in order and down in reverse.

Parameters
  node_names (string[])         managed nodes, in bring-up order; relative names resolve in the
                                manager's namespace (``module_0`` -> ``/bms/module_0``); an entry
                                ending in ``*`` (``module_*``) stands for one node per module
  pack ("")                     pack configuration used to expand ``*`` entries
  autostart (bool, true)        configure and activate at start
  service_wait_timeout_s (30)   how long to wait for a node's lifecycle services to appear
  transition_timeout_s (10)     how long one transition may take

Bring-up configures every node, then activates them in order. When a node fails a transition
(its callback returns FAILURE or ERROR, raises, or does not answer in time) the manager stops:
it deactivates and cleans up what it had brought up, in reverse, publishes ``failed: ...`` on
``~/status`` (latched) and exits with code 1, so a launch file marking it required stops too.
On SIGINT / SIGTERM it deactivates and cleans up everything in reverse order, then exits 0.
"""

from __future__ import annotations

import signal
import sys
import threading

import rclpy
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from std_msgs.msg import String

from bms_common import topics
from bms_common.component_info import ComponentAnnouncer, Identity
from bms_common.lifecycle import declare
from bms_common.pack_config import load_pack_config
from bms_interfaces.msg import ComponentInfo

_LABELS = {
    Transition.TRANSITION_CONFIGURE: "configure",
    Transition.TRANSITION_ACTIVATE: "activate",
    Transition.TRANSITION_DEACTIVATE: "deactivate",
    Transition.TRANSITION_CLEANUP: "cleanup",
}


def expand_node_names(names: list[str], pack_name: str) -> list[str]:
    """``module_*`` stands for one node per module of the pack (launch XML has no loops)."""
    expanded: list[str] = []
    for name in names:
        if not name.endswith("*"):
            expanded.append(name)
            continue
        if not pack_name:
            raise ValueError(f"node_names entry {name!r} needs the 'pack' parameter to expand")
        modules = load_pack_config(pack_name).modules
        expanded.extend(f"{name[:-1]}{module}" for module in range(modules))
    return expanded


class TransitionFailed(RuntimeError):
    """A managed node refused or missed a transition."""


class LifecycleManager(Node):
    def __init__(self, stop: threading.Event | None = None, **kwargs) -> None:
        super().__init__("lifecycle_manager", **kwargs)
        self.stop = stop or threading.Event()
        names = self.declare_parameter("node_names", [""]).value
        pack = str(declare(self, "pack", ""))
        self.node_names = expand_node_names([n for n in (names or []) if n], pack)
        self.autostart = bool(declare(self, "autostart", True))
        self.service_wait_timeout_s = float(declare(self, "service_wait_timeout_s", 30.0))
        self.transition_timeout_s = float(declare(self, "transition_timeout_s", 10.0))
        self.announcer = ComponentAnnouncer(
            self, Identity(kind=ComponentInfo.KIND_TOOL, implementation="bms_common.lifecycle_manager")
        )
        self._status_pub = self.create_publisher(String, "~/status", topics.LATCHED)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self)
        self.configured: list[str] = []
        self.active: list[str] = []
        self._lifecycle_clients: dict[str, tuple] = {}

    # -- helpers --------------------------------------------------------------------------------
    def _resolve(self, name: str) -> str:
        if name.startswith("/"):
            return name
        ns = self.get_namespace().rstrip("/")
        return f"{ns}/{name}"

    def _status(self, text: str) -> None:
        self._status_pub.publish(String(data=text))
        # The manager may exit right after a status: let reliable readers have it first.
        self._status_pub.wait_for_all_acked(Duration(seconds=5.0))
        self.get_logger().info(text)

    def _call(self, client, request, timeout_s: float):
        future = client.call_async(request)
        self._executor.spin_until_future_complete(future, timeout_sec=timeout_s)
        if not future.done():
            client.remove_pending_request(future)
            return None
        return future.result()

    def _clients_for(self, name: str):
        if name not in self._lifecycle_clients:
            fqn = self._resolve(name)
            self._lifecycle_clients[name] = (
                self.create_client(ChangeState, f"{fqn}/change_state"),
                self.create_client(GetState, f"{fqn}/get_state"),
            )
        change, get = self._lifecycle_clients[name]
        waited = 0.0
        while not (change.service_is_ready() and get.service_is_ready()):
            if self.stop.is_set():
                raise TransitionFailed(f"{name}: interrupted while waiting for its lifecycle services")
            if waited >= self.service_wait_timeout_s:
                raise TransitionFailed(
                    f"{self._resolve(name)}: lifecycle services not available after "
                    f"{self.service_wait_timeout_s:g} s (is the node running and a lifecycle node?)"
                )
            self._executor.spin_once(timeout_sec=0.1)
            waited += 0.1
        return change, get

    def state_of(self, name: str) -> int:
        _, get = self._clients_for(name)
        response = self._call(get, GetState.Request(), self.transition_timeout_s)
        return State.PRIMARY_STATE_UNKNOWN if response is None else response.current_state.id

    def transition(self, name: str, transition_id: int) -> None:
        change, _ = self._clients_for(name)
        request = ChangeState.Request()
        request.transition.id = transition_id
        label = _LABELS.get(transition_id, str(transition_id))
        response = self._call(change, request, self.transition_timeout_s)
        if response is None:
            raise TransitionFailed(
                f"{self._resolve(name)}: no answer to '{label}' within {self.transition_timeout_s:g} s"
            )
        if not response.success:
            raise TransitionFailed(f"{self._resolve(name)}: transition '{label}' failed")

    # -- bring-up and shutdown ------------------------------------------------------------------
    def bring_up(self) -> bool:
        """Configure all, then activate in order. On failure, undo and return False."""
        self._status(f"bringing up {len(self.node_names)} nodes: {', '.join(self.node_names)}")
        try:
            for name in self.node_names:
                self.transition(name, Transition.TRANSITION_CONFIGURE)
                self.configured.append(name)
            for name in self.node_names:
                self.transition(name, Transition.TRANSITION_ACTIVATE)
                self.active.append(name)
        except TransitionFailed as exc:
            self.get_logger().error(f"bring-up stopped: {exc}")
            self.shut_down(final_status=None)
            self._status(f"failed: {exc}")
            return False
        self._status("active")
        return True

    def shut_down(self, final_status: str | None = "shut down") -> None:
        """Deactivate then clean up, both in reverse order; keep going past a failing node."""
        # A node that died must not hold up the others' orderly shutdown for long.
        self.service_wait_timeout_s = min(self.service_wait_timeout_s, 2.0)
        # Nodes whose process already ended (often several at once, hosted together) are
        # skipped rather than waited for one by one.
        for _ in range(5):
            self._executor.spin_once(timeout_sec=0.05)
        unreachable = {name for name, (change, _) in self._lifecycle_clients.items()
                       if not change.service_is_ready()}
        if unreachable:
            self.get_logger().warning(f"already gone, not shut down in order: {', '.join(sorted(unreachable))}")
        for transition_id, group in ((Transition.TRANSITION_DEACTIVATE, self.active),
                                     (Transition.TRANSITION_CLEANUP, self.configured)):
            for name in reversed(list(group)):
                if name not in unreachable:
                    try:
                        self.transition(name, transition_id)
                    except TransitionFailed as exc:
                        self.get_logger().warning(str(exc))
                        unreachable.add(name)  # gone (its process ended): skip its later transitions
                group.remove(name)
        if final_status:
            self._status(final_status)

    def run(self) -> int:
        if not self.node_names:
            self.get_logger().error("parameter node_names is empty: nothing to manage")
            return 2
        if self.autostart and not self.bring_up():
            return 1
        while not self.stop.is_set() and rclpy.ok():
            self._executor.spin_once(timeout_sec=0.1)
        # The stop flag must not abort the orderly shutdown's own service calls.
        self.stop = threading.Event()
        self.shut_down()
        return 0


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    manager = LifecycleManager(stop)
    try:
        code = manager.run()
    finally:
        manager.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
