"""The ``gui`` node: subscribes to the contract topics and serves the web GUI from one process.

The rclpy executor spins in a thread; uvicorn (asyncio) serves HTTP and WebSocket in the main
thread. Message callbacks update one :class:`PackView` under a lock; the web app takes a
snapshot of it at the display rate. Not a managed node: it needs nothing from the others to
start, and a port it cannot bind is logged and ends this process only.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import threading
import time
from collections import deque
from pathlib import Path

import rclpy
import uvicorn
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from bms_common import topics
from bms_common.component_info import ComponentAnnouncer, Identity
from bms_common.lifecycle import declare, ignore_late_signals
from bms_common.version import INTERFACE_VERSION, compatible
from bms_gui.auth import Authenticator
from bms_gui.server import MAX_WS_MESSAGE_BYTES, GuiApp, make_app
from bms_gui.view import PackView
from bms_interfaces.msg import (
    CellMeasurements,
    CellStates,
    CommandAudit,
    ComponentInfo,
    ContactorCommand,
    ContactorState,
    CurrentLimits,
    FaultLog,
    PackMeasurement,
    PackState,
    SafetyStatus,
)
from bms_interfaces.srv import RequestState, ResetFaults

SERVICE_TIMEOUT_S = 5.0
RATE_WINDOW_S = 5.0
STATE_VALUES = {"STANDBY": PackState.STATE_STANDBY, "DRIVE": PackState.STATE_DRIVE,
                "CHARGE": PackState.STATE_CHARGE}


class Intake:
    """The periodic data topics, taken in batches by polling instead of one executor callback
    per message: rclpy's executor costs about 0.3 ms per message, which at 16 x 12 cells and
    10 Hz was most of the node's CPU (docs/gui.md, Cost). The subscriptions live on a node of
    their own that no executor spins; their QoS depth holds what arrives between two polls."""

    def __init__(self, view: PackView, owner: Node) -> None:
        # Not the command line's remaps (a __node remap would name it like its owner): the
        # owner's namespace and a name of its own.
        self.node = rclpy.create_node(f"{owner.get_name()}_intake", namespace=owner.get_namespace(),
                                      context=owner.context, use_global_arguments=False,
                                      start_parameter_services=False)
        self.reported: set[tuple[str, str]] = set()
        self.subscriptions = [
            (self.node.create_subscription(msg_type, topic.name, lambda _: None, topic.qos), handler)
            for msg_type, topic, handler in (
                (CellMeasurements, topics.CELL_MEASUREMENTS, view.on_cells),
                (PackMeasurement, topics.PACK_MEASUREMENT, view.on_pack_measurement),
                (PackState, topics.PACK_STATE, view.on_pack_state),
                (CurrentLimits, topics.CURRENT_LIMITS, view.on_current_limits),
                (SafetyStatus, topics.SAFETY_STATUS, view.on_safety),
                (ContactorState, topics.CONTACTOR_STATE, view.on_contactor_state),
                (ContactorCommand, topics.CONTACTOR_COMMAND, view.on_contactor_command),
                (CellStates, topics.CELL_STATES, view.on_cell_states),
            )]

    def take(self, lock: threading.Lock, now: float) -> int:
        taken = 0
        for subscription, handler in self.subscriptions:
            while True:
                with subscription.handle:
                    message = subscription.handle.take_message(subscription.msg_type, False)
                if message is None:
                    break
                with lock:
                    self.guarded(handler, message[0], now)
                taken += 1
        return taken

    def guarded(self, handler, message, now: float) -> None:
        """A message the view cannot take is logged (once per topic and error) and dropped; the
        node goes on with the next one."""
        try:
            handler(message, now)
        except Exception as error:  # noqa: BLE001 - one bad message must not stop the GUI
            key = (handler.__name__, type(error).__name__)
            if key not in self.reported:
                self.reported.add(key)
                self.node.get_logger().error(
                    f"dropped a {type(message).__name__} the GUI cannot show ({handler.__name__}): "
                    f"{type(error).__name__}: {error}")

    def destroy(self) -> None:
        self.node.destroy_node()


class GuiNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("gui", **kwargs)
        self.host = str(declare(self, "host", "127.0.0.1"))
        self.port = int(declare(self, "port", 8080))
        self.display_hz = self._positive("display_hz", 5.0)
        self.runs_dir = Path(str(declare(self, "runs_dir", "runs")))
        self.users_file = Path(str(declare(self, "users_file", "state/gui_users")))
        self.audit_log = Path(str(declare(self, "audit_log", "state/gui_audit.log")))
        self.tls_cert = str(declare(self, "tls_cert", ""))
        self.tls_key = str(declare(self, "tls_key", ""))
        self.foxglove_host = str(declare(self, "foxglove_host", "127.0.0.1"))
        self.foxglove_port = int(declare(self, "foxglove_port", 0))  # 0: no Foxglove endpoint
        self.foxglove = None
        self.poll_hz = self._positive("poll_hz", 20.0)
        self.lock = threading.Lock()
        self.view = PackView(stale_after_s=float(declare(self, "stale_after_s", 1.0)))
        self.intake = Intake(self.view, self)
        self._counted: deque[tuple[float, int]] = deque()
        # Rare, latched or event topics go through the executor; the periodic data topics are
        # polled (see Intake).
        for msg_type, topic, handler in (
            (FaultLog, topics.FAULT_LOG, self.view.on_fault_log),
            (CommandAudit, topics.COMMAND_AUDIT, self.view.on_audit),
        ):
            self.create_subscription(msg_type, topic.name, self._locked(handler), topic.qos)
        self.create_subscription(ComponentInfo, topics.COMPONENTS.name, self._on_component, topics.LATCHED_MANY)
        self.audit_publisher = self.create_publisher(CommandAudit, topics.COMMAND_AUDIT.name,
                                                     topics.COMMAND_AUDIT.qos)
        self.request_state = self.create_client(RequestState, topics.REQUEST_STATE)
        self.reset_faults = self.create_client(ResetFaults, topics.RESET_FAULTS)
        self.announcer = ComponentAnnouncer(self, Identity(kind=ComponentInfo.KIND_GUI,
                                                           implementation="bms_gui.gui_node"))

    def _positive(self, name: str, default: float) -> float:
        value = float(declare(self, name, default))
        if value > 0:
            return value
        self.get_logger().error(f"parameter {name} must be > 0, got {value:g}; using {default:g}")
        return default

    def start_foxglove(self) -> None:
        if not self.foxglove_port:
            return
        try:
            from bms_gui.foxglove_endpoint import FoxgloveEndpoint

            self.foxglove = FoxgloveEndpoint(self.foxglove_host, self.foxglove_port)
        except Exception as error:  # noqa: BLE001 - the endpoint is optional: say why, serve on
            self.get_logger().error(f"no Foxglove endpoint on {self.foxglove_host}:{self.foxglove_port}: {error}")
            return
        self._foxglove_due = 0.0
        self.get_logger().info(f"Foxglove endpoint at ws://{self.foxglove_host}:{self.foxglove.port}/ (read-only)")

    def poll(self) -> None:
        """Take what the data topics hold now (at poll_hz, from the poller thread)."""
        now = time.monotonic()
        taken = self.intake.take(self.lock, now)
        if self.foxglove and now >= self._foxglove_due:
            self._foxglove_due = now + 1.0 / self.display_hz
            with self.lock:
                self.foxglove.publish(self.view, now)
        self._counted.append((now, taken))
        while now - self._counted[0][0] > RATE_WINDOW_S:
            self._counted.popleft()

    def intake_rate(self) -> float:
        """Data messages per second taken over the last RATE_WINDOW_S."""
        if len(self._counted) < 2:
            return 0.0
        span = self._counted[-1][0] - self._counted[0][0]
        return sum(n for _, n in list(self._counted)[1:]) / span if span > 0 else 0.0

    def _locked(self, handler):
        def on_message(msg) -> None:
            with self.lock:
                self.intake.guarded(handler, msg, time.monotonic())
        return on_message

    def _on_component(self, msg: ComponentInfo) -> None:
        with self.lock:
            self.view.on_component(msg, time.monotonic(), compatible(INTERFACE_VERSION, msg.interface_version))

    # --- the web app's backend -------------------------------------------------------------
    def snapshot(self) -> tuple[int, dict, bytes]:
        now = time.monotonic()
        with self.lock:
            status = self.view.status(now)
            status["intake_msgs_per_s"] = round(self.intake_rate(), 1)
            return self.view.version, status, self.view.grid(now)

    def live(self) -> tuple[PackView, float]:
        return self.view, time.monotonic()

    async def call(self, command: str, argument: str) -> tuple[bool, str]:
        if command == "request_state":
            client, request = self.request_state, RequestState.Request(state=STATE_VALUES[argument])
        else:
            client, request = self.reset_faults, ResetFaults.Request()
        if not client.service_is_ready():
            return False, f"service {client.srv_name} is not available (is the node running?)"
        future = client.call_async(request)
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        future.add_done_callback(lambda _: loop.call_soon_threadsafe(done.set))
        try:
            await asyncio.wait_for(done.wait(), SERVICE_TIMEOUT_S)
        except asyncio.TimeoutError:
            return False, f"no answer from {client.srv_name} within {SERVICE_TIMEOUT_S:g} s"
        response = future.result()
        if command == "request_state":
            return bool(response.accepted), response.reason
        return bool(response.success), response.reason

    def audit(self, record: dict) -> None:
        msg = CommandAudit()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.get_name()
        msg.origin, msg.user, msg.peer = "gui", record["user"], record["peer"]
        msg.command, msg.argument = record["command"], record["argument"]
        msg.success, msg.answer = record["success"], record["answer"]
        self.audit_publisher.publish(msg)


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: main() owns SIGINT and SIGTERM from the start,
    so a signal that comes during start-up is not lost and ends the node in order too."""

    @contextlib.contextmanager
    def capture_signals(self):
        yield


