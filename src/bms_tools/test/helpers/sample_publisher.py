"""Test publisher: several bms_interfaces types (and DiagnosticArray) with content derived from
a sequence number, so a test can rebuild the expected message from any received one."""

from __future__ import annotations

import signal
import sys

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.executors import ExternalShutdownException

from bms_common import topics
from bms_common.component_info import Identity
from bms_interfaces.msg import (
    CellMeasurements,
    ComponentInfo,
    Fault,
    PackMeasurement,
    SafetyStatus,
)

RATE_HZ = 50.0
MODULES = 2
CELLS = 12


def stamp(msg, k: int) -> None:
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + k // 50, (k % 50) * 20_000_000


def cell_measurements(k: int, module_id: int) -> CellMeasurements:
    msg = CellMeasurements()
    stamp(msg, k)
    msg.header.frame_id = f"module_{module_id}"
    msg.module_id = module_id
    msg.sequence = k
    msg.cell_voltages_v = [3.6 + 0.001 * ((k + i + module_id) % 50) for i in range(CELLS)]
    msg.temperatures_degc = [25.0 + 0.1 * ((k + i) % 20) for i in range(4)]
    msg.balancing = [(k + i) % 3 == 0 for i in range(CELLS)]
    msg.cell_flags = [i % 2 for i in range(CELLS)]
    msg.module_flags = k % 4
    return msg


def pack_measurement(k: int) -> PackMeasurement:
    msg = PackMeasurement()
    stamp(msg, k)
    msg.header.frame_id = "pack_sensor"
    msg.sequence = k
    msg.current_a = -50.0 + (k % 100)
    msg.pack_voltage_v = 86.4 + 0.01 * (k % 10)
    msg.dc_link_voltage_v = 86.0
    msg.insulation_resistance_ohm = 5e6
    msg.hvil_closed = k % 7 != 0
    return msg


def safety_status(k: int) -> SafetyStatus:
    msg = SafetyStatus()
    stamp(msg, k)
    msg.sequence = k
    msg.level = k % 4
    msg.contactors_allowed = msg.level < SafetyStatus.LEVEL_ALARM
    msg.charge_derating = msg.discharge_derating = 0.5
    for index in range(k % 3):
        fault = Fault(code=f"CELL_OV_{index}", level=msg.level, module_id=index, cell=k % CELLS,
                      value=4.3, limit=4.25, latched=True, description=f"fault {index} at {k}")
        fault.since.sec = k
        msg.faults.append(fault)
    return msg


def diagnostics(k: int) -> DiagnosticArray:
    msg = DiagnosticArray()
    stamp(msg, k)
    msg.status = [DiagnosticStatus(level=b"\x00", name="sample", message="ok", hardware_id="sim",
                                   values=[KeyValue(key="sequence", value=str(k))])]
    return msg


def main() -> None:
    rclpy.init(signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, lambda *_: rclpy.try_shutdown())
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    node = rclpy.create_node("sample_publisher", namespace=topics.NAMESPACE)
    from bms_common.component_info import ComponentAnnouncer

    announcer = ComponentAnnouncer(node, Identity(kind=ComponentInfo.KIND_SIMULATION,
                                                  implementation="sample_publisher",
                                                  hardware_id="test-rig-1"))
    cells = node.create_publisher(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.CELL_MEASUREMENTS.qos)
    pack = node.create_publisher(PackMeasurement, topics.PACK_MEASUREMENT.name, topics.PACK_MEASUREMENT.qos)
    safety = node.create_publisher(SafetyStatus, topics.SAFETY_STATUS.name, topics.SAFETY_STATUS.qos)
    diag = node.create_publisher(DiagnosticArray, topics.DIAGNOSTICS.name, topics.DIAGNOSTICS.qos)
    counter = [0]

    def tick() -> None:
        k = counter[0]
        counter[0] += 1
        for module_id in range(MODULES):
            cells.publish(cell_measurements(k, module_id))
        pack.publish(pack_measurement(k))
        safety.publish(safety_status(k))
        if k % 10 == 0:
            diag.publish(diagnostics(k))

    node.create_timer(1.0 / RATE_HZ, tick)
    try:
        rclpy.spin(node)
    except ExternalShutdownException:
        pass
    del announcer
    sys.exit(0)


if __name__ == "__main__":
    main()
