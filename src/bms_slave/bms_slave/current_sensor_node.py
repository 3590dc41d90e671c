"""The current sensor node: pack current, pack and DC-link voltage, insulation and HVIL from a
:class:`~bms_slave.pack_sensor.PackSensorBackend`, published as PackMeasurement.

It runs in ``sim_host`` (sampled by the plant's step), in a ``board`` process on a hardware driver
(sampled on its own timer), or in a ``board`` on the simulated backend (sampled as the plant's
``/sim/pack_truth`` arrives, :func:`simulated_current_sensor`), so the sensor can sit on any host.
"""

from __future__ import annotations

from rclpy.node import Node

from bms_common import topics
from bms_common.component_info import Identity
from bms_common.lifecycle import BmsLifecycleNode, LifecycleState, TransitionCallbackReturn, declare
from bms_common.pack_config import PackConfig
from bms_common.stamps import to_stamp
from bms_interfaces.msg import ComponentInfo, PackMeasurement

from .fault_service import inject_fault_service
from .faults import FaultInjector
from .pack_sensor import PackSensorBackend
from .sim_config import load_sim_config
from .sim_link import PackTruthLink
from .sim_pack_sensor import SimulatedPackSensor

SIM_HARDWARE_ID = "sim-current-sensor"


class CurrentSensorNode(BmsLifecycleNode):
    """Publishes the pack sensor's samples as PackMeasurement."""

    def __init__(self, backend: PackSensorBackend, hardware_id: str, namespace: str = "/bms", *,
                 self_timed: bool = False, **kwargs) -> None:
        """``self_timed``: sample on the node's own timer (``sample_period_s``) instead of when
        the simulation (the plant's step, or the /sim link) calls :meth:`sample`."""
        super().__init__("current_sensor", Identity(
            kind=ComponentInfo.KIND_CURRENT_SENSOR, implementation="bms_slave.current_sensor",
            hardware_id=hardware_id), namespace=namespace, **kwargs)
        self.backend = backend
        self.self_timed = self_timed
        self.sample_period_s = float(declare(self, "sample_period_s", 0.1)) if self_timed else 0.0
        self.sequence = 0
        self.active = False
        self._publisher = None
        self._timer = None

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._publisher = self.create_lifecycle_publisher(
            PackMeasurement, topics.PACK_MEASUREMENT.name, topics.RELIABLE)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = True
        if self.self_timed:
            self._timer = self.create_timer(self.sample_period_s, self.sample)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.destroy_lifecycle_publisher(self._publisher)
        self._publisher = None
        return TransitionCallbackReturn.SUCCESS

    def sample(self) -> None:
        if not self.active:
            return
        try:
            reading = self.backend.read()
        except Exception as exc:  # noqa: BLE001 - a driver fault (CAN timeout, OSError) skips a sample
            self.get_logger().error(f"current sensor not answering: {exc}", throttle_duration_sec=5.0)
            return
        msg = PackMeasurement(
            sequence=self.sequence, current_a=reading.current_a, pack_voltage_v=reading.pack_voltage_v,
            dc_link_voltage_v=reading.dc_link_voltage_v,
            insulation_resistance_ohm=reading.insulation_resistance_ohm, hvil_closed=reading.hvil_closed,
        )
        msg.header.stamp = to_stamp(reading.stamp_s)
        msg.header.frame_id = "current_sensor"
        self._publisher.publish(msg)
        self.sequence += 1


def simulated_sensor_node(sensor: SimulatedPackSensor, pack: PackConfig, namespace: str,
                          cli_args: list[str] | None) -> CurrentSensorNode:
    """The simulated current sensor node with its ``~/inject_fault`` (current_sensor_offset)."""
    node = CurrentSensorNode(sensor, SIM_HARDWARE_ID, namespace, cli_args=cli_args)
    inject_fault_service(node, FaultInjector(pack, pack_sensor=sensor))
    return node


def simulated_current_sensor(pack: PackConfig, namespace: str, cli_args: list[str] | None) -> list[Node]:
    """A board's simulated current sensor: it measures the plant of a ``sim_host`` started with
    ``current_sensor:=false`` through the sensor's own measurement model (the seeded stream
    ``sim_host`` would have used), sampling as each ``/sim/pack_truth`` arrives."""
    link = PackTruthLink(namespace=namespace, cli_args=cli_args)
    node = simulated_sensor_node(SimulatedPackSensor(link, load_sim_config(pack)), pack, namespace, cli_args)
    link.sampler = node.sample
    return [link, node]
