"""Topic and service names and QoS profiles of the BMS contract, in one place.

Names are relative: every BMS node runs in the ``/bms`` namespace (launch files push it), so a
second pack on the same network is a second namespace. ``/battery_state`` and ``/diagnostics``
are absolute because the ROS ecosystem expects them there.
"""

from __future__ import annotations

from dataclasses import dataclass

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
)

NAMESPACE = "/bms"

# Reliable, keep last: measurements and commands. Depth absorbs short executor stalls.
RELIABLE = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10,
    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
)
# Per-module topics arrive in bursts, one message per module of the pack (up to 500) at once,
# and all modules share one history (the messages have no key): a reader keeping only 10 would
# silently lose the burst's first modules whenever its executor is a moment late.
PER_MODULE = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1000,
    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
)
# Reliable, transient local, depth 1: the last value is delivered to late joiners ("latched").
LATCHED = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1,
    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
# Subscribers of a latched topic with many publishers (components) keep one sample per writer.
LATCHED_MANY = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1000,
    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
# Reliable, volatile, deeper history: rare records where a burst must not lose one (the audit).
RELIABLE_EVENTS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=50,
    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE,
)
DEFAULT = QoSProfile(depth=10)


@dataclass(frozen=True)
class Topic:
    name: str
    type_name: str  # ROS type, e.g. bms_interfaces/msg/CellMeasurements
    qos: QoSProfile

    @property
    def absolute(self) -> str:
        return self.name if self.name.startswith("/") else f"{NAMESPACE}/{self.name}"


CELL_MEASUREMENTS = Topic("cell_measurements", "bms_interfaces/msg/CellMeasurements", PER_MODULE)
PACK_MEASUREMENT = Topic("pack_measurement", "bms_interfaces/msg/PackMeasurement", RELIABLE)
PACK_STATE = Topic("pack_state", "bms_interfaces/msg/PackState", RELIABLE)
BATTERY_STATE = Topic("/battery_state", "sensor_msgs/msg/BatteryState", RELIABLE)
CELL_STATES = Topic("cell_states", "bms_interfaces/msg/CellStates", RELIABLE)
POWER_LIMITS = Topic("power_limits", "bms_interfaces/msg/PowerLimits", RELIABLE)
CURRENT_LIMITS = Topic("current_limits", "bms_interfaces/msg/CurrentLimits", RELIABLE)
SAFETY_STATUS = Topic("safety_status", "bms_interfaces/msg/SafetyStatus", LATCHED)
DIAGNOSTICS = Topic("/diagnostics", "diagnostic_msgs/msg/DiagnosticArray", DEFAULT)
BALANCING_COMMAND = Topic("balancing_command", "bms_interfaces/msg/BalancingCommand", PER_MODULE)
CONTACTOR_COMMAND = Topic("contactor_command", "bms_interfaces/msg/ContactorCommand", RELIABLE)
CONTACTOR_STATE = Topic("contactor_state", "bms_interfaces/msg/ContactorState", LATCHED)
COMPONENTS = Topic("components", "bms_interfaces/msg/ComponentInfo", LATCHED)
FAULT_LOG = Topic("fault_log", "bms_interfaces/msg/FaultLog", LATCHED)
COMMAND_AUDIT = Topic("command_audit", "bms_interfaces/msg/CommandAudit", RELIABLE_EVENTS)

CONTRACT_TOPICS: tuple[Topic, ...] = (
    CELL_MEASUREMENTS, PACK_MEASUREMENT, PACK_STATE, BATTERY_STATE, CELL_STATES, POWER_LIMITS,
    CURRENT_LIMITS, SAFETY_STATUS, DIAGNOSTICS, BALANCING_COMMAND, CONTACTOR_COMMAND,
    CONTACTOR_STATE, COMPONENTS, FAULT_LOG, COMMAND_AUDIT,
)

# Between simulated parts only (docs/simulation.md); not part of the BMS contract.
SIM_CONTACTOR_COILS = "/sim/contactor_coils"  # ContactorCommand: coil outputs of the contactor driver
SIM_CONTACTOR_FEEDBACK = "/sim/contactor_feedback"  # ContactorState: auxiliary contacts
SIM_PACK_TRUTH = "/sim/pack_truth"  # PackMeasurement: true current and voltages
# CellMeasurements: a module's AFE inputs (true cell voltages and sensor temperatures at its
# sampling instant, bleed switches), for each module sim_host does not host
SIM_CELL_TRUTH = "/sim/cell_truth"
SIM_BLEED_SWITCHES = "/sim/bleed_switches"  # BalancingCommand: bleed switches of an outside simulated AFE

# Services
REQUEST_STATE = "request_state"  # master, bms_interfaces/srv/RequestState
RESET_FAULTS = "reset_faults"  # supervisor, bms_interfaces/srv/ResetFaults
INJECT_FAULT = "~/inject_fault"  # each simulated node, bms_interfaces/srv/InjectFault


def topic_by_name(name: str) -> Topic | None:
    """Look up a contract topic by relative or absolute name."""
    for topic in CONTRACT_TOPICS:
        if name in (topic.name, topic.absolute):
            return topic
    return None
