"""State of power: the constant current a pack can sustain for a horizon without leaving limits.

For a constant current i held for T seconds from the present state, the 2RC model gives each
cell's voltage at the end of the horizon (the worst instant for a constant current) as::

    v(T) = v0(T) + i * reff(T)
    v0(T)   = ocv(soc) + v1 exp(-T/tau1) + v2 exp(-T/tau2)
    reff(T) = r0 + r1 (1 - exp(-T/tau1)) + r2 (1 - exp(-T/tau2)) + docv/dsoc * T / (3600 C)

Solving v(T) = v_max (charge) or v_min (discharge) gives each cell's current limit; the SOC
window bounds it too. In a series string every cell carries the pack current, so the pack limit
is the smallest cell limit, then the configured current maxima, and zero when any cell's
temperature is outside the charge or discharge window. Power is that current times the sum of
the cell voltages at the end of the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cell_model import OcvTable

HORIZONS_S = (2.0, 10.0, 30.0)


@dataclass(frozen=True)
class SopLimits:
    """Operating limits for the SOP; the safety package owns the tables these come from."""

    cell_voltage_min_v: float
    cell_voltage_max_v: float
    charge_current_max_a: float
    discharge_current_max_a: float  # a magnitude, >= 0
    charge_temperature_degc: tuple[float, float] = (0.0, 45.0)
    discharge_temperature_degc: tuple[float, float] = (-20.0, 60.0)
    soc_min: float = 0.0
    soc_max: float = 1.0


@dataclass(frozen=True)
class PowerLimits:
    """Pack limits per horizon; currents and powers are magnitudes (>= 0)."""

    horizons_s: np.ndarray
    max_charge_current_a: np.ndarray
    max_discharge_current_a: np.ndarray
    max_charge_power_w: np.ndarray
    max_discharge_power_w: np.ndarray


@dataclass(frozen=True)
class CellDynamics:
    """What the SOP needs from the estimate, one entry per cell."""

    soc: np.ndarray
    v1_v: np.ndarray
    v2_v: np.ndarray
    r0_ohm: np.ndarray
    capacity_ah: np.ndarray


@dataclass(frozen=True)
class HorizonResponse:
    """How each cell's RC pairs respond over one horizon; fixed while their parameters are, so
    computed once rather than with two exponentials per cell and horizon at every call."""

    horizon_s: float
    decay1: np.ndarray  # exp(-T / tau1)
    decay2: np.ndarray
    rc_ohm: np.ndarray  # r1 (1 - decay1) + r2 (1 - decay2)


def horizon_responses(r1_ohm: np.ndarray, tau1_s: np.ndarray, r2_ohm: np.ndarray, tau2_s: np.ndarray,
                      horizons_s: tuple[float, ...] = HORIZONS_S) -> list[HorizonResponse]:
    responses = []
    for horizon_s in horizons_s:
        decay1, decay2 = np.exp(-horizon_s / tau1_s), np.exp(-horizon_s / tau2_s)
        rc_ohm = r1_ohm * (1.0 - decay1) + r2_ohm * (1.0 - decay2)
        responses.append(HorizonResponse(horizon_s, decay1, decay2, rc_ohm))
    return responses


def _window_allows(temperature_degc: np.ndarray, window: tuple[float, float]) -> bool:
    """False when a measured temperature is outside the window. Unmeasured sensors (NaN) are the
    safety supervisor's to judge; the SOP uses the measured ones."""
    known = temperature_degc[np.isfinite(temperature_degc)]
    return bool(np.all((known >= window[0]) & (known <= window[1])))


def power_limits(cells: CellDynamics, responses: list[HorizonResponse], ocv: OcvTable,
                 temperature_degc: np.ndarray, limits: SopLimits) -> PowerLimits:
    ocv_v = ocv.voltage_v(cells.soc)
    slope = np.maximum(ocv.slope_v_per_soc(cells.soc), 0.0)
    charge_ok = _window_allows(temperature_degc, limits.charge_temperature_degc)
    discharge_ok = _window_allows(temperature_degc, limits.discharge_temperature_degc)
    charge_a, discharge_a, charge_w, discharge_w = (np.zeros(len(responses)) for _ in range(4))
    for k, response in enumerate(responses):
        v0 = ocv_v + cells.v1_v * response.decay1 + cells.v2_v * response.decay2
        charge_per_a = response.horizon_s / (3600.0 * cells.capacity_ah)
        reff = cells.r0_ohm + response.rc_ohm + slope * charge_per_a
        cell_charge_a = np.minimum((limits.cell_voltage_max_v - v0) / reff,
                                   (limits.soc_max - cells.soc) / charge_per_a)
        cell_discharge_a = np.minimum((v0 - limits.cell_voltage_min_v) / reff,
                                      (cells.soc - limits.soc_min) / charge_per_a)
        charge_a[k] = np.clip(cell_charge_a.min(), 0.0, limits.charge_current_max_a) if charge_ok else 0.0
        discharge_a[k] = (np.clip(cell_discharge_a.min(), 0.0, limits.discharge_current_max_a)
                          if discharge_ok else 0.0)
        charge_w[k] = charge_a[k] * np.sum(v0 + charge_a[k] * reff)
        discharge_w[k] = discharge_a[k] * np.sum(v0 - discharge_a[k] * reff)
    horizons_s = np.array([response.horizon_s for response in responses])
    return PowerLimits(horizons_s, charge_a, discharge_a, charge_w, discharge_w)
