"""What every BMS node process shares: a lifecycle node base and a clean main loop.

Nodes are rclpy LifecycleNodes so the lifecycle manager brings a system up in order and takes it
down in reverse. A process may host one node or many (composed mode, a module host with one node
per module); :func:`spin` runs any number of them on one executor and turns SIGINT / SIGTERM into
an orderly exit instead of a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from rclpy.exceptions import InvalidHandle
from rclpy.executors import Executor, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.subscription import Subscription

from bms_common.component_info import ComponentAnnouncer, Identity

__all__ = [
    "BmsLifecycleNode", "LifecycleState", "TransitionCallbackReturn", "make_executor", "spin", "take_pending",
    "run_main", "ignore_late_signals",
]


class ConfigurationFailed(RuntimeError):
    """An autostarting node could not configure itself (a wrong parameter, a missing file)."""


class BmsLifecycleNode(LifecycleNode):
    """A LifecycleNode that announces its ComponentInfo as soon as it exists.

    Parameter ``autostart`` (default false): the node configures and activates itself when its
    process starts instead of waiting for the lifecycle manager. The safety path (supervisor,
    contactor node) uses it so that a respawned process is protective again at once, without
    depending on another node.
    """

    def __init__(self, node_name: str, identity: Identity, **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.announcer = ComponentAnnouncer(self, identity)
        # Set as soon as the process is asked to end (SIGINT / SIGTERM, or its stop event): inputs
        # that stop from then on stop because the system is going down, not because of a fault.
        self.stopping = False
        self.autostart = bool(declare(self, "autostart", False))

    def before_exit(self) -> None:
        """Called once when the process ends (signal or stop) before the node is destroyed, in
        whatever lifecycle state it is: the place to persist state."""

    def start_if_autostart(self) -> None:
        if self.autostart:
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise ConfigurationFailed(f"{self.get_fully_qualified_name()}: configuration failed (the "
                                          "error above says why); not activated, exiting")
            self.trigger_activate()

    def now_s(self) -> float:
        """The node's clock (sim time when use_sim_time is on) in seconds."""
        return self.get_clock().now().nanoseconds * 1e-9


def take_pending(subscription: Subscription, callback: Callable[[Any], None], limit: int = 1000) -> int:
    """Run ``callback`` on the messages already received on ``subscription``, at most ``limit``
    (a flooding publisher must not hold the timer up); returns how many.

    rclpy's executors take one message per subscription per wait, and run due timers before
    subscriptions. A timer that steps on "everything received so far" (the estimator) calls this
    first, so that messages that arrived together with the clock tick that made it due count,
    however the executor interleaved them: its result depends on the messages, not on the
    executor's timing (what ``bms replay-check`` relies on)."""
    taken = 0
    while taken < limit:
        try:
            with subscription.handle:
                message = subscription.handle.take_message(subscription.msg_type, subscription.raw)
        except InvalidHandle:
            return taken  # destroyed meanwhile (cleanup)
        if message is None:
            return taken
        callback(message[0])
        taken += 1
    return taken


def make_executor(nodes: Sequence[Node] = ()) -> Executor:
    """EventsExecutor for nodes on the wall clock: about a third of the CPU per message
    (docs/development.md). SingleThreadedExecutor when a node is on simulated time: the
    EventsExecutor runs a timer on ROS time late or not at all when /clock updates come fast
    (docs/lifecycle.md, "Executors"). ``BMS_EXECUTOR=events`` or ``single`` forces one."""
    choice = os.environ.get("BMS_EXECUTOR", "")
    if not choice:
        on_sim_time = any(node.get_parameter("use_sim_time").value for node in nodes)
        choice = "single" if on_sim_time else "events"
    context = nodes[0].context if nodes else None
    if choice == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor(context=context)
    return SingleThreadedExecutor(context=context)


def spin(nodes: Sequence[Node], executor: Executor | None = None,
         stop: threading.Event | None = None) -> None:
    """Spin ``nodes`` until SIGINT / SIGTERM (or ``stop`` is set), then destroy them."""
    stop = stop or threading.Event()

    def request_stop(*_: object) -> None:
        _mark_stopping(nodes)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, request_stop)
    executor = executor or make_executor(nodes)
    for node in nodes:
        executor.add_node(node)
        if isinstance(node, BmsLifecycleNode):
            node.start_if_autostart()
    failures = 0
    try:
        while not stop.is_set() and rclpy.ok():
            try:
                executor.spin_once(timeout_sec=0.1)
            except Exception:  # noqa: BLE001 - a bad message or a bug in one callback must not end the node
                failures += 1
                if failures <= 10 or failures % 1000 == 0:
                    nodes[0].get_logger().error(
                        f"callback failed ({failures} so far), node keeps running:\n{traceback.format_exc()}")
    finally:
        _mark_stopping(nodes)
        for node in nodes:
            # BmsLifecycleNode's hook, or any node's that defines one (the recorder's).
            before_exit = getattr(node, "before_exit", None)
            if callable(before_exit):
                try:
                    before_exit()
                except Exception:  # noqa: BLE001 - one node's failure must not skip the others'
                    node.get_logger().error(f"before_exit failed:\n{traceback.format_exc()}")
            executor.remove_node(node)
            node.destroy_node()
        executor.shutdown()


def _mark_stopping(nodes: Sequence[Node]) -> None:
    for node in nodes:
        if isinstance(node, BmsLifecycleNode):
            node.stopping = True


def run_main(factory: Callable[[], Sequence[Node] | Node], args: list[str] | None = None,
             stop: threading.Event | None = None) -> int:
    """Entry point body of a node executable: init, build the node(s), spin until a signal
    (or ``stop``), shut down."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        built = factory()
        spin([built] if isinstance(built, Node) else list(built), stop=stop)
    except ConfigurationFailed as exc:  # reported by the node: an error line, not a traceback
        print(exc, file=sys.stderr)
        return 1
    finally:
        if rclpy.ok():
            rclpy.shutdown()
        ignore_late_signals()
    return 0


def ignore_late_signals() -> None:
    """Call when a node process has done its shutdown and only has to exit.

    A process often gets SIGINT twice: from the terminal's Ctrl-C and from the launcher (real
    ``ros2 launch`` signals every process it started, and ``bms launch`` signals what is still
    running when a required node ends). Python puts the default handlers back while it tears
    itself down, so a second signal then would kill an orderly exit with status -2."""
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def declare(node: Node, name: str, default: bool | int | float | str | list) -> object:
    """Declare a parameter and return its value as the default's type.

    Launch files and command lines write ``speed:=10`` as readily as ``speed:=10.0``; a plain
    declaration would reject the integer for a float parameter. Dynamic typing accepts either,
    and the cast makes the node see the type it expects (or fail with the parameter's name).
    """
    from rcl_interfaces.msg import ParameterDescriptor

    value = node.declare_parameter(name, default, ParameterDescriptor(dynamic_typing=True)).value
    if value is None:
        return value
    if isinstance(default, list):
        if isinstance(value, str):
            return [value]  # topics:=/bms/x means a list of one
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{node.get_fully_qualified_name()}: parameter {name} must be a list, got {value!r}")
        return list(value)
    try:
        if isinstance(default, bool):
            return value if isinstance(value, bool) else str(value).lower() in ("true", "1", "yes")
        return type(default)(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{node.get_fully_qualified_name()}: parameter {name} must be "
                         f"{type(default).__name__}, got {value!r}") from exc
