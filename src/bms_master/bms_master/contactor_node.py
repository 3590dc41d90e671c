"""Contactor node: the independent second path from the safety supervisor to the contactors.

It executes the master's ContactorCommand only while the latest SafetyStatus is fresh and allows
it, and opens every contactor at once on FAULT or when the supervisor falls silent, whatever the
master says (bms_master.contactor_logic). It reacts on every SafetyStatus and command as it
arrives, and checks freshness and feedback on a timer. ContactorState is published on change and
at ``publish_period_s``.

Parameters: backend (sim; a name in the entry point group ``bms_master.contactor_backends``,
whose factory takes this node and returns a ContactorBackend), safety_timeout_s (0.5), mismatch_debounce_s (0.1), check_period_s
(0.02), publish_period_s (0.1), silence_wall_timeout_s (3.0), autostart. Freshness counts on the
node's clock (sim time in simulation) with a grace of ``safety_timeout_s`` on the wall clock, so a
simulation that runs faster than real time does not open the pack on delivery delays that the
speed-up magnifies. A status silent for ``silence_wall_timeout_s`` of wall time opens the pack
whatever the node's clock says: a node on simulated time that is cut off from the supervisor is
cut off from /clock too, its clock stands still and would never call the status old (checked on a
wall-clock timer; longer than the plant's longest hold for a lagging node, 2 s, so pacing never
trips it). A check timer on the node clock that stops while SafetyStatus and commands keep
arriving is reported once (bms_common.timer_watchdog); the wall-clock timer keeps checking.
"""

from __future__ import annotations

import sys
import time
from importlib import metadata

from rclpy.clock import Clock, ClockType

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
from bms_common.timer_watchdog import TimerWatchdog
from bms_interfaces.msg import ComponentInfo, ContactorCommand, ContactorState, SafetyStatus
from bms_master.contactor_hw import ContactorBackend
from bms_master.contactor_logic import ContactorLogic, ContactorLogicConfig, ContactorLogicOutput
from bms_master.enums import SafetyLevel
from bms_master.state_machine import ContactorSet

BACKEND_GROUP = "bms_master.contactor_backends"


class SimulatedContactors(ContactorBackend):
    """Drives the simulated plant's contactors through /sim topics (docs/simulation.md)."""

    def __init__(self, node: BmsLifecycleNode) -> None:
        self._coils = node.create_publisher(ContactorCommand, topics.SIM_CONTACTOR_COILS, topics.RELIABLE)
        self._feedback: ContactorSet | None = None
        # The coils written last and the coils the plant reports applying: a coil the plant has not
        # applied yet (the command is still on its way, or the plant lags on a loaded machine) is no
        # evidence of a welded contactor.
        self._written: ContactorSet | None = None
        self._applied: ContactorSet | None = None
        self._subscription = node.create_subscription(
            ContactorState, topics.SIM_CONTACTOR_FEEDBACK, self._on_feedback, topics.LATCHED)

    def _on_feedback(self, msg: ContactorState) -> None:
        self._feedback = ContactorSet(msg.main_plus_closed, msg.main_minus_closed, msg.precharge_closed)
        self._applied = ContactorSet(msg.main_plus_commanded, msg.main_minus_commanded, msg.precharge_commanded)

    def write(self, coils: ContactorSet) -> None:
        self._written = coils
        self._coils.publish(ContactorCommand(
            main_plus=coils.main_plus, main_minus=coils.main_minus, precharge=coils.precharge))

    def read(self) -> ContactorSet | None:
        take_pending(self._subscription, self._on_feedback)  # the newest feedback received counts
        return self._feedback

    def not_yet_applied(self) -> ContactorSet | None:
        take_pending(self._subscription, self._on_feedback)
        if self._written is None or self._applied is None:
            return None
        w, a = self._written, self._applied
        return ContactorSet(w.main_plus != a.main_plus, w.main_minus != a.main_minus, w.precharge != a.precharge)

    @property
    def hardware_id(self) -> str:
        return "sim"


