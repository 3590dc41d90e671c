"""Electrical and thermal state of every cell of a series pack, vectorized over cells.

Per cell: 2RC equivalent circuit (R0 + two RC pairs) on an OCV(SOC, T) source, an LFP-style
hysteresis state, Arrhenius temperature dependence of the resistances, coulombic efficiency on
charge, self-discharge, a bleed resistor for passive balancing and a lumped thermal model.
Current sign: positive charges the cell. Arrays are module-major (module * cells_per_module + cell).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bms_common.pack_config import PackConfig

from .chemistry import ChemistryModel, arrhenius_factor, chemistry_model
from .sim_config import SimConfig
from .thermal import ThermalModel

SECONDS_PER_HOUR = 3600.0
SECONDS_PER_MONTH = 30.0 * 86400.0
# Longest sub-step for the electrical state. The RC pairs are integrated exactly, so this only
# bounds how long the bleed current and the resistances are held constant.
MAX_ELECTRICAL_STEP_S = 1.0


@dataclass
class CellParameters:
    """Per-cell parameters (arrays of length cells), seeded variation and ageing included."""

    capacity_ah: np.ndarray
    r0_ohm: np.ndarray
    r1_ohm: np.ndarray
    r2_ohm: np.ndarray
    tau1_s: np.ndarray
    tau2_s: np.ndarray
    self_discharge_a: np.ndarray
    # Ageing factors that went into capacity_ah and the resistances, kept for inspection.
    capacity_fade: np.ndarray
    resistance_growth: np.ndarray
    heat_capacity_j_per_k: np.ndarray

    @classmethod
    def sample(cls, pack: PackConfig, sim: SimConfig, chemistry: ChemistryModel,
               rng: np.random.Generator) -> CellParameters:
        n = pack.cell_count
        nominal_ah = pack.nominal_capacity_ah
        fade = np.clip(sim.capacity_fade * (1.0 + sim.ageing_spread * rng.standard_normal(n)), 0.0, 0.9)
        growth = np.clip(sim.resistance_growth * (1.0 + sim.ageing_spread * rng.standard_normal(n)), 0.0, None)
        capacity_ah = nominal_ah * np.clip(1.0 + sim.capacity_spread * rng.standard_normal(n), 0.5, 1.5) * (1.0 - fade)
        # One draw per cell scales all its resistances: a cell with a poor weld or a thin
        # electrode is worse on every time scale.
        resistance_scale = np.clip(1.0 + sim.resistance_spread * rng.standard_normal(n), 0.3, 3.0) * (1.0 + growth)
        monthly = chemistry.self_discharge_per_month if math.isnan(sim.self_discharge_per_month) \
            else sim.self_discharge_per_month
        # Self-discharge varies by cell far more than capacity does; lognormal keeps it positive.
        self_discharge_a = monthly * capacity_ah * SECONDS_PER_HOUR / SECONDS_PER_MONTH * rng.lognormal(0.0, 0.3, n)
        return cls(
            capacity_ah=capacity_ah,
            r0_ohm=chemistry.r0_ohm_ah / nominal_ah * resistance_scale,
            r1_ohm=chemistry.r1_ohm_ah / nominal_ah * resistance_scale,
            r2_ohm=chemistry.r2_ohm_ah / nominal_ah * resistance_scale,
            tau1_s=np.full(n, chemistry.tau1_s),
            tau2_s=np.full(n, chemistry.tau2_s),
            self_discharge_a=self_discharge_a,
            capacity_fade=fade,
            resistance_growth=growth,
            heat_capacity_j_per_k=np.full(
                n, chemistry.mass_kg_per_ah * nominal_ah * chemistry.specific_heat_j_per_kg_k),
        )


class PackCells:
    """True state of all cells. ``step`` advances it under one series pack current."""

    def __init__(self, pack: PackConfig, sim: SimConfig, rng: np.random.Generator) -> None:
        self.chemistry = chemistry_model(pack.chemistry)
        self.count = pack.cell_count
        self.params = CellParameters.sample(pack, sim, self.chemistry, rng)
        self.bleed_resistance_ohm = pack.balancing.bleed_resistance_ohm
        self.bleed_heat_to_cell = sim.bleed_heat_to_cell
        n = self.count
        self.soc = np.clip(sim.initial_soc + sim.initial_soc_spread * rng.standard_normal(n), 0.0, 1.0)
        self.v_rc1_v = np.zeros(n)
        self.v_rc2_v = np.zeros(n)
        # -1 discharge branch .. +1 charge branch; starts at rest between both.
        self.hysteresis = np.zeros(n)
        # Extra current into each cell from an internal fault (positive overcharges the cell).
        self.leak_current_a = np.zeros(n)
        self.thermal = ThermalModel(pack.modules, pack.cells_per_module, self.params.heat_capacity_j_per_k,
                                    sim.cooling_w_per_k, sim.neighbour_w_per_k, sim.ambient_degc,
                                    sim.ambient_degc)
        self.voltage_v = np.empty(n)
        self.current_a = np.zeros(n)
        self.bleed_current_a = np.zeros(n)
        self._charge_scale = np.empty(n)
        self._cached_step_s = -1.0
        self._gain1 = np.empty(n)
        self._gain2 = np.empty(n)
        self._scratch = np.empty(n)
        self._heat = np.empty(n)
        self._resistance_factor = np.empty(n)
        self._update_resistance_factor()
        self._update_voltage()

    @property
    def temperature_degc(self) -> np.ndarray:
        return self.thermal.temperature_degc

    def ocv_v(self) -> np.ndarray:
        return self.chemistry.ocv.ocv_v(self.soc, self.thermal.temperature_degc)

    def _rc_gains(self, h: float) -> None:
        """1 - exp(-h/tau) per RC pair, cached because the step length rarely changes."""
        if h != self._cached_step_s:
            np.subtract(1.0, np.exp(-h / self.params.tau1_s), out=self._gain1)
            np.subtract(1.0, np.exp(-h / self.params.tau2_s), out=self._gain2)
            self._cached_step_s = h

    def _update_resistance_factor(self) -> None:
        self._resistance_factor[:] = arrhenius_factor(self.thermal.temperature_degc,
                                                      self.chemistry.activation_energy_j_per_mol)

    def step(self, pack_current_a: float, dt_s: float, balancing_mask: np.ndarray) -> None:
        """Advance dt_s with the series current pack_current_a and the given bleed switches closed."""
        if dt_s <= 0.0:
            return
        substeps = max(1, math.ceil(dt_s / MAX_ELECTRICAL_STEP_S))
        h = dt_s / substeps
        for _ in range(substeps):
            self._substep(pack_current_a, h, balancing_mask)

    def _substep(self, pack_current_a: float, h: float, balancing_mask: np.ndarray) -> None:
        p, s = self.params, self._scratch
        self._rc_gains(h)
        self._update_resistance_factor()
        # Bleed current follows the terminal voltage at the start of the step, through closed switches only.
        np.multiply(self.voltage_v, balancing_mask, out=self.bleed_current_a)
        self.bleed_current_a /= self.bleed_resistance_ohm
        current = self.current_a
        np.subtract(pack_current_a, self.bleed_current_a, out=current)

        # Charge: coulombic losses only while charging; self-discharge and fault leaks bypass the terminals.
        scale = self._charge_scale
        np.copyto(scale, 1.0)
        scale[current > 0.0] = self.chemistry.coulombic_efficiency
        np.multiply(current, scale, out=s)
        s -= p.self_discharge_a
        s += self.leak_current_a
        s *= h / SECONDS_PER_HOUR
        s /= p.capacity_ah
        self.soc += s

        if self.chemistry.hysteresis_v > 0.0:
            # dh/dq = rate * (sign(i) - h): exact solution for constant current over the step.
            np.abs(current, out=s)
            s *= -self.chemistry.hysteresis_rate_per_soc * h / SECONDS_PER_HOUR
            s /= p.capacity_ah
            np.exp(s, out=s)
            target = np.sign(current)
            self.hysteresis -= target
            self.hysteresis *= s
            self.hysteresis += target

        # RC pairs, exact for constant current: v <- v + (i*R - v) * (1 - exp(-h/tau)).
        for v_rc, r, gain in ((self.v_rc1_v, p.r1_ohm, self._gain1), (self.v_rc2_v, p.r2_ohm, self._gain2)):
            np.multiply(current, r, out=s)
            s *= self._resistance_factor
            s -= v_rc
            s *= gain
            v_rc += s

        self._update_voltage()
        self.thermal.step(self._heat_w(), h)

    def _update_voltage(self) -> None:
        v = self.voltage_v
        v[:] = self.ocv_v()
        if self.chemistry.hysteresis_v > 0.0:
            v += self.chemistry.hysteresis_v * self.hysteresis
        s = self._scratch
        np.multiply(self.current_a, self.params.r0_ohm, out=s)
        s *= self._resistance_factor
        v += s
        v += self.v_rc1_v
        v += self.v_rc2_v

    def _heat_w(self) -> np.ndarray:
        """Joule heat in R0 and both RC resistors plus the bleed resistor's share."""
        p, rf, heat, s = self.params, self._resistance_factor, self._heat, self._scratch
        np.square(self.current_a, out=heat)
        heat *= p.r0_ohm
        heat *= rf
        for v_rc, r in ((self.v_rc1_v, p.r1_ohm), (self.v_rc2_v, p.r2_ohm)):
            np.square(v_rc, out=s)
            s /= r
            s /= rf
            heat += s
        np.multiply(self.bleed_current_a, self.voltage_v, out=s)
        s *= self.bleed_heat_to_cell
        heat += s
        return heat
