"""Master node: aggregation, operating state machine, current limits and balancing, wired to the
contract's topics. Every decision lives in the plain modules of bms_master; this file only moves
data between them and DDS.

Subscriptions store; a 10 Hz timer (node clock, sim time in simulation) steps the state machine
and publishes PackState, CurrentLimits, ContactorCommand and /battery_state; balancing is decided
every ``balancing_period_s`` and sent per module on change and at that period.

Garbage in (a sample the contract's rule rejects: wrong array length, unknown module id,
repeated sequence, stamp outside the tolerance) is reported with what and where and dropped, so
its module goes stale as if silent; NaN and values outside the physical ranges count as unknown
(reported). The node keeps running.

Parameters: pack (demo), config ("" = config/master.yaml if found, else built-in defaults),
rate_hz (10), balancing_period_s (1), battery_state_period_s (0.1).
"""

from __future__ import annotations

import math
import sys
import threading
import time

import numpy as np
from sensor_msgs.msg import BatteryState

from bms_common import topics
from bms_common.component_info import Identity
from bms_common.lifecycle import (
    BmsLifecycleNode,
    LifecycleState,
    TransitionCallbackReturn,
    declare,
    run_main,
    take_pending,
)
from bms_common.pack_config import ConfigError, config_dirs, load_pack_config
from bms_common.plausibility import StampGate, physical_ranges
from bms_common.stamps import to_seconds
from bms_common.timer_watchdog import TimerWatchdog
from bms_interfaces.msg import (
    BalancingCommand,
    CellMeasurements,
    CellStates,
    ComponentInfo,
    ContactorCommand,
    ContactorState,
    CurrentLimits,
    PackMeasurement,
    PackState,
    PowerLimits,
    SafetyStatus,
)
from bms_interfaces.srv import RequestState
from bms_master.aggregation import ModuleTable, aggregate
from bms_master.balancing import BalancingStrategy
from bms_master.current_limits import compute_current_limits, select_horizon
from bms_master.enums import OperatingState, SafetyLevel
from bms_master.master_config import MasterConfig, load_master_config
from bms_master.state_machine import ContactorFeedback, OperatingStateMachine, SafetyInput


def find_master_config(value: str) -> MasterConfig:
    if value:
        return load_master_config(value)
    for base in config_dirs():
        if (base / "master.yaml").is_file():
            return load_master_config(base / "master.yaml")
    return MasterConfig()