class ContactorNode(BmsLifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("contactor", Identity(
            kind=ComponentInfo.KIND_CONTACTOR, implementation="bms_master.contactor_node"), **kwargs)
        self.backend_name = str(declare(self, "backend", "sim"))
        self.config = ContactorLogicConfig(
            safety_timeout_s=float(declare(self, "safety_timeout_s", 0.5)),
            mismatch_debounce_s=float(declare(self, "mismatch_debounce_s", 0.1)))
        self.check_period_s = float(declare(self, "check_period_s", 0.02))
        self.publish_period_s = float(declare(self, "publish_period_s", 0.1))
        self.silence_wall_timeout_s = float(declare(self, "silence_wall_timeout_s", 3.0))
        self.logic = ContactorLogic(self.config)
        self.backend: ContactorBackend | None = None
        self.active = False
        self.safety_wall_s = -float("inf")
        self.last_output: ContactorLogicOutput | None = None
        self.last_publish_s = -float("inf")
        self.last_publish_wall_s = -float("inf")
        self.last_feedback: ContactorSet | None = None

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        points = {point.name: point for point in metadata.entry_points(group=BACKEND_GROUP)}
        if self.backend_name not in points:
            self.get_logger().error(
                f"no contactor backend '{self.backend_name}' in entry point group {BACKEND_GROUP} "
                f"(installed: {', '.join(sorted(points)) or 'none'})")
            return TransitionCallbackReturn.FAILURE
        try:
            self.backend = points[self.backend_name].load()(self)
        except Exception as exc:  # noqa: BLE001 - a driver that cannot start fails the transition
            self.get_logger().error(f"contactor backend '{self.backend_name}' did not start: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.state_pub = self.create_lifecycle_publisher(ContactorState, topics.CONTACTOR_STATE.name, topics.LATCHED)
        self.inputs = [
            (self.create_subscription(ContactorCommand, topics.CONTACTOR_COMMAND.name, self.on_command,
                                      topics.RELIABLE), self.on_command),
            (self.create_subscription(SafetyStatus, topics.SAFETY_STATUS.name, self.on_safety, topics.LATCHED),
             self.on_safety)]
        self.backend.write(ContactorSet())  # a (re)started driver begins with every coil released
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = True
        self.timer = self.create_timer(self.check_period_s, self.on_check_timer)
        # Watches the node-clock timer: while it stops, the wall-clock one below still checks.
        self.watchdog = TimerWatchdog(
            self, self.check_period_s, "the contactor node's check on the node clock",
            consequence="freshness and feedback are checked on the wall-clock timer only")
        self.wall_timer = self.create_timer(self.check_period_s, self.on_wall_timer,
                                            clock=Clock(clock_type=ClockType.STEADY_TIME))
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self.destroy_timer(self.timer)
        self.destroy_timer(self.wall_timer)
        self.backend.write(ContactorSet())  # an inactive driver holds nothing closed
        return super().on_deactivate(state)

    def on_command(self, msg: ContactorCommand) -> None:
        if self.active:
            self.watchdog.input_arrived()
        self.logic.set_command(ContactorSet(msg.main_plus, msg.main_minus, msg.precharge))
        self.update()

    def on_safety(self, msg: SafetyStatus) -> None:
        if self.active:
            self.watchdog.input_arrived()
        self.safety_wall_s = time.monotonic()
        self.logic.set_safety(SafetyLevel(min(msg.level, SafetyLevel.FAULT)), msg.contactors_allowed, self.now_s())
        self.update()

    def take_inputs(self) -> None:
        """What has been received counts before a check: a node starved of CPU (a loaded machine)
        must not wake to a timer that judges the safety status silent while newer ones wait in
        its queue (rclpy runs due timers before subscriptions)."""
        for subscription, callback in self.inputs:
            take_pending(subscription, callback)

    def on_check_timer(self) -> None:
        self.watchdog.ticked()
        self.take_inputs()
        self.update()

    def on_wall_timer(self) -> None:
        self.take_inputs()
        self.update()

    def update(self) -> None:
        if not self.active:
            return
        now_s = self.now_s()
        wall_s = time.monotonic()
        silent_wall_s = wall_s - self.safety_wall_s
        grace = silent_wall_s <= self.config.safety_timeout_s
        feedback = self.backend.read()
        output = self.logic.step(now_s, feedback, delivery_grace=grace, wall_s=wall_s,
                                 silent=silent_wall_s > self.silence_wall_timeout_s,
                                 not_yet_applied=self.backend.not_yet_applied())
        previous = self.last_output
        if previous is None or output.coils != previous.coils:
            self.backend.write(output.coils)
            if output.opened_by_safety and previous is not None:
                self.get_logger().warning(f"contactors held open by the safety path: {output.open_reason.name}")
        self.last_output = output
        # Published at every change, the feedback's included (ContactorState carries it: a feedback
        # that has followed its coil must not wait for the next period, or the supervisor judges
        # the old one a weld), and every period on either clock (a node whose simulated clock
        # stalls on a loaded machine still reports).
        if previous is None or output != previous or feedback != self.last_feedback \
                or now_s - self.last_publish_s >= self.publish_period_s \
                or wall_s - self.last_publish_wall_s >= self.publish_period_s:
            self.last_feedback = feedback
            self.publish(output, now_s)
            self.last_publish_wall_s = wall_s

    def publish(self, output: ContactorLogicOutput, now_s: float) -> None:
        feedback = self.backend.read() or ContactorSet()
        msg = ContactorState(
            main_plus_commanded=output.coils.main_plus, main_minus_commanded=output.coils.main_minus,
            precharge_commanded=output.coils.precharge, main_plus_closed=feedback.main_plus,
            main_minus_closed=feedback.main_minus, precharge_closed=feedback.precharge,
            feedback_mismatch=output.feedback_mismatch, opened_by_safety=output.opened_by_safety,
            open_reason=int(output.open_reason))
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.get_name()
        self.state_pub.publish(msg)
        self.last_publish_s = now_s


def main(args: list[str] | None = None) -> int:
    return run_main(ContactorNode, args)


if __name__ == "__main__":
    sys.exit(main())
