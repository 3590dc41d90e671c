"""Safety supervisor node: a thin adapter from the contract's topics to SafetySupervisor.

It needs only measurements, never waits on another node, and keeps evaluating when any other
node dies (a silent node becomes a stale-data fault). Every subscription only stores data; the
20 Hz timer evaluates and publishes SafetyStatus, which is also the supervisor's heartbeat, and
the fault log (/bms/fault_log) when it has changed. A timer that stops while samples keep
arriving is reported once (bms_common.timer_watchdog), and again when it runs.

A shutdown raises no fault: once its own process is asked to end, or the lifecycle manager
announces ``shutting down`` (it is deactivating the nodes whose data the supervisor checks), the
supervisor stops evaluating and publishing, so inputs that stop for that reason latch and persist
nothing; the contactor node opens when the heartbeat stops, the safe state. It evaluates again
when the manager reports ``bringing up ...`` or ``active``.

Parameters: pack (demo), limits ("" = the pack's table), state_dir ("" = $BMS_STATE_DIR or
./state; "none" keeps nothing on disk), rate_hz (20), diagnostics_period_s (1), lifecycle_manager
("lifecycle_manager": the manager whose ``~/status`` announces a shutdown; "" = none), autostart.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import String

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
from bms_common.pack_config import ConfigError, load_pack_config
from bms_common.stamps import to_seconds, to_stamp
from bms_common.timer_watchdog import TimerWatchdog
from bms_interfaces.msg import (
    CellMeasurements,
    CellStates,
    ComponentInfo,
    ContactorState,
    FaultLog,
    PackMeasurement,
    PowerLimits,
    SafetyStatus,
)
from bms_interfaces.srv import ResetFaults
from bms_safety.diagnostics import group_summary
from bms_safety.limits import load_limits
from bms_safety.messages import fault_log_message, fault_message
from bms_safety.results import EvaluationResult
from bms_safety.supervisor import SafetySupervisor

DIAGNOSTIC_LEVELS = (DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR, DiagnosticStatus.STALE)


def state_dir_from(value: str) -> Path | None:
    if value == "none":
        return None
    return Path(value or os.environ.get("BMS_STATE_DIR", "state")).expanduser()


class SupervisorNode(BmsLifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("safety_supervisor", Identity(
            kind=ComponentInfo.KIND_SAFETY, implementation="bms_safety.supervisor_node"), **kwargs)
        self.pack_name = str(declare(self, "pack", "demo"))
        self.limits_name = str(declare(self, "limits", ""))
        self.state_dir = state_dir_from(str(declare(self, "state_dir", "")))
        self.rate_hz = float(declare(self, "rate_hz", 20.0))
        self.diagnostics_period_s = float(declare(self, "diagnostics_period_s", 1.0))
        manager = str(declare(self, "lifecycle_manager", "lifecycle_manager"))
        self.system_stopping = False
        if manager:
            self.create_subscription(String, f"{manager}/status", self.on_manager_status, topics.LATCHED)
        self.supervisor: SafetySupervisor | None = None
        self.sequence = 0
        self.log_sequence = 0
        self.published_revision: int | None = None  # of the fault log; None: not sent since activation
        self.last_result: EvaluationResult | None = None
        self._entities: list = []
        self._inputs: list = []
        self.watchdog: TimerWatchdog | None = None  # while active

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            pack = load_pack_config(self.pack_name)
            limits = load_limits(self.limits_name or pack.limits)
        except ConfigError as exc:
            self.get_logger().error(str(exc))
            return TransitionCallbackReturn.FAILURE
        self.supervisor = SafetySupervisor.from_pack(pack, self.state_dir, limits, now_s=self.now_s())
        self.timeouts = limits.timeouts
        # Wall-clock arrival times: stale means old on the node clock *and* on the wall clock.
        self.module_wall_s = np.full(pack.modules, -np.inf)
        self.pack_wall_s = self.estimator_wall_s = -np.inf
        for note in self.supervisor.notes:
            self.get_logger().warning(note)
        self.status_pub = self.create_lifecycle_publisher(SafetyStatus, topics.SAFETY_STATUS.name, topics.LATCHED)
        self.diag_pub = self.create_lifecycle_publisher(DiagnosticArray, topics.DIAGNOSTICS.name, topics.DEFAULT)
        self.log_pub = self.create_lifecycle_publisher(FaultLog, topics.FAULT_LOG.name, topics.FAULT_LOG.qos)
        sub = self.create_subscription
        self._inputs = [
            sub(CellMeasurements, topics.CELL_MEASUREMENTS.name, self.on_cells, topics.CELL_MEASUREMENTS.qos),
            sub(PackMeasurement, topics.PACK_MEASUREMENT.name, self.on_pack, topics.RELIABLE),
            sub(ContactorState, topics.CONTACTOR_STATE.name, self.on_contactors, topics.LATCHED),
            sub(CellStates, topics.CELL_STATES.name, self.on_estimator, topics.RELIABLE),
            sub(PowerLimits, topics.POWER_LIMITS.name, self.on_estimator, topics.RELIABLE),
        ]
        self._entities = [*self._inputs, self.create_service(ResetFaults, topics.RESET_FAULTS, self.on_reset)]
        self.get_logger().info(
            f"pack {pack.name}: {pack.modules} x {pack.cells_per_module} {pack.chemistry}, limits "
            f"{self.limits_name or pack.limits}, state in {self.state_dir}")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.timer = self.create_timer(1.0 / self.rate_hz, self.tick)
        self.watchdog = TimerWatchdog(self, 1.0 / self.rate_hz, "the supervisor's evaluation (SafetyStatus)")
        self.diag_timer = self.create_timer(self.diagnostics_period_s, self.publish_diagnostics)
        self.published_revision = None  # the first tick sends the log
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.watchdog = None
        self.destroy_timer(self.timer)
        self.destroy_timer(self.diag_timer)
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.supervisor is not None:
            self.supervisor.save(self.now_s())
        for entity in self._entities:
            if hasattr(entity, "srv_type"):
                self.destroy_service(entity)
            else:
                self.destroy_subscription(entity)
        self.destroy_lifecycle_publisher(self.status_pub)
        self.destroy_lifecycle_publisher(self.diag_pub)
        self.destroy_lifecycle_publisher(self.log_pub)
        self._entities, self._inputs = [], []
        return TransitionCallbackReturn.SUCCESS

    def before_exit(self) -> None:
        if self.supervisor is not None:
            self.supervisor.save(self.now_s())

    # -- inputs: store only -------------------------------------------------------------------
    def on_cells(self, msg: CellMeasurements) -> None:
        # Only a usable sample keeps its module fresh on the wall clock: a module whose samples
        # are all rejected goes stale exactly as a silent one (docs/safety.md, "No blind spots").
        if self.watchdog is not None:
            self.watchdog.input_arrived()
        wall_s = time.monotonic()
        if self.supervisor.update_module(
                msg.module_id, to_seconds(msg.header.stamp), msg.cell_voltages_v, msg.temperatures_degc,
                msg.sequence, received_s=self.now_s(), cell_flags=bytes(msg.cell_flags),
                module_flags=msg.module_flags, received_wall_s=wall_s):
            self.module_wall_s[msg.module_id] = wall_s

    def on_pack(self, msg: PackMeasurement) -> None:
        if self.watchdog is not None:
            self.watchdog.input_arrived()
        # As for modules: only a usable sample (its stamp within the contract's tolerance) keeps
        # the current sensor fresh on the wall clock.
        wall_s = time.monotonic()
        if self.supervisor.update_pack(
                to_seconds(msg.header.stamp), msg.current_a, msg.pack_voltage_v, msg.dc_link_voltage_v,
                msg.insulation_resistance_ohm, msg.hvil_closed, received_s=self.now_s(), received_wall_s=wall_s):
            self.pack_wall_s = wall_s

    def on_contactors(self, msg: ContactorState) -> None:
        self.supervisor.update_contactors(
            to_seconds(msg.header.stamp),
            (msg.main_plus_commanded, msg.main_minus_commanded, msg.precharge_commanded),
            (msg.main_plus_closed, msg.main_minus_closed, msg.precharge_closed),
            reported_mismatch=msg.feedback_mismatch, received_s=self.now_s())

    def on_estimator(self, msg: CellStates | PowerLimits) -> None:
        self.estimator_wall_s = time.monotonic()
        self.supervisor.update_estimator(to_seconds(msg.header.stamp), received_s=self.now_s())

    def on_manager_status(self, msg: String) -> None:
        if msg.data == "shutting down" and not self.system_stopping:
            self.get_logger().info("the lifecycle manager is shutting the system down: evaluation stops")
            self.system_stopping = True
        elif msg.data == "active" or msg.data.startswith("bringing up"):
            self.system_stopping = False

    def on_reset(self, request: ResetFaults.Request, response: ResetFaults.Response) -> ResetFaults.Response:
        result = self.supervisor.reset(self.now_s())
        response.success, response.reason = result.success, result.reason
        response.cleared, response.refused = list(result.cleared), list(result.refused)
        self.get_logger().info(f"reset_faults: {result.reason}")
        return response

    # -- outputs ------------------------------------------------------------------------------
    def tick(self) -> None:
        self.watchdog.ticked()
        if self.stopping or self.system_stopping:
            return  # inputs stop because the system goes down: nothing to raise or persist
        # Evaluate on everything received so far: a sample that arrived together with the clock
        # tick is not left queued behind this timer (bms_common.lifecycle.take_pending).
        for subscription in self._inputs:
            take_pending(subscription, subscription.callback)
        now_s = self.now_s()
        wall_s, timeouts = time.monotonic(), self.timeouts
        self.supervisor.evaluator.count_as_received(
            now_s, wall_s - self.module_wall_s <= timeouts.module_stale_s,
            wall_s - self.pack_wall_s <= timeouts.current_sensor_stale_s,
            wall_s - self.estimator_wall_s <= timeouts.estimator_loss_s)
        result = self.supervisor.evaluate(now_s, wall_s)
        for fault in result.raised:
            text = (f"{fault.code} level {int(fault.level)} module {fault.module_id} cell {fault.cell}: "
                    f"{fault.description}")
            # rclpy ties a severity to each call site: one call per severity.
            if fault.level >= SafetyStatus.LEVEL_FAULT:
                self.get_logger().error(text)
            else:
                self.get_logger().warning(text)
        if self.supervisor.persist_error:
            self.get_logger().error(self.supervisor.persist_error, throttle_duration_sec=10.0)
        self.last_result = result
        msg = SafetyStatus(
            sequence=self.sequence, level=int(result.level), contactors_allowed=result.contactors_allowed,
            charge_derating=result.charge_derating, discharge_derating=result.discharge_derating,
        )
        msg.header.stamp = to_stamp(now_s)
        msg.header.frame_id = self.get_name()
        msg.faults = [fault_message(f) for f in result.faults]
        self.status_pub.publish(msg)
        self.sequence += 1
        if self.supervisor.revision != self.published_revision:
            self.publish_fault_log(now_s)

    def publish_fault_log(self, now_s: float) -> None:
        """The persisted log and the latched faults, on activation and after every change."""
        supervisor = self.supervisor
        self.log_pub.publish(fault_log_message(supervisor.state, supervisor.evaluator.latched_faults(), now_s,
                                               self.log_sequence, self.get_name()))
        self.log_sequence += 1
        self.published_revision = supervisor.revision

    def publish_diagnostics(self) -> None:
        if self.last_result is None:
            return
        array = DiagnosticArray()
        array.header.stamp = to_stamp(self.now_s())
        for group in group_summary(self.last_result):
            status = DiagnosticStatus(
                level=DIAGNOSTIC_LEVELS[group.level], name=f"bms/safety/{group.group}",
                message=group.message, hardware_id=self.get_fully_qualified_name())
            status.values = [KeyValue(key="faults", value=str(len(group.faults)))]
            array.status.append(status)
        self.diag_pub.publish(array)


def main(args: list[str] | None = None) -> int:
    return run_main(SupervisorNode, args)


if __name__ == "__main__":
    sys.exit(main())
