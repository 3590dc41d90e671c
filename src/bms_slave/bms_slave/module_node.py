"""Slave (module) node: one per module, publishing its AFE's samples as CellMeasurements.

The node knows nothing of the backend behind :class:`~bms_slave.afe.AfeBackend`: simulated,
CAN, or another supplier's board. It samples on its own timer, or, inside the simulation host,
when the host's deterministic step calls :meth:`ModuleNode.sample`.

Failure behaviour: an AFE that does not answer (AfeCommunicationError) produces no message for
that sample, so subscribers see the data stop, exactly as with a dead board; the node logs it
(throttled) and keeps sampling. Bleed switches fail safe (docs/master.md, "Balancing"): a BalancingCommand
of the wrong length is reported and opens them, and they open by themselves when no command
arrived for ``balancing_timeout_s`` (5 s) or when the node is deactivated: a silent or confused
master must not leave bleed resistors on. The timeout runs on ``clock`` (the host's simulated
time inside sim_host), else on the node's clock. A self-timed node whose timer stops while
BalancingCommands (any module's) keep arriving says so once, and again when it samples again
(bms_common.timer_watchdog).

``stamp_offset_s`` (0.0) is added to every sample's stamp: a board whose clock runs ahead
(positive) or behind, for testing what the receivers do with it (docs/deployment.md, "Clocks");
in simulation every stamp comes from /clock, so the machine's clock is never touched.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from bms_common import topics
from bms_common.component_info import Identity
from bms_common.lifecycle import BmsLifecycleNode, LifecycleState, TransitionCallbackReturn, declare
from bms_common.stamps import to_stamp
from bms_common.timer_watchdog import TimerWatchdog
from bms_interfaces.msg import BalancingCommand, CellMeasurements, ComponentInfo
from bms_slave.afe import AfeBackend, AfeCommunicationError


class ModuleNode(BmsLifecycleNode):
    def __init__(self, module_id: int, backend: AfeBackend, *, self_timed: bool = True,
                 namespace: str = "/bms", clock: Callable[[], float] | None = None, **kwargs) -> None:
        hardware_id = backend.diagnostics().hardware_id
        super().__init__(
            f"module_{module_id}",
            Identity(kind=ComponentInfo.KIND_SLAVE, implementation="bms_slave.module_node",
                     hardware_id=hardware_id),
            namespace=namespace, **kwargs,
        )
        self.module_id = module_id
        self.backend = backend
        self.self_timed = self_timed
        self.clock_s = clock or self.now_s
        self.sample_period_s = float(declare(self, "sample_period_s", 0.1))
        self.balancing_timeout_s = float(declare(self, "balancing_timeout_s", 5.0))
        self.stamp_offset_s = float(declare(self, "stamp_offset_s", 0.0))
        self.sequence = 0
        self.active = False
        self.comm_errors = 0
        self.last_balancing_s = -math.inf
        self.balancing_mask = np.zeros(backend.cell_count, dtype=bool)
        self._publisher = None
        self._timer = None
        self._watchdog: TimerWatchdog | None = None  # self-timed and active only
        self._subscription = None

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.sample_period_s <= 0:
            self.get_logger().error(f"sample_period_s must be > 0, got {self.sample_period_s}")
            return TransitionCallbackReturn.FAILURE
        self._publisher = self.create_lifecycle_publisher(
            CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.CELL_MEASUREMENTS.qos)
        self._subscription = self.create_subscription(
            BalancingCommand, topics.BALANCING_COMMAND.name, self.on_balancing, topics.BALANCING_COMMAND.qos)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = True
        if self.self_timed:
            self._timer = self.create_timer(self.sample_period_s, self.sample_now)
            self._watchdog = TimerWatchdog(self, self.sample_period_s,
                                           f"module {self.module_id}'s sampling (CellMeasurements)")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self._watchdog = None
        self._stop_balancing()
        if self._timer is not None:
            self.destroy_timer(self._timer)
            self._timer = None
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._subscription is not None:
            self.destroy_subscription(self._subscription)
        if self._publisher is not None:
            self.destroy_lifecycle_publisher(self._publisher)
        self._publisher = self._subscription = None
        return TransitionCallbackReturn.SUCCESS

    def on_balancing(self, msg: BalancingCommand) -> None:
        # Any module's command is evidence that time goes on (the master sends each at 1 Hz).
        if self._watchdog is not None:
            self._watchdog.input_arrived()
        if msg.module_id != self.module_id or not self.active:
            return
        if len(msg.balance) != self.backend.cell_count:
            self.get_logger().error(
                f"balancing_command for module {self.module_id} has {len(msg.balance)} cells, "
                f"this module has {self.backend.cell_count}: bleed switches opened"
            )
            self._stop_balancing()
            return
        self.balancing_mask = np.asarray(msg.balance, dtype=bool)
        self.last_balancing_s = self.clock_s()
        self.backend.set_balancing(self.balancing_mask)

    def _stop_balancing(self) -> None:
        if self.balancing_mask.any():
            self.balancing_mask[:] = False
            self.backend.set_balancing(self.balancing_mask)

    def sample_now(self) -> None:
        if self._watchdog is not None:
            self._watchdog.ticked()
        self.sample(self.now_s())

    def sample(self, now_s: float) -> None:
        """Read the AFE once and publish the sample (nothing when the AFE does not answer)."""
        if not self.active:
            return
        if self.balancing_mask.any() and now_s - self.last_balancing_s > self.balancing_timeout_s:
            self.get_logger().warning(
                f"no balancing_command for {self.balancing_timeout_s:g} s: bleed switches opened")
            self._stop_balancing()
        try:
            reading = self.backend.read()
        except AfeCommunicationError as exc:
            self.comm_errors += 1
            self.get_logger().error(f"module {self.module_id}: AFE not answering: {exc}",
                                    throttle_duration_sec=5.0)
            return
        msg = CellMeasurements()
        msg.header.stamp = to_stamp(reading.stamp_s + self.stamp_offset_s)
        msg.header.frame_id = f"module_{self.module_id}"
        msg.module_id = self.module_id
        msg.sequence = self.sequence
        msg.cell_voltages_v = reading.cell_voltage_v.astype(np.float32, copy=False)
        msg.temperatures_degc = reading.temperature_degc.astype(np.float32, copy=False)
        msg.balancing = reading.balancing.tolist()
        msg.cell_flags = reading.cell_flags.astype(np.uint8, copy=False).tobytes()
        msg.module_flags = int(reading.module_flags)
        self._publisher.publish(msg)
        self.sequence += 1
