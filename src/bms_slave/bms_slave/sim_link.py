"""The per-cell link between the plant and simulated AFEs in other processes (docs/simulation.md).

For every module that ``sim_host`` does not host, the plant publishes the module's AFE inputs on
``/sim/cell_truth`` at each of its sampling instants. A ``board`` on the simulated AFE backend
(``afe_backend:=sim``) measures them through the module's own measurement model, the same seeded
stream ``sim_host`` would have used, and sends its bleed switches back on
``/sim/bleed_switches``, so the module can run in any process on any host while the pack stays
one plant. The pack-level truth goes out on ``/sim/pack_truth`` at every current sensor
instant; a board with ``current_sensor_backend:=sim`` measures it the same way
(:class:`PackTruthLink`). None of these topics is part of the BMS contract.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from rclpy.node import Node

from bms_common import topics
from bms_common.component_info import ComponentAnnouncer, Identity
from bms_common.lifecycle import take_pending
from bms_common.stamps import to_seconds, to_stamp
from bms_interfaces.msg import BalancingCommand, CellMeasurements, ComponentInfo, PackMeasurement

from .plant import AfeInputs, PackTruth


def truth_message(module_id: int, inputs: AfeInputs, sequence: int) -> CellMeasurements:
    """``/sim/cell_truth`` for one module: true voltages and sensor temperatures, no flags."""
    msg = CellMeasurements(module_id=module_id, sequence=sequence, balancing=inputs.balancing.tolist())
    msg.header.stamp = to_stamp(inputs.stamp_s)
    msg.header.frame_id = "plant"
    msg.cell_voltages_v = inputs.cell_voltage_v.astype(np.float32)
    msg.temperatures_degc = inputs.sensor_temperature_degc.astype(np.float32)
    return msg


def pack_truth_message(truth: PackTruth, sequence: int) -> PackMeasurement:
    """``/sim/pack_truth``: the true pack-level values, stamped with the plant's time."""
    msg = PackMeasurement(
        sequence=sequence, current_a=truth.current_a, pack_voltage_v=truth.pack_voltage_v,
        dc_link_voltage_v=truth.dc_link_voltage_v, insulation_resistance_ohm=truth.insulation_resistance_ohm,
        hvil_closed=truth.hvil_closed)
    msg.header.stamp = to_stamp(truth.time_s)
    msg.header.frame_id = "plant"
    return msg


def pack_truth_of(msg: PackMeasurement) -> PackTruth:
    return PackTruth(to_seconds(msg.header.stamp), msg.current_a, msg.pack_voltage_v, msg.dc_link_voltage_v,
                     msg.insulation_resistance_ohm, msg.hvil_closed)


def inputs_of(msg: CellMeasurements) -> AfeInputs:
    return AfeInputs(to_seconds(msg.header.stamp), np.asarray(msg.cell_voltages_v, dtype=float),
                     np.asarray(msg.temperatures_degc, dtype=float), np.asarray(msg.balancing, dtype=bool))


