"""The simulated pack: cells, HV circuit and the load or charger, advanced together in time.

One series current flows through all modules. The load's demand is clamped to the allowed charge
and discharge currents (as an inverter or charger obeys ``current_limits``) and is zero unless
both main contactors are closed. The plant is the truth that simulated sensors read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from bms_common.pack_config import PackConfig

from .cell_model import PackCells
from .hv_circuit import HvCircuit
from .load import CcCvCharge, ConstantCurrent, DriveCycle, LoadContext, LoadProfile
from .measurement import TemperatureSensors, afe_sample_skew_s
from .sim_config import SimConfig, load_sim_config

PROFILE_NAMES = ("rest", "constant", "drive", "cccv")


@dataclass(frozen=True)
class ModuleTruth:
    """True values of one module at the last two plant steps (for skewed sampling)."""

    time_s: float
    previous_time_s: float
    cell_voltage_v: np.ndarray
    previous_cell_voltage_v: np.ndarray
    cell_temperature_degc: np.ndarray
    balancing: np.ndarray


@dataclass(frozen=True)
class AfeInputs:
    """What one module's AFE inputs see at its sampling instant: the measurement model's inputs
    (published for modules hosted elsewhere on /sim/cell_truth, docs/simulation.md)."""

    stamp_s: float                    # the sampling instant
    cell_voltage_v: np.ndarray        # true terminal voltage of each cell at stamp_s
    sensor_temperature_degc: np.ndarray  # true temperature at each temperature sensor
    balancing: np.ndarray             # bleed switches closed in the plant


@dataclass(frozen=True)
class PackTruth:
    """True pack-level values at the last plant step."""

    time_s: float
    current_a: float
    pack_voltage_v: float
    dc_link_voltage_v: float
    insulation_resistance_ohm: float
    hvil_closed: bool


class PackPlant:
    def __init__(self, pack: PackConfig, sim: SimConfig | None = None,
                 profile: LoadProfile | None = None) -> None:
        self.pack = pack
        self.sim = sim if sim is not None else load_sim_config(pack)
        rng = np.random.default_rng([self.sim.seed, 0])
        self.cells = PackCells(pack, self.sim, rng)
        self.hv = HvCircuit(self.sim)
        self.profile: LoadProfile = profile if profile is not None else ConstantCurrent(0.0)
        self.time_s = 0.0
        self.previous_time_s = 0.0
        self.current_a = 0.0
        self.charge_limit_a = math.inf
        self.discharge_limit_a = math.inf
        self.balancing_mask = np.zeros(pack.cell_count, dtype=bool)
        self.previous_cell_voltage_v = self.cells.voltage_v.copy()
        self.pack_voltage_v = float(self.cells.voltage_v.sum())
        self.temperature_sensors = TemperatureSensors(pack, self.sim)
        self.afe_skew_s = np.array([afe_sample_skew_s(pack, self.sim, m) for m in range(pack.modules)])

    def set_profile(self, profile: LoadProfile) -> None:
        self.profile = profile

    def make_profile(self, name: str, current_a: float = 0.0) -> LoadProfile:
        """Build a profile by name: rest, constant (current_a), drive, cccv (current_a = CC current)."""
        capacity_ah = self.pack.nominal_capacity_ah
        if name == "rest":
            return ConstantCurrent(0.0)
        if name == "constant":
            return ConstantCurrent(current_a)
        if name == "drive":
            return DriveCycle(capacity_ah)
        if name == "cccv":
            charge = CcCvCharge.for_capacity(capacity_ah, self.cells.chemistry.charge_voltage_v,
                                             r0_ohm=float(self.cells.params.r0_ohm.mean()))
            if current_a > 0.0:
                charge.cc_current_a = current_a
            return charge
        raise ValueError(f"unknown load profile {name!r} (known: {', '.join(PROFILE_NAMES)})")

    def set_current_limits(self, charge_a: float | None, discharge_a: float | None) -> None:
        """Allowed magnitudes (both >= 0); None or NaN means no limit."""
        self.charge_limit_a = _limit(charge_a)
        self.discharge_limit_a = _limit(discharge_a)

    def set_module_balancing(self, module: int, mask: np.ndarray) -> None:
        cells = self.pack.cells_per_module
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (cells,):
            raise ValueError(f"module {module}: balancing mask needs {cells} entries, got shape {mask.shape}")
        self.balancing_mask[module * cells:(module + 1) * cells] = mask

    def step(self, dt_s: float) -> None:
        cells = self.cells
        context = LoadContext(self.time_s, self.current_a, float(cells.voltage_v.max()),
                              self.charge_limit_a, self.discharge_limit_a)
        demand_a = self.profile.demand_a(context)
        load_a = min(max(demand_a, -self.discharge_limit_a), self.charge_limit_a)
        # The source behind the DC link sees the pack's open-circuit voltage plus the last
        # polarisation: good enough for a step of at most a second.
        self.current_a = self.hv.step(self.pack_voltage_v, load_a if self.hv.load_connected else 0.0, dt_s)
        np.copyto(self.previous_cell_voltage_v, cells.voltage_v)
        cells.step(self.current_a, dt_s, self.balancing_mask)
        self.previous_time_s = self.time_s
        self.time_s += dt_s
        self.pack_voltage_v = float(cells.voltage_v.sum())

    def pack_truth(self) -> PackTruth:
        hv = self.hv
        return PackTruth(self.time_s, self.current_a, self.pack_voltage_v, hv.dc_link_voltage_v,
                         hv.insulation_resistance_ohm, hv.hvil_closed)

    def module_truth(self, module: int) -> ModuleTruth:
        if not 0 <= module < self.pack.modules:
            raise ValueError(f"module {module} is not in pack {self.pack.name} (0..{self.pack.modules - 1})")
        n = self.pack.cells_per_module
        cells = slice(module * n, (module + 1) * n)
        return ModuleTruth(
            time_s=self.time_s,
            previous_time_s=self.previous_time_s,
            cell_voltage_v=self.cells.voltage_v[cells].copy(),
            previous_cell_voltage_v=self.previous_cell_voltage_v[cells].copy(),
            cell_temperature_degc=self.cells.temperature_degc[cells].copy(),
            balancing=self.balancing_mask[cells].copy(),
        )

    def afe_inputs(self, module: int) -> AfeInputs:
        """The module's AFE inputs at its sampling instant, ``afe_sample_skew_s`` down the daisy
        chain before the current sensor: interpolated within the last step (at most one step)."""
        truth = self.module_truth(module)
        step_s = truth.time_s - truth.previous_time_s
        lag = min(float(self.afe_skew_s[module]), step_s)
        weight = lag / step_s if step_s > 0.0 else 0.0
        voltage_v = truth.cell_voltage_v + weight * (truth.previous_cell_voltage_v - truth.cell_voltage_v)
        return AfeInputs(truth.time_s - lag, voltage_v,
                         self.temperature_sensors.true_degc(truth.cell_temperature_degc), truth.balancing)


def _limit(value: float | None) -> float:
    if value is None or math.isnan(value):
        return math.inf
    if value < 0.0:
        raise ValueError(f"current limits are magnitudes and must be >= 0, got {value}")
    return float(value)
