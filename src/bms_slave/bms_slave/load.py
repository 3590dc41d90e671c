"""Loads and chargers that set the pack current: what they ask for, before the plant clamps it to
the allowed current limits and to zero while the contactors are open."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LoadContext:
    """What a load or charger can see of the pack when deciding its current."""

    time_s: float
    current_a: float
    max_cell_voltage_v: float
    charge_limit_a: float
    discharge_limit_a: float


class LoadProfile(ABC):
    @abstractmethod
    def demand_a(self, context: LoadContext) -> float:
        """Requested pack current (positive = charging) for the next step."""


class ConstantCurrent(LoadProfile):
    def __init__(self, current_a: float) -> None:
        self.current_a = current_a

    def demand_a(self, context: LoadContext) -> float:
        return self.current_a


# (time_s, C-rate) breakpoints of one cycle, linearly interpolated: accelerate, cruise,
# brake with regeneration, stand still; then a harder acceleration, motorway cruise, long regen.
_DRIVE_CYCLE_C_RATE = (
    (0.0, 0.0), (2.0, -1.5), (10.0, -1.5), (14.0, -0.4), (60.0, -0.4), (64.0, 0.6),
    (72.0, 0.6), (75.0, 0.0), (95.0, 0.0), (98.0, -2.5), (106.0, -2.5), (110.0, -0.8),
    (200.0, -0.8), (205.0, 0.8), (220.0, 0.3), (225.0, 0.0), (240.0, 0.0),
)


class DriveCycle(LoadProfile):
    """Repeating city/motorway cycle scaled to the pack capacity (about -0.5 C on average)."""

    def __init__(self, capacity_ah: float, scale: float = 1.0) -> None:
        table = np.asarray(_DRIVE_CYCLE_C_RATE)
        self._times_s = table[:, 0]
        self._currents_a = table[:, 1] * capacity_ah * scale
        self.period_s = float(self._times_s[-1])

    def demand_a(self, context: LoadContext) -> float:
        return float(np.interp(context.time_s % self.period_s, self._times_s, self._currents_a))


class CcCvCharge(LoadProfile):
    """Charger: constant current until the highest cell reaches cv_voltage_v, then holds that cell
    there with a tapering current, and stops below cutoff_current_a (as a charger does)."""

    def __init__(self, cc_current_a: float, cv_voltage_v: float, cutoff_current_a: float,
                 taper_gain_a_per_v: float) -> None:
        if cc_current_a <= 0.0 or cutoff_current_a <= 0.0 or taper_gain_a_per_v <= 0.0:
            raise ValueError("CC-CV charge: currents and taper gain must be positive")
        self.cc_current_a = cc_current_a
        self.cv_voltage_v = cv_voltage_v
        self.cutoff_current_a = cutoff_current_a
        self.taper_gain_a_per_v = taper_gain_a_per_v
        self.finished = False
        self.in_cv = False

    @classmethod
    def for_capacity(cls, capacity_ah: float, cv_voltage_v: float, c_rate: float = 0.5,
                     r0_ohm: float = 1e-3) -> CcCvCharge:
        # The voltage controller's gain: half the current step that would close the error through R0.
        return cls(c_rate * capacity_ah, cv_voltage_v, capacity_ah / 20.0, 0.5 / r0_ohm)

    def demand_a(self, context: LoadContext) -> float:
        if self.finished:
            return 0.0
        error_v = self.cv_voltage_v - context.max_cell_voltage_v
        if not self.in_cv and error_v > 0.0:
            return self.cc_current_a
        self.in_cv = True
        # Integrate from the current actually flowing so a limit clamp does not wind the controller up.
        base_a = max(context.current_a, 0.0)
        current_a = min(self.cc_current_a, max(0.0, base_a + self.taper_gain_a_per_v * error_v))
        if current_a < self.cutoff_current_a:
            self.finished = True
            return 0.0
        return current_a
