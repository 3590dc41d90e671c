"""Allowed charge and discharge current now, with the limiting reason per direction.

Each direction's limit is the smallest of: the configured maximum (in DRIVE the charge direction
uses the regeneration maximum), the configured maximum times the supervisor's derating factor,
and the estimator's state of power for the chosen horizon (or a conservative default while the
estimator is missing or stale). The operating state zeroes the directions it forbids. Values are
magnitudes >= 0. No ROS imports: the master node publishes the result as CurrentLimits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .enums import LimitReason, OperatingState


@dataclass(frozen=True)
class CurrentLimitConfig:
    max_charge_current_a: float = 100.0
    max_discharge_current_a: float = 300.0
    # Charge direction while in DRIVE (regenerative braking).
    max_regen_current_a: float = 50.0
    # Used instead of the state of power while the estimator is missing or stale.
    fallback_charge_current_a: float = 10.0
    fallback_discharge_current_a: float = 30.0
    # PowerLimits horizon to follow: 10 s is what a load can rely on for a sustained request;
    # the 2 s value would let it plan on a peak that collapses shortly after.
    sop_horizon_s: float = 10.0
    estimator_timeout_s: float = 2.0


@dataclass(frozen=True)
class StateOfPower:
    """One PowerLimits message reduced to the chosen horizon, with its receive time."""

    charge_current_a: float
    discharge_current_a: float
    time_s: float


@dataclass(frozen=True)
class CurrentLimitsResult:
    max_charge_current_a: float
    max_discharge_current_a: float
    charge_reason: LimitReason
    discharge_reason: LimitReason


def select_horizon(horizons_s: Sequence[float], charge_a: Sequence[float], discharge_a: Sequence[float],
                   wanted_horizon_s: float, time_s: float) -> StateOfPower:
    """Pick the shortest horizon >= wanted_horizon_s (else the longest there is) from PowerLimits.

    A longer horizon is never less conservative than a shorter one, so falling back upwards is
    safe. Raises ValueError when the arrays are empty or of different lengths.
    """
    horizons = np.asarray(horizons_s, dtype=float)
    charge = np.asarray(charge_a, dtype=float)
    discharge = np.asarray(discharge_a, dtype=float)
    if horizons.size == 0 or charge.shape != horizons.shape or discharge.shape != horizons.shape:
        raise ValueError(
            f"PowerLimits: horizons_s ({horizons.size}), max_charge_current_a ({charge.size}) and "
            f"max_discharge_current_a ({discharge.size}) must be non-empty and equally long")
    long_enough = np.flatnonzero(horizons >= wanted_horizon_s)
    if long_enough.size:
        index = long_enough[np.argmin(horizons[long_enough])]
    else:
        index = int(np.nanargmax(horizons))
    return StateOfPower(float(charge[index]), float(discharge[index]), time_s)


def compute_current_limits(config: CurrentLimitConfig, state: OperatingState, sop: StateOfPower | None,
                           charge_derating: float, discharge_derating: float,
                           now_s: float) -> CurrentLimitsResult:
    """Allowed currents now; sop is the latest state of power (None if never received)."""
    estimator_fresh = sop is not None and now_s - sop.time_s <= config.estimator_timeout_s
    if state is OperatingState.DRIVE:
        charge_max_a = min(config.max_charge_current_a, config.max_regen_current_a)
    else:
        charge_max_a = config.max_charge_current_a

    if state in (OperatingState.DRIVE, OperatingState.CHARGE):
        charge = _direction_limit(charge_max_a, charge_derating,
                                  sop.charge_current_a if estimator_fresh and sop else None,
                                  config.fallback_charge_current_a)
    else:
        charge = (0.0, LimitReason.NOT_ALLOWED)
    if state is OperatingState.DRIVE:
        discharge = _direction_limit(config.max_discharge_current_a, discharge_derating,
                                     sop.discharge_current_a if estimator_fresh and sop else None,
                                     config.fallback_discharge_current_a)
    else:
        discharge = (0.0, LimitReason.NOT_ALLOWED)
    return CurrentLimitsResult(charge[0], discharge[0], charge[1], discharge[1])


def _direction_limit(configured_a: float, derating: float, sop_a: float | None,
                     fallback_a: float) -> tuple[float, LimitReason]:
    # An unknown derating is treated as "no current": the supervisor's verdict is missing.
    derating = 0.0 if math.isnan(derating) else min(max(derating, 0.0), 1.0)
    if sop_a is None or math.isnan(sop_a):
        estimate = (fallback_a, LimitReason.NO_ESTIMATOR)
    else:
        estimate = (max(sop_a, 0.0), LimitReason.STATE_OF_POWER)
    # Earlier candidates win ties: a derating to zero is reported as the supervisor's doing.
    candidates = []
    if derating < 1.0:
        candidates.append((configured_a * derating, LimitReason.SAFETY_DERATING))
    candidates += [estimate, (configured_a, LimitReason.CONFIGURED_MAX)]
    best = candidates[0]
    for candidate in candidates[1:]:
        if candidate[0] < best[0]:
            best = candidate
    return best