def main(args: list[str] | None = None) -> int:
    stop = threading.Event()
    server: list[uvicorn.Server] = []

    def on_signal(*_) -> None:
        stop.set()
        for running in server:
            running.should_exit = True

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    rclpy.init(args=args if args is not None else sys.argv, signal_handler_options=SignalHandlerOptions.NO)
    node = GuiNode()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    polling = threading.Event()

    def poll() -> None:
        while not polling.wait(1.0 / node.poll_hz):
            node.poll()

    node.start_foxglove()
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    log = node.get_logger()
    code = 0
    try:
        sock = bind(node.host, node.port)
    except OSError as error:
        log.error(f"cannot serve the GUI on {node.host}:{node.port}: {error.strerror or error}; "
                  "the GUI is off, the rest of the system is not affected (choose another gui_port)")
        code = 1
    else:
        tls = bool(node.tls_cert and node.tls_key)
        gui = GuiApp(node, Authenticator(node.users_file), node.runs_dir, node.audit_log,
                     display_hz=node.display_hz, tls=tls)
        config = uvicorn.Config(make_app(gui), log_level="warning", ws_max_size=MAX_WS_MESSAGE_BYTES * 16,
                                ssl_certfile=node.tls_cert or None, ssl_keyfile=node.tls_key or None,
                                lifespan="on", timeout_graceful_shutdown=2)
        port = sock.getsockname()[1]
        log.info(f"GUI at {'https' if tls else 'http'}://{node.host}:{port}/ "
                 f"(accounts: {'yes' if gui.auth.accounts_exist() else 'none, read-only'})")
        server.append(_Server(config))
        if not stop.is_set():
            server[0].run(sockets=[sock])
    polling.set()
    poller.join(5)
    if node.foxglove:
        node.foxglove.stop()
    executor.shutdown(timeout_sec=5)  # wakes the spinning thread; it ends before the node goes
    spinner.join(5)
    node.intake.destroy()
    node.destroy_node()
    rclpy.try_shutdown()
    ignore_late_signals()
    return code


if __name__ == "__main__":
    sys.exit(main())
