"""Lifecycle manager node: brings managed nodes up in order and down in reverse.

Parameters
  node_names (string[])         managed nodes, in bring-up order; relative names resolve in the
                                manager's namespace (``module_0`` -> ``/bms/module_0``); an entry
                                ending in ``*`` (``module_*``) stands for one node per module
  pack ("")                     pack configuration used to expand ``*`` entries
  autostart (bool, true)        configure and activate at start
  service_wait_timeout_s (30)   how long to wait for a node's lifecycle services to appear
  transition_timeout_s (30)     how long one transition may take (a loaded machine is slow)
  shutdown_timeout_s (1.0)      how long the orderly shutdown after SIGINT / SIGTERM may take in all

Bring-up configures every node, then activates them in order. When a node fails a transition
(its callback returns FAILURE or ERROR, raises, or does not answer in time) the manager stops:
it deactivates and cleans up what it had brought up, in reverse, publishes ``failed: ...`` on
``~/status`` (latched) and exits with code 1, so a launch file marking it required stops too.
On SIGINT / SIGTERM it publishes ``shutting down``, deactivates and cleans up everything in
reverse order, then exits 0. That shutdown is bounded: ``ros2 launch`` sends SIGINT to every
process at once, so a node may already be exiting and never answer. A node whose services
disappear is skipped at once, and what is left when ``shutdown_timeout_s`` has passed (or at a
second signal) is left to end on its own SIGINT; every node persists its state when it ends.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time

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
from bms_common.lifecycle import declare, ignore_late_signals
from bms_common.pack_config import load_pack_config
from bms_interfaces.msg import ComponentInfo

# While a managed node does not answer, say so this often (seconds).
# A service unmatched this long has gone (its process is exiting), not flickered.
SERVICE_GONE_S = 1.0
WAIT_REPORT_PERIOD_S = 3.0
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
    def __init__(self, stop: threading.Event | None = None, abort: threading.Event | None = None,
                 **kwargs) -> None:
        super().__init__("lifecycle_manager", **kwargs)
        self.stop = stop or threading.Event()
        self.abort = abort or threading.Event()  # a second signal: give up the orderly shutdown
        self._deadline = math.inf  # monotonic time by which the current shutdown must be over
        names = self.declare_parameter("node_names", [""]).value
        pack = str(declare(self, "pack", ""))
        self.node_names = expand_node_names([n for n in (names or []) if n], pack)
        self.autostart = bool(declare(self, "autostart", True))
        self.service_wait_timeout_s = float(declare(self, "service_wait_timeout_s", 30.0))
        self.transition_timeout_s = float(declare(self, "transition_timeout_s", 30.0))
        self.shutdown_timeout_s = float(declare(self, "shutdown_timeout_s", 1.0))
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

    def _status(self, text: str, ack_timeout_s: float = 5.0) -> None:
        self._status_pub.publish(String(data=text))
        # The manager may exit right after a status: let reliable readers have it first.
        self._status_pub.wait_for_all_acked(Duration(seconds=ack_timeout_s))
        self.get_logger().info(text)

    def _out_of_time(self) -> bool:
        return self.abort.is_set() or time.monotonic() >= self._deadline

    def _call(self, client, request, timeout_s: float):
        """The response, or None after ``timeout_s``, when the service goes away (its process is
        exiting) or when the shutdown runs out of time."""
        future = client.call_async(request)
        deadline = min(time.monotonic() + timeout_s, self._deadline)
        gone_since: float | None = None
        while not future.done() and not self._out_of_time():
            now = time.monotonic()
            # The graph flickers on a loaded machine: a service is gone once it stays unmatched.
            if client.service_is_ready():
                gone_since = None
            elif gone_since is None:
                gone_since = now
            elif now - gone_since > SERVICE_GONE_S:
                break
            self._executor.spin_once(timeout_sec=max(0.0, min(0.05, deadline - now)))
            if time.monotonic() >= deadline:
                break
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
        next_report_s = WAIT_REPORT_PERIOD_S
        while not (change.service_is_ready() and get.service_is_ready()):
            if self.stop.is_set() or self._out_of_time():
                raise TransitionFailed(f"{name}: interrupted while waiting for its lifecycle services")
            if waited >= self.service_wait_timeout_s:
                raise TransitionFailed(
                    f"{self._resolve(name)}: lifecycle services not available after "
                    f"{self.service_wait_timeout_s:g} s (is the node running and a lifecycle node?)"
                )
            if waited >= next_report_s:
                next_report_s += WAIT_REPORT_PERIOD_S
                self._report_waiting(name, waited)
            self._executor.spin_once(timeout_sec=0.1)
            waited += 0.1
        return change, get

    def _report_waiting(self, name: str, waited_s: float) -> None:
        """Say which node holds bring-up up, on the log and ``~/status`` (the plant repeats it)."""
        text = (f"waiting for {self._resolve(name)}: no lifecycle services after {waited_s:.0f} s of "
                f"{self.service_wait_timeout_s:g} s (is the node running, in any process or host, "
                "on this ROS_DOMAIN_ID?)")
        self._status_pub.publish(String(data=text))
        # A bring-up takes seconds on a loaded machine; only a long wait is a warning. (Two call
        # sites: rclpy refuses a severity change at one.)
        if waited_s >= 10.0:
            self.get_logger().warning(text)
        else:
            self.get_logger().info(text)

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
            if not change.service_is_ready():
                why = "its services went away (its process is ending)"
            elif self._out_of_time():
                why = "the shutdown was cut short" if self.abort.is_set() else "shutdown_timeout_s passed"
            else:
                why = f"not within {self.transition_timeout_s:g} s"
            raise TransitionFailed(f"{self._resolve(name)}: no answer to '{label}': {why}")
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
            # Undo without a time limit, unless a signal asked the process to end.
            budget_s = None if self.stop.is_set() else math.inf
            self.stop = threading.Event()  # the undo's own service waits must not be interrupted
            self.shut_down(final_status=None, budget_s=budget_s)
            self._status(f"failed: {exc}", ack_timeout_s=self._ack_timeout_s())
            return False
        self._status("active")
        return True

    def shut_down(self, final_status: str | None = "shut down", budget_s: float | None = None) -> None:
        """Deactivate then clean up, both in reverse order, within ``budget_s`` (default
        ``shutdown_timeout_s``); keep going past a failing node."""
        budget_s = self.shutdown_timeout_s if budget_s is None else budget_s
        self._deadline = time.monotonic() + budget_s
        # Nodes that watch this status (the safety supervisor) now know that inputs stopping
        # from here on is the system going down, not a fault.
        self._status("shutting down", ack_timeout_s=self._ack_timeout_s())
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
                if name not in unreachable and self._out_of_time():
                    why = "a second signal" if self.abort.is_set() else f"shutdown_timeout_s {budget_s:g} s passed"
                    self.get_logger().warning(f"{self._resolve(name)}: '{_LABELS[transition_id]}' skipped ({why}); "
                                              "it ends on its own signal")
                    unreachable.add(name)
                if name not in unreachable:
                    try:
                        self.transition(name, transition_id)
                    except TransitionFailed as exc:
                        self.get_logger().warning(str(exc))
                        unreachable.add(name)  # gone (its process ended): skip its later transitions
                group.remove(name)
        if final_status:
            self._status(final_status, ack_timeout_s=self._ack_timeout_s())

    def _ack_timeout_s(self) -> float:
        """How long a status may wait for its readers while shutting down: what is left of the
        shutdown's time, at most 0.5 s."""
        return max(0.05, min(0.5, self._deadline - time.monotonic()))

    def run(self) -> int:
        if not self.node_names:
            self.get_logger().error("parameter node_names is empty: nothing to manage")
            return 2
        if self.autostart and not self.bring_up():
            return 1
        while not self.stop.is_set() and rclpy.ok():
            self._executor.spin_once(timeout_sec=0.1)
        # The stop flag must not abort the orderly shutdown's own service calls (a second signal
        # sets abort, which does).
        self.stop = threading.Event()
        self.shut_down()
        return 0


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stop, abort = threading.Event(), threading.Event()

    def on_signal(*_: object) -> None:
        (abort if stop.is_set() else stop).set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    manager = LifecycleManager(stop, abort)
    try:
        code = manager.run()
    finally:
        manager.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
        ignore_late_signals()
    return code


if __name__ == "__main__":
    sys.exit(main())
