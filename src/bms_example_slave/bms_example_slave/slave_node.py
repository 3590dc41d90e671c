"""An example slave node written from the specification (docs/standard/slave.md) alone.

It imports rclpy, the standard messages and bms_interfaces, nothing of the project's Python
packages: what a second supplier's node needs is in the specification and the .msg files. Its
"AFE" is the simulated plant: it measures the true cell voltages and sensor temperatures the plant
publishes for a module it does not host (/sim/cell_truth, docs/simulation.md) and closes bleed
switches in the plant (/sim/bleed_switches). A board with real hardware replaces
``ExampleSlave.read_afe`` and ``ExampleSlave.drive_bleed_switches`` and keeps the rest.

Parameters (every one is read on configure except module_id, which names the node):
  module_id (required)        the module this board monitors; the node is /bms/module_<module_id>
  cells_per_module (12)       must match the pack file
  sensors_per_module (4)      must match the pack file
  sample_period_s (0.1)       SLV rate requirement: 10 Hz
  balancing_timeout_s (5.0)   bleed switches open when no command came for this long
  defect ("")                 a deliberately broken variant for the conformance kit's tests:
                              "millivolts", "stuck_sequence", "no_lifecycle" or "ignore_peers"

Run it in simulation (sim_host leaving module 2 out, docs/swapping.md):
  slave --ros-args -r __ns:=/bms -p module_id:=2 -p use_sim_time:=true
"""

from __future__ import annotations

import math
import os
import random
import signal
import socket
import sys

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from bms_interfaces.msg import BalancingCommand, CellMeasurements, ComponentInfo

# docs/standard/general.md, "QoS": every policy of every topic this node uses.
PER_MODULE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)
LATCHED = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
# Reading /bms/components: one announcement per peer.
LATCHED_MANY = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
SEQUENCE_MODULUS = 2**32
NOISE_V = 0.0003  # this board's AFE: 0.3 mV of noise per reading
DEFECTS = ("", "millivolts", "stuck_sequence", "no_lifecycle", "ignore_peers")


def stamp_of(node: Node):
    return node.get_clock().now().to_msg()


