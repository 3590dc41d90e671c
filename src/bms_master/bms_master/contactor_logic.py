"""Independent safety path of the contactor node: which coils to drive and feedback supervision.

The contactor node executes the master's ContactorCommand only while the latest SafetyStatus is
fresh and allows it, independently of the master: it closes a contactor only while a fresh status
has contactors_allowed, holds a closed one at ALARM, and opens every contactor at once on FAULT or
when the status is older than the freshness timeout. A contactor the safety path kept or forced
open closes again only after its command has gone open once, so a still-standing "closed" command
never recloses the mains without a new precharge. That rule holds main+ only: main- and the
precharge relay close as soon as closing is allowed, since closing them starts a precharge, which
is always safe, and a refusal that lasted only a moment (a respawned supervisor waiting for its
first measurements) must not strand a precharge the master has already begun. No ROS imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .enums import OpenReason, SafetyLevel
from .state_machine import ContactorSet


@dataclass(frozen=True)
class ContactorLogicConfig:
    # A SafetyStatus older than this means the supervisor is silent: open everything.
    safety_timeout_s: float = 0.5
    # Feedback must disagree with its coil this long before it counts as a mismatch; covers the
    # contactor's closing and opening time.
    mismatch_debounce_s: float = 0.1


@dataclass(frozen=True)
class ContactorLogicOutput:
    coils: ContactorSet
    open_reason: OpenReason
    # True while the safety path holds contacts open (FAULT, silence, or a refused close).
    opened_by_safety: bool
    feedback_mismatch: bool
    # Per contactor (main_plus, main_minus, precharge): feedback disagreed longer than the debounce.
    mismatched: ContactorSet


# Which contactors the "new command before reclosing" rule holds: main+ only (see module doc).
HELD_UNTIL_NEW_COMMAND = np.array([True, False, False])


def _array(contactors: ContactorSet) -> np.ndarray:
    return np.array([contactors.main_plus, contactors.main_minus, contactors.precharge], dtype=bool)


def _set(values: np.ndarray) -> ContactorSet:
    return ContactorSet(bool(values[0]), bool(values[1]), bool(values[2]))


class ContactorLogic:
    def __init__(self, config: ContactorLogicConfig | None = None) -> None:
        self.config = config if config is not None else ContactorLogicConfig()
        self._command = np.zeros(3, dtype=bool)
        self._coils = np.zeros(3, dtype=bool)
        # Per contactor: held open by the safety path until its command goes open once.
        self._blocked = np.zeros(3, dtype=bool)
        self._level = SafetyLevel.OK
        self._allowed = False
        self._safety_time_s = -math.inf
        self._mismatch_since_s = np.full(3, math.nan)
        self._mismatch_since_wall_s = np.full(3, math.nan)

    def set_command(self, command: ContactorSet) -> None:
        self._command = _array(command)

    def set_safety(self, level: SafetyLevel, contactors_allowed: bool, now_s: float) -> None:
        """Latest SafetyStatus; now_s is its receive time on the node's clock."""
        self._level = SafetyLevel(level)
        self._allowed = contactors_allowed
        self._safety_time_s = now_s

    def step(self, now_s: float, feedback: ContactorSet | None,
             delivery_grace: bool = False, wall_s: float | None = None, silent: bool = False,
             not_yet_applied: ContactorSet | None = None) -> ContactorLogicOutput:
        """Coil outputs at now_s; feedback is the auxiliary contacts (None when not available).

        ``delivery_grace``: the status is old on the node's clock but not on the wall clock. A
        simulation running faster than real time magnifies delivery delays by its speed factor;
        the node grants this grace so a late message is not mistaken for a silent supervisor.
        ``wall_s`` (monotonic wall clock), when given, must also show a feedback disagreeing for
        the debounce time before it counts as a mismatch, for the same reason.
        ``silent``: the status has not arrived for so long on the wall clock that it counts as
        old whatever now_s says (a node's simulated clock stands still when /clock is cut off too).
        ``not_yet_applied``: contactors whose coil the hardware has not applied yet (the backend's
        ``not_yet_applied()``); their feedback is not compared with the coil until it has.
        """
        fresh = (now_s - self._safety_time_s <= self.config.safety_timeout_s or delivery_grace) and not silent
        self._blocked &= self._command
        if not fresh or self._level is SafetyLevel.FAULT:
            reason = OpenReason.SAFETY_SILENT if not fresh else OpenReason.SAFETY_FAULT
            self._blocked |= self._command & HELD_UNTIL_NEW_COMMAND
            self._coils[:] = False
        else:
            may_close = self._allowed & ~self._blocked
            closing_refused = self._command & ~self._coils & ~may_close
            self._blocked |= closing_refused & HELD_UNTIL_NEW_COMMAND
            # A closed contactor stays closed at ALARM; only FAULT or silence open it against the command.
            self._coils = self._command & (self._coils | may_close)
            held = self._blocked.any() or closing_refused.any()
            reason = OpenReason.NOT_ALLOWED if held else OpenReason.NONE
        mismatched = self._supervise(now_s, feedback, now_s if wall_s is None else wall_s, not_yet_applied)
        return ContactorLogicOutput(
            coils=_set(self._coils),
            open_reason=reason,
            opened_by_safety=reason is not OpenReason.NONE,
            feedback_mismatch=bool(mismatched.any()),
            mismatched=_set(mismatched),
        )

    def _supervise(self, now_s: float, feedback: ContactorSet | None, wall_s: float,
                   not_yet_applied: ContactorSet | None = None) -> np.ndarray:
        if feedback is None:
            self._mismatch_since_s[:] = math.nan
            self._mismatch_since_wall_s[:] = math.nan
            return np.zeros(3, dtype=bool)
        differs = _array(feedback) != self._coils
        if not_yet_applied is not None:
            differs &= ~_array(not_yet_applied)
        starting = differs & np.isnan(self._mismatch_since_s)
        self._mismatch_since_s[starting] = now_s
        self._mismatch_since_wall_s[starting] = wall_s
        self._mismatch_since_s[~differs] = math.nan
        self._mismatch_since_wall_s[~differs] = math.nan
        debounce_s = self.config.mismatch_debounce_s
        return differs & (now_s - self._mismatch_since_s > debounce_s) & \
            (wall_s - self._mismatch_since_wall_s > debounce_s)
