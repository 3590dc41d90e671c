"""Operating state machine of the master: STANDBY, PRECHARGE, DRIVE, CHARGE, ERROR.

Driven only by explicit inputs and an explicit ``now_s`` (the node's ROS clock, sim time in
simulation), so every transition is unit-testable without ROS. The node feeds the latest
SafetyStatus, ContactorState and PackMeasurement through the ``set_*`` methods, forwards
RequestState calls to :meth:`request` and publishes what :meth:`step` returns. See docs/master.md
for the diagram and the rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .enums import OperatingState, SafetyLevel

REQUESTABLE = (OperatingState.STANDBY, OperatingState.DRIVE, OperatingState.CHARGE)


@dataclass(frozen=True)
class ContactorSet:
    """Desired (or actual) state of the three contactors; True = closed."""

    main_plus: bool = False
    main_minus: bool = False
    precharge: bool = False


ALL_OPEN = ContactorSet()
PRECHARGING = ContactorSet(main_minus=True, precharge=True)
PRECHARGE_OVERLAP = ContactorSet(main_plus=True, main_minus=True, precharge=True)
MAINS_CLOSED = ContactorSet(main_plus=True, main_minus=True)


@dataclass(frozen=True)
class StateMachineConfig:
    # DC link must reach this fraction of the pack voltage before main+ closes.
    precharge_voltage_ratio: float = 0.95
    precharge_timeout_s: float = 3.0
    # Minimum time main+ and the precharge relay are closed together, so the DC link never floats.
    precharge_overlap_s: float = 0.05
    # Contactor feedback must follow a close command (or stay closed) within this time.
    contactor_confirm_timeout_s: float = 0.5
    # Opening on a STANDBY request waits until |current| is below this, at most open_max_delay_s.
    open_current_threshold_a: float = 5.0
    open_max_delay_s: float = 2.0
    # DRIVE <-> CHARGE without opening is allowed only while |current| is below this.
    mode_switch_current_a: float = 2.0
    # A SafetyStatus older than this counts as a silent supervisor.
    safety_timeout_s: float = 0.5


@dataclass(frozen=True)
class SafetyInput:
    """The parts of SafetyStatus the state machine needs."""

    level: SafetyLevel
    contactors_allowed: bool
    latched_faults: bool


@dataclass(frozen=True)
class ContactorFeedback:
    """The parts of ContactorState the state machine needs (auxiliary-contact feedback)."""

    main_plus: bool = False
    main_minus: bool = False
    precharge: bool = False
    feedback_mismatch: bool = False


@dataclass(frozen=True)
class RequestResult:
    accepted: bool
    reason: str
    state: OperatingState


@dataclass(frozen=True)
class StateMachineOutput:
    state: OperatingState
    reason: str
    command: ContactorSet


class OperatingStateMachine:
    def __init__(self, config: StateMachineConfig | None = None) -> None:
        self.config = config if config is not None else StateMachineConfig()
        self.state = OperatingState.STANDBY
        self.reason = "startup"
        self.command = ALL_OPEN
        self._safety: SafetyInput | None = None
        self._safety_time_s = -math.inf
        self._feedback = ContactorFeedback()
        self._pack_voltage_v = math.nan
        self._dc_link_voltage_v = math.nan
        self._current_a = math.nan
        # DRIVE or CHARGE: where PRECHARGE leads.
        self._target = OperatingState.STANDBY
        self._precharge_start_s = math.nan
        self._precharge_start_wall_s = math.nan
        self._pack_stamp_s = math.nan
        self._main_plus_command_s = math.nan
        self._opening_since_s: float | None = None
        self._mains_lost_since_s: float | None = None
        self._mains_lost_since_wall_s = math.nan
        self._main_plus_command_wall_s = math.nan
        self._wall_s = 0.0

    # Inputs -------------------------------------------------------------------------------

    def set_safety(self, safety: SafetyInput, now_s: float) -> None:
        self._safety = safety
        self._safety_time_s = now_s

    def set_contactor_feedback(self, feedback: ContactorFeedback) -> None:
        self._feedback = feedback

    def set_pack(self, pack_voltage_v: float, dc_link_voltage_v: float, current_a: float,
                 stamp_s: float = math.nan) -> None:
        """Latest PackMeasurement values; NaN where unknown. ``stamp_s`` is the sampling instant
        (NaN: unknown, taken as current)."""
        self._pack_voltage_v = pack_voltage_v
        self._dc_link_voltage_v = dc_link_voltage_v
        self._current_a = current_a
        self._pack_stamp_s = stamp_s

    # Requests -----------------------------------------------------------------------------

    def request(self, target: OperatingState | int, now_s: float) -> RequestResult:
        """Handle a RequestState call; transitions take effect at once."""
        if target not in REQUESTABLE:
            return self._answer(False, f"state {int(target)} cannot be requested: ask for STANDBY, DRIVE or CHARGE")
        target = OperatingState(target)
        if self.state is OperatingState.ERROR:
            return self._request_from_error(target, now_s)
        if target is OperatingState.STANDBY:
            return self._request_standby(now_s)
        if self.state is target:
            return self._answer(True, f"already in {target.name}")
        if self.state is OperatingState.PRECHARGE:
            self._target = target
            return self._answer(True, f"precharging, then {target.name}")
        if self.state is OperatingState.STANDBY:
            return self._request_close(target, now_s)
        return self._request_mode_switch(target, now_s)

    def _request_from_error(self, target: OperatingState, now_s: float) -> RequestResult:
        if target is not OperatingState.STANDBY:
            return self._answer(False, f"in ERROR ({self.reason}): reset faults, then request STANDBY")
        blockers = []
        if not self._safety_fresh(now_s):
            blockers.append("no fresh safety status")
        elif self._safety is not None:
            if self._safety.latched_faults:
                blockers.append("latched faults present (call reset_faults)")
            if self._safety.level > SafetyLevel.WARNING:
                blockers.append(f"safety level is {self._safety.level.name}")
        if self._feedback.feedback_mismatch:
            blockers.append("contactor feedback mismatch")
        if blockers:
            return self._answer(False, "ERROR kept: " + "; ".join(blockers))
        self._enter(OperatingState.STANDBY, "faults reset and STANDBY requested", ALL_OPEN)
        return self._answer(True, "left ERROR for STANDBY")

    def _request_standby(self, now_s: float) -> RequestResult:
        if self.state is OperatingState.STANDBY:
            return self._answer(True, "already in STANDBY")
        if self.state is OperatingState.PRECHARGE:
            # Current limits are zero during precharge, so only the precharge current flows.
            self._enter(OperatingState.STANDBY, "precharge aborted by request", ALL_OPEN)
            return self._answer(True, "precharge aborted, contactors open")
        # The command stays closed until the load has ramped down (see _step_standby); current
        # limits are already zero in STANDBY.
        self._enter(OperatingState.STANDBY, f"STANDBY requested in {self.state.name}", self.command)
        self._opening_since_s = now_s
        self._step_standby(now_s)
        return self._answer(True, "opening contactors once the current is low")

    def _request_close(self, target: OperatingState, now_s: float) -> RequestResult:
        if self._opening_since_s is not None:
            return self._answer(False, "contactors are still opening: retry when they are open")
        if not self._safety_fresh(now_s):
            return self._answer(False, "no fresh safety status: closing not allowed")
        assert self._safety is not None
        if not self._safety.contactors_allowed:
            return self._answer(False, f"safety does not allow closing (level {self._safety.level.name})")
        if not (math.isfinite(self._pack_voltage_v) and self._pack_voltage_v > 0.0):
            return self._answer(False, "pack voltage unknown: cannot judge the precharge")
        self._target = target
        self._precharge_start_s = now_s
        self._precharge_start_wall_s = math.nan  # taken at the first step, which has the wall clock
        self._main_plus_command_s = math.nan
        self._enter(OperatingState.PRECHARGE, f"precharge for {target.name}", PRECHARGING)
        return self._answer(True, f"precharge started, then {target.name}")

    def _request_mode_switch(self, target: OperatingState, now_s: float) -> RequestResult:
        limit_a = self.config.mode_switch_current_a
        if not abs(self._current_a) <= limit_a:
            return self._answer(
                False, f"pack current {self._current_a:.1f} A is above {limit_a:g} A: "
                       "reduce the current or go via STANDBY")
        self._enter(target, f"switched from {self.state.name} at low current", MAINS_CLOSED)
        return self._answer(True, f"switched to {target.name}")

    # Cyclic evaluation --------------------------------------------------------------------

    def step(self, now_s: float, wall_s: float | None = None) -> StateMachineOutput:
        """Evaluate timeouts and inputs at now_s; returns the state and contactor command.

        ``wall_s`` (a monotonic wall clock), when given, must also show a contactor-feedback
        timeout elapsed: feedback travels through other processes, and a simulation running
        faster than real time magnifies that delivery time on the node clock.
        """
        self._wall_s = now_s if wall_s is None else wall_s
        if self.state is not OperatingState.ERROR:
            fault = self._fault_reason(now_s)
            if fault is not None:
                self._enter(OperatingState.ERROR, fault, ALL_OPEN)
        if self.state is OperatingState.STANDBY:
            self._step_standby(now_s)
        elif self.state is OperatingState.PRECHARGE:
            self._step_precharge(now_s)
        elif self.state in (OperatingState.DRIVE, OperatingState.CHARGE):
            self._step_closed(now_s)
        return StateMachineOutput(self.state, self.reason, self.command)

    def _fault_reason(self, now_s: float) -> str | None:
        """Why the pack must go to ERROR now, or None."""
        if self._feedback.feedback_mismatch:
            return "contactor feedback mismatch"
        if self._safety_fresh(now_s):
            assert self._safety is not None
            if self._safety.level is SafetyLevel.FAULT:
                return "safety FAULT"
        elif self.command != ALL_OPEN:
            # The contactor node opens on its own when the supervisor is silent; follow it.
            return "safety status silent while contactors closed"
        return None

    def _step_standby(self, now_s: float) -> None:
        if self._opening_since_s is None:
            return
        low_current = abs(self._current_a) <= self.config.open_current_threshold_a
        if low_current or now_s - self._opening_since_s >= self.config.open_max_delay_s:
            self.command = ALL_OPEN
            self._opening_since_s = None

    def _step_precharge(self, now_s: float) -> None:
        cfg = self.config
        assert self._safety is not None
        if math.isnan(self._precharge_start_wall_s):
            self._precharge_start_wall_s = self._wall_s
        if not self._safety.contactors_allowed:
            self._enter(OperatingState.STANDBY,
                        f"precharge aborted: safety no longer allows closing (level {self._safety.level.name})",
                        ALL_OPEN)
            return
        if math.isnan(self._main_plus_command_s):
            # Only a DC-link sample taken after the precharge began tells whether it finished: an
            # older one may predate a short that has since emptied the DC link.
            sampled_since_start = not self._pack_stamp_s < self._precharge_start_s
            if sampled_since_start and self._dc_link_voltage_v >= cfg.precharge_voltage_ratio * self._pack_voltage_v:
                self.command = PRECHARGE_OVERLAP
                self._main_plus_command_s = now_s
                self._main_plus_command_wall_s = self._wall_s
            elif now_s - self._precharge_start_s > cfg.precharge_timeout_s and \
                    self._wall_s - self._precharge_start_wall_s > cfg.precharge_timeout_s:
                # On the wall clock too: a command that takes a while to reach the contactor node
                # (DDS matching at start-up, a loaded machine) is magnified by a simulation's speed.
                self._enter(OperatingState.ERROR,
                            f"precharge timeout: DC link {self._dc_link_voltage_v:.1f} V below "
                            f"{cfg.precharge_voltage_ratio:.0%} of pack {self._pack_voltage_v:.1f} V "
                            f"after {cfg.precharge_timeout_s:g} s", ALL_OPEN)
            return
        since_s = now_s - self._main_plus_command_s
        if self._feedback.main_plus and since_s >= cfg.precharge_overlap_s:
            self._mains_lost_since_s = None
            self._enter(self._target, "precharge complete", MAINS_CLOSED)
        elif not self._feedback.main_plus and since_s > cfg.contactor_confirm_timeout_s and \
                self._wall_s - self._main_plus_command_wall_s > cfg.contactor_confirm_timeout_s:
            self._enter(OperatingState.ERROR, "main+ feedback did not confirm closing", ALL_OPEN)

    def _step_closed(self, now_s: float) -> None:
        if self._feedback.main_plus and self._feedback.main_minus:
            self._mains_lost_since_s = None
            return
        timeout_s = self.config.contactor_confirm_timeout_s
        if self._mains_lost_since_s is None:
            self._mains_lost_since_s, self._mains_lost_since_wall_s = now_s, self._wall_s
        elif now_s - self._mains_lost_since_s > timeout_s and self._wall_s - self._mains_lost_since_wall_s > timeout_s:
            self._enter(OperatingState.ERROR, "main contactors opened without command", ALL_OPEN)

    # Helpers ------------------------------------------------------------------------------

    def _safety_fresh(self, now_s: float) -> bool:
        return self._safety is not None and now_s - self._safety_time_s <= self.config.safety_timeout_s

    def _enter(self, state: OperatingState, reason: str, command: ContactorSet) -> None:
        self.state = state
        self.reason = reason
        self.command = command
        if state is not OperatingState.STANDBY:
            self._opening_since_s = None

    def _answer(self, accepted: bool, reason: str) -> RequestResult:
        return RequestResult(accepted, reason, self.state)