class ExampleSlave(LifecycleNode):
    def __init__(self, module_id: int, defect: str) -> None:
        super().__init__(f"module_{module_id}", enable_communication_interface=defect != "no_lifecycle")
        self.module_id = module_id
        self.defect = defect
        self.cells = self.declare_parameter("cells_per_module", 12).value
        self.sensors = self.declare_parameter("sensors_per_module", 4).value
        self.sample_period_s = self.declare_parameter("sample_period_s", 0.1).value
        self.balancing_timeout_s = self.declare_parameter("balancing_timeout_s", 5.0).value
        self.sequence = 0  # from 0 when the process starts, +1 per sample, across lifecycle cycles
        self.active = False
        self.switches = [False] * self.cells
        self.last_command_s = -math.inf
        self.truth: CellMeasurements | None = None
        self.random = random.Random(module_id)
        self.pub = self.timer = self.commands = self.truth_sub = self.bleed_pub = None
        self.announce()

    def announce(self) -> None:
        """ComponentInfo once, latched, as soon as the node exists (GEN-02)."""
        info = ComponentInfo(
            node_name=self.get_fully_qualified_name(), kind=ComponentInfo.KIND_SLAVE, vendor="Example Supplier",
            implementation="bms_example_slave.slave_node", version="1.0.0",
            interface_version=ComponentInfo.INTERFACE_VERSION, hardware_id=f"example-sim-{self.module_id}",
            host=os.environ.get("BMS_HOST") or socket.gethostname())
        info.header.stamp = stamp_of(self)
        info.header.frame_id = self.get_name()
        self.info_pub = self.create_publisher(ComponentInfo, "components", LATCHED)
        self.info_pub.publish(info)
        self.warned: set[str] = set()
        if self.defect != "ignore_peers":
            self.create_subscription(ComponentInfo, "components", self.on_peer, LATCHED_MANY)

    def on_peer(self, peer: ComponentInfo) -> None:
        """GEN-03: a peer of another MAJOR interface version is named in an error, once."""
        major = ComponentInfo.INTERFACE_VERSION.split(".")[0]
        if peer.interface_version.split(".")[0] != major and peer.node_name not in self.warned:
            self.warned.add(peer.node_name)
            self.get_logger().error(f"peer {peer.node_name} speaks bms_interfaces {peer.interface_version!r}, "
                                    f"this node {ComponentInfo.INTERFACE_VERSION}: messages are not compatible")

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        if not (1 <= self.cells <= 24 and self.sensors >= 1 and self.sample_period_s > 0
                and self.balancing_timeout_s > 0):
            self.get_logger().error(
                f"parameters out of range: cells_per_module {self.cells} (1..24), sensors_per_module "
                f"{self.sensors} (>= 1), sample_period_s {self.sample_period_s} and balancing_timeout_s "
                f"{self.balancing_timeout_s} (> 0)")
            return TransitionCallbackReturn.FAILURE
        self.pub = self.create_lifecycle_publisher(CellMeasurements, "cell_measurements", PER_MODULE)
        self.commands = self.create_subscription(BalancingCommand, "balancing_command", self.on_command, PER_MODULE)
        self.truth_sub = self.create_subscription(CellMeasurements, "/sim/cell_truth", self.on_truth, PER_MODULE)
        self.bleed_pub = self.create_publisher(BalancingCommand, "/sim/bleed_switches", PER_MODULE)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = True
        self.timer = self.create_timer(self.sample_period_s, self.sample)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self.open_switches()  # a deactivated board never leaves bleed resistors on
        self.destroy_timer(self.timer)
        self.timer = None
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.destroy_lifecycle_publisher(self.pub)
        for subscription in (self.commands, self.truth_sub):
            self.destroy_subscription(subscription)
        self.destroy_publisher(self.bleed_pub)
        self.pub = self.commands = self.truth_sub = self.bleed_pub = None
        self.truth = None
        return TransitionCallbackReturn.SUCCESS

    def on_command(self, msg: BalancingCommand) -> None:
        if msg.module_id != self.module_id or not self.active:
            return
        if len(msg.balance) != self.cells:
            self.get_logger().error(f"balancing_command for module {self.module_id} has {len(msg.balance)} "
                                    f"cells, this module has {self.cells}: bleed switches opened")
            self.open_switches()
            return
        self.last_command_s = self.now_s()
        self.drive_bleed_switches(list(msg.balance))

    def open_switches(self) -> None:
        self.drive_bleed_switches([False] * self.cells)

    def drive_bleed_switches(self, switches: list[bool]) -> None:
        self.switches = switches
        if self.bleed_pub is not None:
            self.bleed_pub.publish(BalancingCommand(module_id=self.module_id, balance=switches))

    def on_truth(self, msg: CellMeasurements) -> None:
        if msg.module_id == self.module_id:
            self.truth = msg

    def read_afe(self) -> tuple[list[float], list[float]] | None:
        """(cell voltages in V, temperatures in degC) now, or None when the AFE does not answer."""
        truth = self.truth
        if truth is None or len(truth.cell_voltages_v) != self.cells or len(truth.temperatures_degc) != self.sensors:
            return None
        volts = [v + self.random.gauss(0.0, NOISE_V) for v in truth.cell_voltages_v]
        return volts, list(truth.temperatures_degc)

    def sample(self) -> None:
        now_s = self.now_s()
        if any(self.switches):
            if now_s - self.last_command_s > self.balancing_timeout_s:
                self.get_logger().warning(f"no balancing_command for {self.balancing_timeout_s:g} s: "
                                          "bleed switches opened")
                self.open_switches()
            else:
                self.drive_bleed_switches(self.switches)  # the plant wants closed switches refreshed
        reading = self.read_afe()
        if reading is None:
            self.get_logger().warning(f"module {self.module_id}: no AFE reading (no /sim/cell_truth for it)",
                                      throttle_duration_sec=5.0)
            return  # no sample: receivers see the module go silent, as with a dead board
        volts, temperatures = reading
        if self.defect == "millivolts":
            volts = [v * 1000.0 for v in volts]
        msg = CellMeasurements(module_id=self.module_id, sequence=self.sequence, cell_voltages_v=volts,
                               temperatures_degc=temperatures, balancing=self.switches, module_flags=0)
        msg.header.stamp = stamp_of(self)
        msg.header.frame_id = f"module_{self.module_id}"
        self.pub.publish(msg)
        if self.defect != "stuck_sequence":
            self.sequence = (self.sequence + 1) % SEQUENCE_MODULUS


def read_setup(args: list[str] | None) -> tuple[int, str]:
    """module_id and defect, through a short-lived node: module_id names the slave node."""
    reader = Node("example_slave_setup", start_parameter_services=False)
    try:
        module_id = reader.declare_parameter("module_id", -1).value
        defect = reader.declare_parameter("defect", "").value
    finally:
        reader.destroy_node()
    if not isinstance(module_id, int) or module_id < 0:
        raise ValueError(f"parameter module_id is required (a module of the pack, >= 0), got {module_id!r}")
    if defect not in DEFECTS:
        raise ValueError(f"parameter defect must be one of {DEFECTS}, got {defect!r}")
    return module_id, defect


def main(args: list[str] | None = None) -> int:
    # SIGINT and SIGTERM only set a flag that the spin loop checks: rclpy's handler would shut
    # the context down before the bleed switches are opened on the way out; an exception raised
    # from a handler may land inside rclpy's C code, which turns it into a RuntimeError (a loaded
    # CI run saw one); and Python's own SIGINT handling is absent when the node is started with
    # SIGINT ignored (from a background job of a non-interactive shell).
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    stopping = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stopping.append(True))
    try:
        module_id, defect = read_setup(args)
    except ValueError as error:
        print(f"bms_example_slave: {error}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    node = ExampleSlave(module_id, defect)
    if defect == "no_lifecycle":
        node.trigger_configure()
        node.trigger_activate()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        # Short waits: on simulated time with /clock gone no timer wakes the executor, and the
        # flag is checked between waits.
        while rclpy.ok() and not stopping:
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:
        pass
    finally:
        node.open_switches()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
