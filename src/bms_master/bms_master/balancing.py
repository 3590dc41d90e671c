"""Passive balancing strategy: which cells bleed, vectorized over the pack.

Voltage mode bleeds cells whose voltage exceeds the pack minimum by more than ``threshold_v``;
SOC mode (used when the estimator's CellStates are available) bleeds cells whose dischargeable
charge soc * capacity_ah exceeds the pack minimum by more than ``threshold_ah``. A bleeding cell
keeps bleeding until its excess falls below threshold - hysteresis, so measurement noise around
the threshold does not chatter the switches. Balancing runs only in the allowed operating states,
never while discharging harder than configured, only for cells inside the temperature window
and never for cells whose data is unknown (NaN: stale modules must be passed as NaN). No ROS imports.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .enums import OperatingState


@dataclass(frozen=True)
class BalancingStrategyConfig:
    threshold_v: float = 0.010
    hysteresis_v: float = 0.003
    threshold_ah: float = 0.05
    hysteresis_ah: float = 0.02
    min_temperature_degc: float = 0.0
    max_temperature_degc: float = 50.0
    allowed_states: tuple[OperatingState, ...] = (OperatingState.STANDBY, OperatingState.CHARGE)
    # Balancing stops while the pack discharges harder than this: the energy is needed by the load.
    max_discharge_current_a: float = 5.0
    # Thermal limit of a slave board: at most this many bleeding cells per module (0 = no limit).
    max_cells_per_module: int = 0

    @classmethod
    def from_pack(cls, pack_balancing: Any, **overrides: Any) -> BalancingStrategyConfig:
        """Take threshold and temperature window from a pack's BalancingConfig (bms_common)."""
        base = cls(threshold_v=pack_balancing.threshold_v,
                   min_temperature_degc=pack_balancing.min_temperature_degc,
                   max_temperature_degc=pack_balancing.max_temperature_degc)
        return replace(base, **overrides)


@dataclass(frozen=True)
class BalancingDecision:
    masks: np.ndarray  # (modules, cells_per_module) bool: True = close the bleed switch
    mode: str  # "voltage", "soc" or "off"
    reason: str  # why balancing is off, or what it balances against


class BalancingStrategy:
    def __init__(self, config: BalancingStrategyConfig, modules: int, cells_per_module: int) -> None:
        self.config = config
        self.shape = (modules, cells_per_module)
        self._active = np.zeros(self.shape, dtype=bool)

    def decide(self, cell_voltages_v: np.ndarray, cell_temperatures_degc: np.ndarray,
               state: OperatingState, current_a: float, soc: np.ndarray | None = None,
               capacity_ah: np.ndarray | None = None) -> BalancingDecision:
        """Bleed masks for pack-wide module-major per-cell arrays (NaN = unknown).

        Pass soc and capacity_ah (fractions, Ah) from a fresh CellStates to use SOC mode.
        """
        cfg = self.config
        voltages = self._reshape(cell_voltages_v, "cell_voltages_v")
        temperatures = self._reshape(cell_temperatures_degc, "cell_temperatures_degc")
        off = self._gate(state, current_a)
        if off is not None:
            return self._off(off)
        use_soc = soc is not None and capacity_ah is not None
        if use_soc:
            charge_ah = self._reshape(soc, "soc") * self._reshape(capacity_ah, "capacity_ah")
            excess, threshold, hysteresis = _excess(charge_ah), cfg.threshold_ah, cfg.hysteresis_ah
            # Voltage is still required: a cell without a fresh reading is never bled.
            excess[np.isnan(voltages)] = np.nan
        else:
            excess, threshold, hysteresis = _excess(voltages), cfg.threshold_v, cfg.hysteresis_v
        if np.isnan(excess).all():
            return self._off("no cell with known data")
        in_window = (temperatures >= cfg.min_temperature_degc) & (temperatures <= cfg.max_temperature_degc)
        with np.errstate(invalid="ignore"):
            wanted = (excess > threshold) | (self._active & (excess > threshold - hysteresis))
        wanted &= in_window
        if cfg.max_cells_per_module > 0:
            wanted &= _top_k_per_row(np.where(wanted, excess, -np.inf), cfg.max_cells_per_module)
        self._active = wanted
        mode = "soc" if use_soc else "voltage"
        return BalancingDecision(wanted.copy(), mode, f"{mode} balancing to the pack minimum")

    def _gate(self, state: OperatingState, current_a: float) -> str | None:
        """Why balancing is off for the whole pack, or None."""
        if state not in self.config.allowed_states:
            return f"not allowed in {OperatingState(state).name}"
        if not current_a >= -self.config.max_discharge_current_a:
            return f"pack current {current_a:.1f} A: discharging harder than balancing allows"
        return None

    def _off(self, reason: str) -> BalancingDecision:
        self._active[:] = False
        return BalancingDecision(self._active.copy(), "off", reason)

    def _reshape(self, values: np.ndarray, name: str) -> np.ndarray:
        array = np.asarray(values, dtype=float)
        if array.size != self.shape[0] * self.shape[1]:
            raise ValueError(f"balancing: {name} has {array.size} values, the pack has "
                             f"{self.shape[0]} x {self.shape[1]} cells")
        return array.reshape(self.shape)


def _excess(values: np.ndarray) -> np.ndarray:
    """values minus the pack minimum over known cells (NaN stays NaN)."""
    if np.isnan(values).all():
        return values.copy()
    return values - np.nanmin(values)


def _top_k_per_row(scores: np.ndarray, k: int) -> np.ndarray:
    """True for the k highest scores of each row (ties broken by cell index)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(scores.shape[1])[None, :].repeat(scores.shape[0], 0), axis=1)
    return rank < k
