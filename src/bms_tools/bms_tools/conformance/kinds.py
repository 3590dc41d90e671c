"""What each component kind publishes, subscribes to and offers (docs/standard/), and the
content checks of its messages. Pure data and functions: no ROS calls here."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bms_common import topics
from bms_common.pack_config import PackConfig
from bms_common.plausibility import PhysicalRanges
from bms_interfaces.msg import ComponentInfo, ContactorState, CurrentLimits, PackState, SafetyStatus

# SOH is capacity over nominal capacity: a new cell may hold more than its nominal capacity.
MAX_SOH = 1.5
# A content check: (message, context) -> [(requirement number, problem)]
Checker = Callable[[Any, "Context"], list[tuple[str, str]]]


@dataclass
class Context:
    pack: PackConfig
    ranges: PhysicalRanges
    module_id: int | None = None  # slaves: the module the node is named after
    clock_step_s: float = 0.0  # on simulated time: the step of /clock (sim_host's step_s)


@dataclass(frozen=True)
class Output:
    topic: topics.Topic
    min_hz: float | None  # None: on change, no rate requirement
    max_hz: float | None
    max_gap_s: float | None = None  # longest allowed time between two stamps
    checker: Checker | None = None
    content: tuple[str, ...] = ()  # the requirements `checker` verifies
    sequence: str | None = None  # the requirement of `sequence`, +1 per message


@dataclass(frozen=True)
class Kind:
    name: str  # ComponentInfo.KIND_*
    node_name: str  # fully qualified; "{module}" for slaves
    outputs: tuple[Output, ...]
    inputs: tuple[topics.Topic, ...]
    services: tuple[tuple[str, str], ...] = ()  # (relative name, type)
    autostart: bool = False  # starts itself (the safety path)
    spec: str = ""  # its page under docs/standard/
    prefix: str = ""  # of its own requirement numbers
    managed: bool = True  # a lifecycle node (GEN-09..12, GEN-14 apply)
    # Kinds with any name in /bms (bridge, GUI): found by their ComponentInfo; the component is
    # the node and its helper nodes `<name>_<suffix>`; every contract topic it subscribes to is
    # an input (GEN-06), and it must not publish contract topics of other kinds (BRG-01, GUI-01).
    any_name: bool = False
    may_publish: tuple[topics.Topic, ...] = ()  # published by some implementations only
    latched_inputs: tuple[topics.Topic, ...] = ()  # must be read TRANSIENT_LOCAL (the last value at start)
    not_applicable: tuple[str, ...] = ()  # general requirements that do not apply to the kind


def _few(values: np.ndarray) -> str:
    """The first three values as they were sent (float32 printed short)."""
    return ", ".join(f"{x:.6g}" for x in values[:3])


def _problems(pairs: list[tuple[bool, str, str]]) -> list[tuple[str, str]]:
    return [(number, problem) for bad, number, problem in pairs if bad]


def check_cell_measurements(msg: Any, ctx: Context) -> list[tuple[str, str]]:
    pack, ranges = ctx.pack, ctx.ranges
    v = np.asarray(msg.cell_voltages_v, dtype=np.float64)
    t = np.asarray(msg.temperatures_degc, dtype=np.float64)
    flags = np.frombuffer(bytes(msg.cell_flags), dtype=np.uint8) if len(msg.cell_flags) else np.zeros(0, np.uint8)
    expected_frame = f"module_{ctx.module_id}"
    return _problems([
        (msg.module_id != ctx.module_id, "SLV-01", f"module_id {msg.module_id} from the node of module {ctx.module_id}"),
        (msg.header.frame_id != expected_frame, "SLV-01", f"frame_id {msg.header.frame_id!r}, expected {expected_frame!r}"),
        (len(v) != pack.cells_per_module, "SLV-02", f"{len(v)} cell voltages, the pack has {pack.cells_per_module}"),
        (len(t) != pack.sensors_per_module, "SLV-02",
         f"{len(t)} temperatures, the pack has {pack.sensors_per_module} sensors per module"),
        (len(msg.balancing) != pack.cells_per_module, "SLV-02",
         f"{len(msg.balancing)} balancing entries, the pack has {pack.cells_per_module} cells"),
        (len(flags) not in (0, pack.cells_per_module), "SLV-02", f"{len(flags)} cell flags (0 or one per cell)"),
        (bool(ranges.bad_voltages(v).any()), "SLV-03",
         f"cell voltages {_few(v[ranges.bad_voltages(v)])} outside {ranges.cell_voltage_min_v:g}.."
         f"{ranges.cell_voltage_max_v:g} V (millivolts?)"),
        (bool(ranges.bad_temperatures(t).any()), "SLV-03",
         f"temperatures {_few(t[ranges.bad_temperatures(t)])} outside {ranges.temperature_min_degc:g}.."
         f"{ranges.temperature_max_degc:g} degC (kelvin?)"),
        (bool(np.isnan(v).any() or np.isnan(t).any()), "SLV-03", "NaN readings (failed measurements) in a healthy run"),
        (bool((flags & ~np.uint8(7)).any()), "SLV-05", f"undefined cell flag bits in {flags.tolist()}"),
        (msg.module_flags & ~7 != 0, "SLV-05", f"undefined module flag bits in {msg.module_flags:#x}"),
    ])


def check_pack_measurement(msg: Any, ctx: Context) -> list[tuple[str, str]]:
    max_v = ctx.pack.cell_count * ctx.ranges.cell_voltage_max_v
    return _problems([
        (not math.isfinite(msg.current_a), "CUR-01", f"current_a {msg.current_a} (must always be measured)"),
        (math.isfinite(msg.pack_voltage_v) and not 0 <= msg.pack_voltage_v <= max_v, "CUR-01",
         f"pack_voltage_v {msg.pack_voltage_v} outside 0..{max_v:g} V"),
        (math.isfinite(msg.dc_link_voltage_v) and not -1 <= msg.dc_link_voltage_v <= max_v, "CUR-01",
         f"dc_link_voltage_v {msg.dc_link_voltage_v} outside 0..{max_v:g} V"),
        (math.isfinite(msg.insulation_resistance_ohm) and msg.insulation_resistance_ohm < 0, "CUR-01",
         f"insulation_resistance_ohm {msg.insulation_resistance_ohm} < 0"),
    ])


def check_pack_state(msg: Any, ctx: Context) -> list[tuple[str, str]]:
    statuses = set(bytes(msg.module_status)) if isinstance(msg.module_status, bytes | bytearray) \
        else set(msg.module_status)
    return _problems([
        (msg.operating_state > PackState.STATE_ERROR, "MST-01", f"operating_state {msg.operating_state} undefined"),
        (len(msg.module_status) != ctx.pack.modules, "MST-01",
         f"{len(msg.module_status)} module_status entries, the pack has {ctx.pack.modules} modules"),
        (not statuses <= {PackState.MODULE_MISSING, PackState.MODULE_OK, PackState.MODULE_STALE}, "MST-01",
         f"undefined module_status values {sorted(statuses)}"),
    ])


def check_current_limits(msg: Any, ctx: Context) -> list[tuple[str, str]]:
    reasons = {msg.charge_reason, msg.discharge_reason}
    return _problems([
        (not (msg.max_charge_current_a >= 0 and msg.max_discharge_current_a >= 0), "MST-02",
         f"limits {msg.max_charge_current_a}, {msg.max_discharge_current_a} must be finite magnitudes >= 0"),
        (max(reasons) > CurrentLimits.REASON_NOT_ALLOWED, "MST-02", f"undefined reason in {sorted(reasons)}"),
    ])


def check_contactor_state(msg: Any, ctx: Context) -> list[tuple[str, str]]:
    return _problems([
        (msg.open_reason > ContactorState.OPENED_NOT_ALLOWED, "CON-01", f"open_reason {msg.open_reason} undefined"),
        (msg.opened_by_safety and msg.open_reason == ContactorState.OPENED_NONE, "CON-01",
         "opened_by_safety without an open_reason"),
    ])


def check_cell_states(msg: Any, ctx: Context) -> list[tuple[str, str]]:
    n = ctx.pack.cell_count
    soc = np.asarray(msg.soc, dtype=np.float64)
    soh = np.asarray(msg.soh, dtype=np.float64)
    lengths = {len(getattr(msg, f)) for f in ("soc", "soc_std", "capacity_ah", "capacity_std_ah", "soh",
                                              "internal_resistance_ohm")}
    soh = np.concatenate([soh, [msg.pack_soh]])
    finite = soh[np.isfinite(soh)]
    return _problems([
        (lengths != {n} or msg.module_count != ctx.pack.modules or msg.cells_per_module != ctx.pack.cells_per_module,
         "EST-01", f"arrays of lengths {sorted(lengths)} for {msg.module_count} x {msg.cells_per_module}, "
                   f"the pack has {ctx.pack.modules} x {ctx.pack.cells_per_module}"),
        (bool(((soc < 0) | (soc > 1.0)).any()) or not 0 <= msg.pack_soc <= 1, "EST-01",
         "SOC outside 0..1 (percent?)"),
        (bool(((finite < 0) | (finite > MAX_SOH)).any()), "EST-01", f"SOH outside 0..{MAX_SOH:g} (percent?)"),
    ])


def check_power_limits(msg: Any, ctx: Context) -> list[tuple[str, str]]:
    arrays = [np.asarray(getattr(msg, f), dtype=np.float64) for f in
              ("max_charge_current_a", "max_discharge_current_a", "max_charge_power_w", "max_discharge_power_w")]
    h = len(msg.horizons_s)
    return _problems([
        (any(len(a) != h for a in arrays) or h == 0, "EST-02", f"{h} horizons, arrays of {[len(a) for a in arrays]}"),
        (any(bool((~(a >= 0)).any()) for a in arrays), "EST-02", "limits must be finite magnitudes >= 0"),
    ])


def check_safety_status(msg: Any, ctx: Context) -> list[tuple[str, str]]:
    return _problems([
        (msg.level > SafetyStatus.LEVEL_FAULT, "SUP-01", f"level {msg.level} undefined"),
        (msg.contactors_allowed and msg.level > SafetyStatus.LEVEL_WARNING, "SUP-01",
         f"contactors_allowed at level {msg.level}"),
        (not (0 <= msg.charge_derating <= 1 and 0 <= msg.discharge_derating <= 1), "SUP-01",
         f"deratings {msg.charge_derating}, {msg.discharge_derating} outside 0..1"),
        (any(f.level > msg.level for f in msg.faults), "SUP-01", "a fault above the status level"),
    ])


T = topics
# Not lifecycle nodes and no periodic output: what a bridge or a GUI is not asked (BRG-04, GUI-04).
UNMANAGED = ("GEN-07", "GEN-08", "GEN-09", "GEN-10", "GEN-11", "GEN-12", "GEN-14")
KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind(ComponentInfo.KIND_SLAVE, "/bms/module_{module}",
         (Output(T.CELL_MEASUREMENTS, 8.0, 12.5, 0.5, check_cell_measurements,
                 ("SLV-01", "SLV-02", "SLV-03", "SLV-05"), "SLV-04"),),
         (T.BALANCING_COMMAND,), spec="docs/standard/slave.md", prefix="SLV"),
    Kind(ComponentInfo.KIND_CURRENT_SENSOR, "/bms/current_sensor",
         (Output(T.PACK_MEASUREMENT, 8.0, 125.0, 0.25, check_pack_measurement, ("CUR-01",), "CUR-02"),), (),
         spec="docs/standard/current_sensor.md", prefix="CUR"),
    Kind(ComponentInfo.KIND_MASTER, "/bms/master",
         (Output(T.PACK_STATE, 8.0, 12.5, 0.5, check_pack_state, ("MST-01",)),
          Output(T.BATTERY_STATE, 0.8, 12.5, 2.0),
          Output(T.CURRENT_LIMITS, 8.0, 12.5, 0.5, check_current_limits, ("MST-02",)),
          Output(T.CONTACTOR_COMMAND, 8.0, 12.5, 0.5),
          Output(T.BALANCING_COMMAND, None, None)),
         (T.CELL_MEASUREMENTS, T.PACK_MEASUREMENT, T.SAFETY_STATUS, T.CONTACTOR_STATE, T.CELL_STATES,
          T.POWER_LIMITS),
         services=((T.REQUEST_STATE, "bms_interfaces/srv/RequestState"),), spec="docs/standard/master.md", prefix="MST"),
    Kind(ComponentInfo.KIND_CONTACTOR, "/bms/contactor",
         (Output(T.CONTACTOR_STATE, 8.0, 12.5, 0.5, check_contactor_state, ("CON-01",)),),
         (T.CONTACTOR_COMMAND, T.SAFETY_STATUS), autostart=True, spec="docs/standard/contactor.md", prefix="CON"),
    Kind(ComponentInfo.KIND_ESTIMATOR, "/bms/estimator",
         (Output(T.CELL_STATES, 0.8, 12.5, 2.0, check_cell_states, ("EST-01",)),
          Output(T.POWER_LIMITS, 8.0, 12.5, 0.5, check_power_limits, ("EST-02",))),
         (T.CELL_MEASUREMENTS, T.PACK_MEASUREMENT), spec="docs/standard/estimator.md", prefix="EST"),
    Kind(ComponentInfo.KIND_SAFETY, "/bms/safety_supervisor",
         (Output(T.SAFETY_STATUS, 16.0, 25.0, 0.25, check_safety_status, ("SUP-01",), "SUP-02"),
          Output(T.DIAGNOSTICS, 0.8, 1.25, 2.0), Output(T.FAULT_LOG, None, None)),
         (T.CELL_MEASUREMENTS, T.PACK_MEASUREMENT, T.CONTACTOR_STATE, T.CELL_STATES, T.POWER_LIMITS),
         services=((T.RESET_FAULTS, "bms_interfaces/srv/ResetFaults"),), autostart=True,
         spec="docs/standard/safety_supervisor.md", prefix="SUP"),
    Kind(ComponentInfo.KIND_BRIDGE, "", (), (), spec="docs/standard/bridge.md", prefix="BRG", managed=False,
         any_name=True, may_publish=(T.COMMAND_AUDIT,), latched_inputs=(T.COMPONENTS,),
         not_applicable=UNMANAGED),
    Kind(ComponentInfo.KIND_GUI, "", (), (T.SAFETY_STATUS, T.FAULT_LOG), spec="docs/standard/gui.md", prefix="GUI",
         managed=False, any_name=True, may_publish=(T.COMMAND_AUDIT,),
         latched_inputs=(T.SAFETY_STATUS, T.CONTACTOR_STATE, T.FAULT_LOG, T.COMPONENTS), not_applicable=UNMANAGED),
)}

LIFECYCLE_SERVICES = (
    ("~/change_state", "lifecycle_msgs/srv/ChangeState"),
    ("~/get_state", "lifecycle_msgs/srv/GetState"),
    ("~/get_available_transitions", "lifecycle_msgs/srv/GetAvailableTransitions"),
)
# Topics any node may publish besides its kind's: ROS infrastructure and its own private ones.
ALWAYS_ALLOWED = ("/rosout", "/parameter_events", T.COMPONENTS.absolute, T.DIAGNOSTICS.name)


def node_name(kind: Kind, module: int | None) -> str:
    """Empty for a kind of any name (bridge, GUI): found by its ComponentInfo."""
    return kind.node_name.format(module=module)


def module_of(name: str) -> int | None:
    match = re.fullmatch(r"/bms/module_(\d+)", name)
    return int(match.group(1)) if match else None
