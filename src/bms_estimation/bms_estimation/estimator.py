"""Estimator: SOC, SOH and SOP of every cell of a pack, stepped in one batch per sample period.

This is the plain-Python core the estimator node wraps. Inputs are pack-wide, module-major
arrays with NaN where a module or a cell was not measured; a NaN never reaches another cell's
estimate, because the kernels give unmeasured cells a prediction step only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from bms_common.pack_config import PackConfig

from . import ekf
from .cell_model import CellParameters, default_parameters, scaled_to_capacity
from .ekf import FilterTuning
from .pack import pack_soc, pack_soh
from .sop import CellDynamics, PowerLimits, SopLimits, horizon_responses, power_limits

STATE_FORMAT_VERSION = 1
# The node's period jitters; RC coefficients are reused while dt stays within 1 % of the dt they
# were made for (a 1 % error in one step's relaxation, far inside the time constants' own
# uncertainty) instead of two exponentials per cell at every step. The coulomb count always uses
# the exact dt.
DT_REUSE_TOLERANCE = 0.01
UNKNOWN_SOC_STD = 0.3  # before the first measurement: SOC could be anything
FIRST_MEASUREMENT_SOC_STD = 0.1  # from one voltage that may not be at rest
RC_PRIOR_STD_V = 0.01  # each RC voltage's uncertainty at rest


# Set from the pack (capacity, cell parameters), not by hand.
PACK_DERIVED_TUNING = ("nominal_capacity_ah", "r0_min_ohm", "r0_max_ohm")
# Defaults that differ by chemistry. LFP: the staging step that makes its SOC observable moves
# with the particles' concentration gradients under load, far more than NMC's OCV features do;
# a larger surface-SOC lag brought the SOC RMSE after 30 minutes from 1.8-2.6 % to 1.5-2.0 %
# on three PyBaMM drives (docs/estimation.md, "LFP from both starts").
CHEMISTRY_TUNING: dict[str, dict[str, float]] = {"LFP": {"soc_lag_per_c": 0.8}}


def tuned(tuning: ekf.FilterTuning, overrides: Mapping[str, float | bool]) -> ekf.FilterTuning:
    """``tuning`` with some fields replaced; an unknown field or a wrong type is a ValueError."""
    fields = {f.name: f for f in dataclasses.fields(tuning)}
    values = {}
    for name, value in overrides.items():
        if name not in fields or name in PACK_DERIVED_TUNING:
            raise ValueError(f"unknown filter tuning {name!r}; known: {', '.join(tunable_fields())}")
        if isinstance(getattr(tuning, name), bool):
            if not isinstance(value, bool):
                raise ValueError(f"filter tuning {name} must be true or false, got {value!r}")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"filter tuning {name} must be a finite number, got {value!r}")
        values[name] = type(getattr(tuning, name))(value)
    return dataclasses.replace(tuning, **values)


def tunable_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(ekf.FilterTuning) if f.name not in PACK_DERIVED_TUNING]


class Estimator:
    """Batched SOC/SOH/SOP estimator for a pack described by a PackConfig."""

    def __init__(self, pack: PackConfig, params: CellParameters | None = None,
                 tuning: FilterTuning | None = None, backend: str | None = None,
                 initial_soc: float | np.ndarray | None = None, initial_soc_std: float = UNKNOWN_SOC_STD,
                 cells: int | None = None, tuning_overrides: Mapping[str, float | bool] | None = None) -> None:
        """``cells`` overrides the pack's cell count (benchmarks, tests with many realisations);
        ``tuning_overrides`` replaces single FilterTuning fields of the default (or given) tuning."""
        self.pack = pack
        self.cells = pack.cell_count if cells is None else cells
        base = params or default_parameters(pack.chemistry)
        self.params = scaled_to_capacity(base, pack.nominal_capacity_ah)
        self.tuning = tuning or tuned(FilterTuning(
            nominal_capacity_ah=pack.nominal_capacity_ah,
            r0_min_ohm=0.3 * self.params.r0_ohm,
            r0_max_ohm=5.0 * self.params.r0_ohm,
        ), CHEMISTRY_TUNING.get(self.params.chemistry, {}))
        if tuning_overrides:
            self.tuning = tuned(self.tuning, tuning_overrides)
        self.backend_name, self._backend = ekf.select_backend(backend, self.cells)
        self._tuning_array = self.tuning.as_array()
        self._segments = ekf.ocv_segments(self.params.ocv.ocv_v, self.tuning.flat_slope_v,
                                          self.tuning.jacobian_max_v)
        full = np.full(self.cells, 1.0)
        self.r1_ohm, self.tau1_s = full * self.params.r1_ohm, full * self.params.tau1_s
        self.r2_ohm, self.tau2_s = full * self.params.r2_ohm, full * self.params.tau2_s
        self._coef_dt_s = float("nan")
        self._sop_responses = horizon_responses(self.r1_ohm, self.tau1_s, self.r2_ohm, self.tau2_s)
        self._coef = np.empty((ekf.COEF_ROWS, self.cells))
        self.temperature_degc = np.full(self.cells, np.nan)
        self.state = np.zeros((ekf.STATE_ROWS, self.cells))
        self.state[ekf.SOC] = 0.5 if initial_soc is None else np.clip(initial_soc, 0.0, 1.0)
        self.state[ekf.P00] = initial_soc_std**2
        self.state[ekf.P11] = self.state[ekf.P22] = RC_PRIOR_STD_V**2
        self.state[ekf.R0] = self.params.r0_ohm
        self.state[ekf.R0_VAR] = (0.3 * self.params.r0_ohm) ** 2
        self.state[ekf.CAP] = self.params.capacity_ah
        # An aged cell may have lost 20 % or more: a prior that does not resist learning that.
        self.state[ekf.CAP_VAR] = (0.1 * self.params.capacity_ah) ** 2
        self.state[ekf.WIN_SOC] = self.state[ekf.SOC]
        self.state[ekf.WIN_VAR] = self.state[ekf.P00]
        self.state[ekf.PREV_V] = np.nan
        # Cells without a given SOC start from the OCV of their first measured voltage.
        self._needs_first_soc = np.full(self.cells, initial_soc is None)
        self._awaiting_first_soc = initial_soc is None
        # Whether a waiting cell's RC voltages have their prior: set at its first known current,
        # then integrated over the currents that come before its first voltage.
        self._rc_primed = np.zeros(self.cells, dtype=bool)
        self._rc_guessed = np.zeros(self.cells, dtype=bool)  # primed under load: a guess

    def step(self, voltage_v: np.ndarray, current_a: float | np.ndarray, dt_s: float,
             temperature_degc: np.ndarray | None = None) -> None:
        """Advance all cells by dt_s with the current over the period (positive = charging) and
        the voltages at its end (NaN = not measured). current_a may be per cell, aligned to each
        module's sampling instant. An unknown current (NaN) holds the cells' charge and skips
        their update, since a voltage cannot be explained without the current."""
        voltage_v = np.asarray(voltage_v, dtype=float)
        current = np.asarray(current_a, dtype=float)
        if current.ndim == 0:
            current = np.full(self.cells, current)
        if voltage_v.shape != (self.cells,) or current.shape != (self.cells,):
            raise ValueError(f"step() needs {self.cells} voltages and 1 or {self.cells} currents, "
                             f"got {voltage_v.shape} and {current.shape}")
        if self._awaiting_first_soc:
            self._prime_rc(current)
            self._first_soc(voltage_v, current)
        if temperature_degc is not None:
            temperature = np.asarray(temperature_degc, dtype=float)
            self.temperature_degc = np.where(np.isfinite(temperature), temperature, self.temperature_degc)
        if not abs(dt_s - self._coef_dt_s) <= DT_REUSE_TOLERANCE * dt_s:
            self._coef = ekf.rc_coefficients(self.tau1_s, self.r1_ohm, self.tau2_s, self.r2_ohm, dt_s,
                                             self.tuning.soc_lag_per_c, self.tuning.nominal_capacity_ah)
            self._coef_dt_s = dt_s
        self._backend.step(self.state, self._coef, np.ascontiguousarray(current),
                           np.ascontiguousarray(voltage_v), dt_s, self._tuning_array, self._segments)

    def _prime_rc(self, current_a: np.ndarray) -> None:
        """The RC voltages' prior for waiting cells, at their first known current. At rest: zero.
        Under load they depend on a current history not seen: anywhere between rest (the load
        has just begun) and their steady state for this current (it has flowed for long). Take
        the middle, with the spread of a uniform distribution over that range. The prediction
        steps then integrate them over every current seen until the cell's first voltage, so a
        load that begins after the first current (the node holds the first voltages until it
        has seen one second of current, docs/estimation.md "Start-up under load") starts from
        rest, not from a guess."""
        prime = self._needs_first_soc & ~self._rc_primed & np.isfinite(current_a)
        if not prime.any():
            return
        i_a = current_a[prime]
        loaded = np.abs(i_a) >= self.tuning.rest_current_c * self.tuning.nominal_capacity_ah
        half_v1 = np.where(loaded, 0.5 * self.r1_ohm[prime] * i_a, 0.0)
        half_v2 = np.where(loaded, 0.5 * self.r2_ohm[prime] * i_a, 0.0)
        self.state[ekf.V1, prime], self.state[ekf.V2, prime] = half_v1, half_v2
        self.state[ekf.P11, prime] = np.maximum(RC_PRIOR_STD_V**2, half_v1**2 / 3.0)
        self.state[ekf.P22, prime] = np.maximum(RC_PRIOR_STD_V**2, half_v2**2 / 3.0)
        self.state[ekf.P12, prime] = 0.0
        self._rc_primed |= prime
        self._rc_guessed[prime] = loaded

    def _first_soc(self, voltage_v: np.ndarray, current_a: np.ndarray) -> None:
        start = self._needs_first_soc & np.isfinite(voltage_v) & np.isfinite(current_a)
        if not start.any():
            return
        i_a = current_a[start]
        v1, v2 = self.state[ekf.V1, start], self.state[ekf.V2, start]
        var_v1, var_v2, cov_v12 = self.state[ekf.P11, start], self.state[ekf.P22, start], self.state[ekf.P12, start]
        soc = self.params.ocv.soc_at(voltage_v[start] - self.state[ekf.R0, start] * i_a - v1 - v2)
        self.state[ekf.SOC, start] = soc
        # The SOC came from the voltage less the RC voltages: an RC voltage too high by dv puts
        # the SOC too low by dv / slope. The filter knows it through the correlation, and shares
        # the first voltage's error between SOC and polarisation. RC voltages integrated from a
        # rest are known well enough to leave the SOC's start as at rest.
        slope = np.clip(self.params.ocv.slope_v_per_soc(soc), self.tuning.flat_slope_v, self.tuning.jacobian_max_v)
        guessed = self._rc_guessed[start]
        self.state[ekf.P00, start] = FIRST_MEASUREMENT_SOC_STD**2 + np.where(
            guessed, (var_v1 + var_v2 + 2 * cov_v12) / slope**2, 0.0)
        self.state[ekf.P01, start] = np.where(guessed, -(var_v1 + cov_v12) / slope, 0.0)
        self.state[ekf.P02, start] = np.where(guessed, -(var_v2 + cov_v12) / slope, 0.0)
        self.state[ekf.WIN_SOC, start] = self.state[ekf.SOC, start]
        self.state[ekf.WIN_VAR, start] = self.state[ekf.P00, start]
        self.state[ekf.WIN_AH, start] = self.state[ekf.WIN_ERR_AH, start] = 0.0
        self._needs_first_soc &= ~start
        self._awaiting_first_soc = bool(self._needs_first_soc.any())

    def set_soc(self, soc: float | np.ndarray, soc_std: float | np.ndarray) -> None:
        """Start every cell from a known SOC (scalar or one per cell) with its uncertainty,
        instead of a restored one or the OCV of the first voltage."""
        soc = np.broadcast_to(np.asarray(soc, dtype=float), (self.cells,))
        soc_std = np.broadcast_to(np.asarray(soc_std, dtype=float), (self.cells,))
        self.state[ekf.SOC] = np.clip(soc, 0.0, 1.0)
        self.state[ekf.P00] = soc_std**2
        self.state[ekf.P01] = self.state[ekf.P02] = 0.0
        self.state[ekf.WIN_SOC] = self.state[ekf.SOC]
        self.state[ekf.WIN_VAR] = self.state[ekf.P00]
        self.state[ekf.WIN_AH] = self.state[ekf.WIN_ERR_AH] = 0.0
        self._needs_first_soc[:] = False
        self._awaiting_first_soc = False

    @property
    def awaiting_first_soc(self) -> bool:
        """True while some cell has not had the measured voltage its first SOC comes from."""
        return self._awaiting_first_soc

    @property
    def needs_first_soc(self) -> np.ndarray:
        """Per cell: its first SOC is still to come from a measured voltage (read-only view)."""
        view = self._needs_first_soc.view()
        view.flags.writeable = False
        return view

    @property
    def soc(self) -> np.ndarray:
        return self.state[ekf.SOC]

    @property
    def soc_std(self) -> np.ndarray:
        """The SOC's uncertainty: the filter's own (which assumes the model exact) and the SOC
        that the model's error at rest stands for where the SOC is (docs/estimation.md,
        "Uncertainty")."""
        return np.sqrt(np.maximum(self.state[ekf.P00], 0.0) + self.model_soc_std**2)

    @property
    def filter_soc_std(self) -> np.ndarray:
        """The EKF's SOC standard deviation alone: too small wherever the model is biased."""
        return np.sqrt(np.maximum(self.state[ekf.P00], 0.0))

    @property
    def model_soc_std(self) -> np.ndarray:
        """The SOC error that the model's error at rest (``soc_std_model_error_v``) means at each
        cell's SOC: that error over the OCV slope, the slope bounded as the filter bounds it
        (between ``flat_slope_v``, below which the voltage is not trusted, and ``jacobian_max_v``)."""
        slope = np.clip(self.params.ocv.slope_v_per_soc(self.state[ekf.SOC]), self.tuning.flat_slope_v,
                        self.tuning.jacobian_max_v)
        return self.tuning.soc_std_model_error_v / slope

    @property
    def capacity_ah(self) -> np.ndarray:
        return self.state[ekf.CAP]

    @property
    def capacity_std_ah(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.state[ekf.CAP_VAR], 0.0))

    @property
    def soh(self) -> np.ndarray:
        return self.state[ekf.CAP] / self.pack.nominal_capacity_ah

    @property
    def resistance_ohm(self) -> np.ndarray:
        return self.state[ekf.R0]

    @property
    def resistance_std_ohm(self) -> np.ndarray:
        return np.sqrt(np.maximum(self.state[ekf.R0_VAR], 0.0))

    def pack_soc(self) -> float:
        return pack_soc(self.soc, self.capacity_ah)

    def pack_soh(self) -> float:
        return pack_soh(self.capacity_ah, self.pack.nominal_capacity_ah)

    def power_limits(self, limits: SopLimits) -> PowerLimits:
        s = self.state
        cells = CellDynamics(s[ekf.SOC], s[ekf.V1], s[ekf.V2], s[ekf.R0], s[ekf.CAP])
        return power_limits(cells, self._sop_responses, self.params.ocv, self.temperature_degc, limits)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything needed to resume, as plain arrays (for numpy.savez)."""
        saved = {name: self.state[row].copy() for row, name in enumerate(ekf.STATE_NAMES)}
        saved["needs_first_soc"] = self._needs_first_soc.copy()
        saved["format_version"] = np.array(STATE_FORMAT_VERSION)
        saved["chemistry"] = np.array(self.params.chemistry)
        return saved

    def load_state(self, saved: dict[str, np.ndarray] | np.lib.npyio.NpzFile) -> None:
        """Resume from state_dict(); raises ValueError if it belongs to another pack."""
        version = int(saved["format_version"])
        if version != STATE_FORMAT_VERSION:
            raise ValueError(f"saved estimator state has format {version}, this code reads {STATE_FORMAT_VERSION}")
        chemistry = str(saved["chemistry"])
        cells = np.asarray(saved["soc"]).shape
        if chemistry != self.params.chemistry or cells != (self.cells,):
            raise ValueError(
                f"saved estimator state is for {cells[0]} {chemistry} cells, this pack has "
                f"{self.cells} {self.params.chemistry} cells; delete the state file to start afresh"
            )
        for row, name in enumerate(ekf.STATE_NAMES):
            self.state[row] = saved[name]
        self._needs_first_soc = np.asarray(saved["needs_first_soc"], dtype=bool).copy()
        self._awaiting_first_soc = bool(self._needs_first_soc.any())
        self._rc_primed[:] = self._rc_guessed[:] = False