class MasterNode(BmsLifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("master", Identity(kind=ComponentInfo.KIND_MASTER,
                                            implementation="bms_master.master_node"), **kwargs)
        self.pack_name = str(declare(self, "pack", "demo"))
        self.config_name = str(declare(self, "config", ""))
        self.rate_hz = float(declare(self, "rate_hz", 10.0))
        self.balancing_period_s = float(declare(self, "balancing_period_s", 1.0))
        # A stand-in for the vehicle controller in simulation: request this state (DRIVE or
        # CHARGE) after activation, retrying once a second until it is accepted once.
        self.startup_request = str(declare(self, "startup_request", "")).upper()
        self.active = False
        self.bad_input = 0
        self.pack_measurement: PackMeasurement | None = None
        self.pack_gate = StampGate()
        self.sop = None
        self.charge_derating = math.nan
        self.discharge_derating = math.nan
        self.feedback = ContactorFeedback()
        self.last_state = OperatingState.STANDBY
        self.safety_input: SafetyInput | None = None
        self.safety_wall_s = -math.inf
        self.cell_states: CellStates | None = None
        self.cell_states_s = -math.inf
        self.last_command: ContactorCommand | None = None
        self.last_balancing: dict[int, list[bool]] = {}
        self.last_balancing_s = -math.inf

    # -- lifecycle ----------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.pack = load_pack_config(self.pack_name)
            self.config = find_master_config(self.config_name)
            ranges = physical_ranges(self.pack)
        except ConfigError as exc:
            self.get_logger().error(str(exc))
            return TransitionCallbackReturn.FAILURE
        pack = self.pack
        self.table = ModuleTable(pack.modules, pack.cells_per_module, pack.sensors_per_module, ranges)
        self.sensor_of_cell = pack.sensor_of_cell()
        self.machine = OperatingStateMachine(self.config.state_machine)
        self.balancer = BalancingStrategy(self.config.balancing(pack.balancing), pack.modules, pack.cells_per_module)
        pub = self.create_lifecycle_publisher
        self.pack_state_pub = pub(PackState, topics.PACK_STATE.name, topics.RELIABLE)
        self.battery_pub = pub(BatteryState, topics.BATTERY_STATE.name, topics.RELIABLE)
        self.limits_pub = pub(CurrentLimits, topics.CURRENT_LIMITS.name, topics.RELIABLE)
        self.command_pub = pub(ContactorCommand, topics.CONTACTOR_COMMAND.name, topics.RELIABLE)
        self.balancing_pub = pub(BalancingCommand, topics.BALANCING_COMMAND.name, topics.BALANCING_COMMAND.qos)
        sub = self.create_subscription
        self.cells_sub = sub(CellMeasurements, topics.CELL_MEASUREMENTS.name, self.on_cells,
                             topics.CELL_MEASUREMENTS.qos)
        # Every input is taken at the start of each step (tick), as the cells are.
        self.inputs = [self.cells_sub,
                       sub(PackMeasurement, topics.PACK_MEASUREMENT.name, self.on_pack, topics.RELIABLE),
                       sub(SafetyStatus, topics.SAFETY_STATUS.name, self.on_safety, topics.LATCHED),
                       sub(ContactorState, topics.CONTACTOR_STATE.name, self.on_contactors, topics.LATCHED),
                       sub(CellStates, topics.CELL_STATES.name, self.on_cell_states, topics.RELIABLE),
                       sub(PowerLimits, topics.POWER_LIMITS.name, self.on_power_limits, topics.RELIABLE)]
        self.create_service(RequestState, topics.REQUEST_STATE, self.on_request)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = True
        self.timer = self.create_timer(1.0 / self.rate_hz, self.tick)
        self.watchdog = TimerWatchdog(self, 1.0 / self.rate_hz, "the master's step (PackState, CurrentLimits)")
        if self.startup_request:
            if self.startup_request not in ("DRIVE", "CHARGE"):
                self.get_logger().error(f"startup_request must be DRIVE, CHARGE or empty, got {self.startup_request!r}")
                return TransitionCallbackReturn.FAILURE
            self.startup_timer = self.create_timer(1.0, self.request_at_startup)
        return super().on_activate(state)

    def request_at_startup(self) -> None:
        result = self.machine.request(OperatingState[self.startup_request], self.now_s())
        if result.accepted:
            self.get_logger().info(f"startup request {self.startup_request}: {result.reason}")
            self.destroy_timer(self.startup_timer)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self.destroy_timer(self.timer)
        return super().on_deactivate(state)

    # -- inputs -------------------------------------------------------------------------------
    def on_cells(self, msg: CellMeasurements) -> None:
        if self.active:
            self.watchdog.input_arrived()
        try:
            implausible = self.table.update(
                msg.module_id, msg.cell_voltages_v, msg.temperatures_degc, self.now_s(),
                stamp_s=to_seconds(msg.header.stamp), sequence=msg.sequence, cell_flags=len(msg.cell_flags),
                wall_s=time.monotonic())
        except ValueError as exc:
            self.bad_input += 1
            self.get_logger().error(f"cell_measurements from {msg.header.frame_id!r} dropped: {exc}",
                                    throttle_duration_sec=5.0)
            return
        if implausible:
            self.bad_input += 1
            self.get_logger().error(f"cell_measurements from {msg.header.frame_id!r}: {implausible}",
                                    throttle_duration_sec=5.0)

    def on_pack(self, msg: PackMeasurement) -> None:
        # The contract's stamp rule (docs/interfaces.md): a sample stamped an hour ahead would
        # count as fresh for ever, e.g. as sampled since a precharge began.
        problem = self.pack_gate.check(to_seconds(msg.header.stamp), self.now_s(), time.monotonic())
        if problem is not None:
            self.bad_input += 1
            self.get_logger().error(f"pack_measurement from {msg.header.frame_id!r}: {problem}: dropped",
                                    throttle_duration_sec=5.0)
            return
        self.pack_measurement = msg
        self.machine.set_pack(msg.pack_voltage_v, msg.dc_link_voltage_v, msg.current_a,
                              stamp_s=to_seconds(msg.header.stamp))

    def on_safety(self, msg: SafetyStatus) -> None:
        level = SafetyLevel(min(msg.level, SafetyLevel.FAULT))
        latched = any(f.latched for f in msg.faults)
        self.safety_input = SafetyInput(level, msg.contactors_allowed, latched)
        self.safety_wall_s = time.monotonic()
        self.machine.set_safety(self.safety_input, self.now_s())
        self.charge_derating, self.discharge_derating = msg.charge_derating, msg.discharge_derating

    def on_contactors(self, msg: ContactorState) -> None:
        self.feedback = ContactorFeedback(
            msg.main_plus_closed, msg.main_minus_closed, msg.precharge_closed, msg.feedback_mismatch)
        self.machine.set_contactor_feedback(self.feedback)

    def on_cell_states(self, msg: CellStates) -> None:
        if len(msg.soc) != self.pack.cell_count or len(msg.capacity_ah) != self.pack.cell_count:
            self.get_logger().error(
                f"cell_states has {len(msg.soc)} cells, pack {self.pack.name} has {self.pack.cell_count}: "
                "ignored", throttle_duration_sec=5.0)
            return
        self.cell_states, self.cell_states_s = msg, self.now_s()

    def on_power_limits(self, msg: PowerLimits) -> None:
        try:
            self.sop = select_horizon(msg.horizons_s, msg.max_charge_current_a, msg.max_discharge_current_a,
                                      self.config.current_limits.sop_horizon_s, self.now_s())
        except ValueError as exc:
            self.get_logger().error(f"power_limits ignored: {exc}", throttle_duration_sec=5.0)

    def on_request(self, request: RequestState.Request, response: RequestState.Response) -> RequestState.Response:
        try:
            wanted = OperatingState(request.state)
        except ValueError:
            response.accepted, response.reason = False, f"unknown state {request.state}"
            response.current_state = int(self.machine.state)
            return response
        result = self.machine.request(wanted, self.now_s())
        response.accepted, response.reason, response.current_state = result.accepted, result.reason, int(result.state)
        self.get_logger().info(f"request {wanted.name}: {'accepted' if result.accepted else 'refused'}: {result.reason}")
        return response

    # -- outputs ------------------------------------------------------------------------------
    def tick(self) -> None:
        self.watchdog.ticked()
        # What has been received counts now: rclpy takes one message per subscription per wait,
        # after due timers, so a backlog of a pack's samples would otherwise be judged later and
        # later, and a master starved of CPU for seconds (a loaded machine) woke to a step that
        # judged the safety status silent while the supervisor's newer ones waited in its queue.
        for subscription in self.inputs:
            take_pending(subscription, subscription.callback)
        now_s = self.now_s()
        stamp = self.get_clock().now().to_msg()
        # A status that is fresh on the wall clock is not silent, however much a faster-than-
        # real-time simulation magnified its delivery delay on the node clock.
        if self.safety_input is not None and \
                time.monotonic() - self.safety_wall_s <= self.config.state_machine.safety_timeout_s:
            self.machine.set_safety(self.safety_input, now_s)
        output = self.machine.step(now_s, wall_s=time.monotonic())
        if output.state != self.last_state:
            text = f"{self.last_state.name} -> {output.state.name}: {output.reason}"
            if output.state == OperatingState.ERROR:
                self.get_logger().error(text)
            else:
                self.get_logger().info(text)
            self.last_state = output.state
        command = ContactorCommand(main_plus=output.command.main_plus, main_minus=output.command.main_minus,
                                   precharge=output.command.precharge)
        command.header.stamp = stamp
        self.command_pub.publish(command)
        self.last_command = command

        agg = aggregate(self.table, now_s, self.config.aggregation.module_freshness_timeout_s, self.sensor_of_cell)
        self.publish_pack_state(agg, output, stamp)
        self.publish_limits(output.state, now_s, stamp)
        self.publish_battery_state(agg, stamp)
        if now_s - self.last_balancing_s >= self.balancing_period_s:
            self.balance(agg, output.state, now_s, stamp)

    def publish_pack_state(self, agg, output, stamp) -> None:
        pm = self.pack_measurement
        msg = PackState(operating_state=int(output.state), state_reason=output.reason)
        msg.header.stamp = stamp
        msg.header.frame_id = self.get_name()
        msg.main_plus_closed = self.feedback.main_plus
        msg.main_minus_closed = self.feedback.main_minus
        msg.precharge_closed = self.feedback.precharge
        msg.pack_voltage_v = pm.pack_voltage_v if pm else math.nan
        msg.pack_current_a = pm.current_a if pm else math.nan
        msg.sum_of_cells_v = agg.sum_of_cells_v
        msg.min_cell_voltage_v, msg.min_cell_voltage_module, msg.min_cell_voltage_cell = _extreme(agg.min_cell_voltage)
        msg.max_cell_voltage_v, msg.max_cell_voltage_module, msg.max_cell_voltage_cell = _extreme(agg.max_cell_voltage)
        msg.mean_cell_voltage_v = agg.mean_cell_voltage_v
        msg.min_temperature_degc, msg.min_temperature_module, msg.min_temperature_sensor = _extreme(agg.min_temperature)
        msg.max_temperature_degc, msg.max_temperature_module, msg.max_temperature_sensor = _extreme(agg.max_temperature)
        msg.mean_temperature_degc = agg.mean_temperature_degc
        msg.module_status = agg.module_status.astype(np.uint8).tobytes()
        self.pack_state_pub.publish(msg)

    def publish_limits(self, state: OperatingState, now_s: float, stamp) -> None:
        result = compute_current_limits(self.config.current_limits, state, self.sop, self.charge_derating,
                                        self.discharge_derating, now_s)
        msg = CurrentLimits(max_charge_current_a=result.max_charge_current_a,
                            max_discharge_current_a=result.max_discharge_current_a,
                            charge_reason=int(result.charge_reason), discharge_reason=int(result.discharge_reason))
        msg.header.stamp = stamp
        self.limits_pub.publish(msg)

    def publish_battery_state(self, agg, stamp) -> None:
        pm = self.pack_measurement
        msg = BatteryState()
        msg.header.stamp = stamp
        msg.header.frame_id = "pack"
        msg.voltage = float(pm.pack_voltage_v) if pm else math.nan
        msg.current = float(pm.current_a) if pm else math.nan
        msg.temperature = float(agg.mean_temperature_degc)
        msg.charge = msg.capacity = math.nan
        msg.design_capacity = float(self.pack.nominal_capacity_ah)
        fresh_states = self.cell_states is not None and self.now_s() - self.cell_states_s < 5.0
        msg.percentage = float(self.cell_states.pack_soc) if fresh_states else math.nan
        msg.power_supply_status = BatteryState.POWER_SUPPLY_STATUS_UNKNOWN
        if pm and not math.isnan(pm.current_a):
            msg.power_supply_status = (BatteryState.POWER_SUPPLY_STATUS_CHARGING if pm.current_a > 0.5 else
                                       BatteryState.POWER_SUPPLY_STATUS_DISCHARGING if pm.current_a < -0.5 else
                                       BatteryState.POWER_SUPPLY_STATUS_NOT_CHARGING)
        msg.power_supply_health = BatteryState.POWER_SUPPLY_HEALTH_UNKNOWN
        msg.power_supply_technology = (BatteryState.POWER_SUPPLY_TECHNOLOGY_LIFE if self.pack.chemistry == "LFP"
                                       else BatteryState.POWER_SUPPLY_TECHNOLOGY_LION)
        msg.present = True
        msg.cell_voltage = agg.cell_voltages_v.astype(np.float32).tolist()
        msg.cell_temperature = agg.cell_temperatures_degc.astype(np.float32).tolist()
        msg.location = self.pack.name
        self.battery_pub.publish(msg)

    def balance(self, agg, state: OperatingState, now_s: float, stamp) -> None:
        pm = self.pack_measurement
        current_a = pm.current_a if pm else math.nan
        soc = capacity = None
        if self.cell_states is not None and now_s - self.cell_states_s < 5.0:
            soc = np.asarray(self.cell_states.soc, dtype=float)
            capacity = np.asarray(self.cell_states.capacity_ah, dtype=float)
        decision = self.balancer.decide(agg.cell_voltages_v, agg.cell_temperatures_degc, state, current_a,
                                        soc=soc, capacity_ah=capacity)
        for module_id, mask in enumerate(decision.masks):
            balance = mask.tolist()
            periodic = now_s - self.last_balancing_s >= self.balancing_period_s
            if balance != self.last_balancing.get(module_id) or periodic:
                msg = BalancingCommand(module_id=module_id, balance=balance)
                msg.header.stamp = stamp
                self.balancing_pub.publish(msg)
                self.last_balancing[module_id] = balance
        self.last_balancing_s = now_s


def _extreme(extreme) -> tuple[float, int, int]:
    if math.isnan(extreme.value):
        return math.nan, 0, 0
    return float(extreme.value), int(extreme.module), int(extreme.index)


def build(stop: threading.Event, cli_args: list[str] | None = None) -> MasterNode:
    """The node, for a composed launch (bms_tools.container): ``cli_args`` are its own
    ``--ros-args``."""
    return MasterNode(cli_args=cli_args)


def main(args: list[str] | None = None) -> int:
    return run_main(MasterNode, args)


if __name__ == "__main__":
    sys.exit(main())