class SimTruthLink(Node):
    """A board's end of the link. Keeps the newest AFE inputs of its modules and has each module
    sample as they arrive, as ``sim_host``'s step does (so the sample stream, noise included, is
    what ``sim_host`` would have published); sends the bleed switches its AFEs are told to close.
    """

    def __init__(self, cells: int, sensors: int, module_ids: list[int], **kwargs) -> None:
        super().__init__("sim_link_" + "_".join(map(str, module_ids)), **kwargs)
        self.cells, self.sensors = cells, sensors
        self.announcer = ComponentAnnouncer(self, Identity(
            kind=ComponentInfo.KIND_SIMULATION, implementation="bms_slave.sim_link", hardware_id="sim"))
        self.inputs: dict[int, AfeInputs] = {}
        self.switches = {m: np.zeros(cells, dtype=bool) for m in module_ids}
        self.samplers: dict[int, Callable[[float], None]] = {}
        self._bleed_pub = self.create_publisher(BalancingCommand, topics.SIM_BLEED_SWITCHES, topics.PER_MODULE)
        self._subscription = self.create_subscription(CellMeasurements, topics.SIM_CELL_TRUTH, self._on_arrival,
                                                      topics.PER_MODULE)
        self.get_logger().info(
            f"modules {', '.join(map(str, module_ids))}: simulated AFEs on the plant's cells "
            f"({topics.SIM_CELL_TRUTH} in, {topics.SIM_BLEED_SWITCHES} out)")

    def afe_inputs(self, module: int) -> AfeInputs:
        if module not in self.inputs:
            raise LookupError(f"module {module}: no /sim/cell_truth received yet (is sim_host running with "
                              f"this module in external_modules?)")
        return self.inputs[module]

    def set_module_balancing(self, module: int, mask: np.ndarray) -> None:
        self.switches[module] = np.asarray(mask, dtype=bool).copy()
        self._send_switches(module)

    def _send_switches(self, module: int) -> None:
        self._bleed_pub.publish(BalancingCommand(module_id=module, balance=self.switches[module].tolist()))

    def _on_arrival(self, msg: CellMeasurements) -> None:
        # Everything queued at once: the executor takes one message per subscription per wait,
        # so a board whose process has other nodes and /clock to serve could drain /sim/cell_truth
        # (every module's, 10 Hz each) slower than the plant sends it. After an outage the
        # backlog then never cleared and the modules stayed seconds behind: stale for good.
        self._on_truth(msg)
        take_pending(self._subscription, self._on_truth)

    def _on_truth(self, msg: CellMeasurements) -> None:
        module = msg.module_id
        sample = self.samplers.get(module)
        if sample is None:
            return  # another board's module
        if len(msg.cell_voltages_v) != self.cells or len(msg.temperatures_degc) != self.sensors:
            self.get_logger().error(
                f"/sim/cell_truth for module {module} has {len(msg.cell_voltages_v)} cells and "
                f"{len(msg.temperatures_degc)} sensors, the pack has {self.cells} and {self.sensors}: "
                "is sim_host running the same pack?", throttle_duration_sec=5.0)
            return
        inputs = inputs_of(msg)
        self.inputs[module] = inputs
        # Closed switches are refreshed every sample: the plant opens the switches of a module
        # whose board stopped sending (a dead board must not bleed its cells empty).
        if self.switches[module].any() or not np.array_equal(inputs.balancing, self.switches[module]):
            self._send_switches(module)
        sample(inputs.stamp_s)


class PackTruthLink(Node):
    """A board's end of the pack-level link: keeps the newest ``/sim/pack_truth`` (the
    :meth:`pack_truth` a simulated pack sensor reads) and has the current sensor sample as each
    arrives, as ``sim_host``'s step does."""

    def __init__(self, **kwargs) -> None:
        super().__init__("sim_link_current_sensor", **kwargs)
        self.announcer = ComponentAnnouncer(self, Identity(
            kind=ComponentInfo.KIND_SIMULATION, implementation="bms_slave.sim_link", hardware_id="sim"))
        self.truth: PackTruth | None = None
        self.sampler: Callable[[], None] | None = None
        self._subscription = self.create_subscription(PackMeasurement, topics.SIM_PACK_TRUTH, self._on_arrival,
                                                      topics.RELIABLE)
        self.get_logger().info(f"current sensor: simulated, on the plant's {topics.SIM_PACK_TRUTH}")

    def pack_truth(self) -> PackTruth:
        if self.truth is None:
            raise LookupError(f"no {topics.SIM_PACK_TRUTH} received yet (is sim_host running with "
                              "current_sensor:=false?)")
        return self.truth

    def _on_arrival(self, msg: PackMeasurement) -> None:
        self._on_truth(msg)
        take_pending(self._subscription, self._on_truth)  # as SimTruthLink: a backlog drains at once

    def _on_truth(self, msg: PackMeasurement) -> None:
        self.truth = pack_truth_of(msg)
        if self.sampler is not None:
            self.sampler()
