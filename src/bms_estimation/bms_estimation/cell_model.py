"""2RC equivalent-circuit cell model: parameters, OCV lookup and per-step coefficients.

Terminal voltage (current positive = charging)::

    v = ocv(soc) + v1 + v2 + r0 * i
    soc' = soc + i * dt / (3600 * capacity_ah)
    vk'  = ak * vk + rk * (1 - ak) * i,   ak = exp(-dt / tauk)

The OCV curve is a table on a uniform SOC grid, so a lookup is one multiply and one index (no
search), and it extends linearly beyond 0..1 so that the EKF Jacobian stays defined when an
estimate overshoots. The default tables and resistances come from ``ecm_tables.py``, which
``tools/fit_ecm.py`` writes from simulated lab tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ecm_tables


@dataclass(frozen=True)
class OcvTable:
    """Open-circuit voltage on a uniform SOC grid from 0 to 1."""

    ocv_v: np.ndarray

    @property
    def slope_v(self) -> np.ndarray:
        """Voltage rise across each grid segment (len = points - 1)."""
        return np.diff(self.ocv_v)

    @property
    def segments(self) -> int:
        return self.ocv_v.size - 1

    def voltage_v(self, soc: np.ndarray | float) -> np.ndarray:
        position = np.asarray(soc, dtype=float) * self.segments
        index = np.clip(np.floor(position), 0, self.segments - 1).astype(np.intp)
        return self.ocv_v[index] + (position - index) * self.slope_v[index]

    def slope_v_per_soc(self, soc: np.ndarray | float) -> np.ndarray:
        position = np.asarray(soc, dtype=float) * self.segments
        index = np.clip(np.floor(position), 0, self.segments - 1).astype(np.intp)
        return self.slope_v[index] * self.segments

    def soc_at(self, voltage_v: np.ndarray | float) -> np.ndarray:
        """Inverse lookup, for a first estimate from a cell at rest (needs a rising table)."""
        grid = np.linspace(0.0, 1.0, self.ocv_v.size)
        return np.interp(voltage_v, self.ocv_v, grid)


@dataclass(frozen=True)
class CellParameters:
    """ECM parameters of one cell type; the estimator copies them to every cell."""

    chemistry: str
    nominal_capacity_ah: float  # the datasheet (rated) capacity
    capacity_ah: float  # the measured capacity of the reference cell
    r0_ohm: float
    r1_ohm: float
    tau1_s: float
    r2_ohm: float
    tau2_s: float
    ocv: OcvTable


def default_parameters(chemistry: str) -> CellParameters:
    """Parameters fitted to the simulated lab tests of the reference cell of a chemistry."""
    try:
        table = ecm_tables.CELLS[chemistry.upper()]
    except KeyError:
        known = ", ".join(sorted(ecm_tables.CELLS))
        raise ValueError(f"no ECM parameters for chemistry {chemistry!r}; known: {known}") from None
    return CellParameters(
        chemistry=chemistry.upper(),
        nominal_capacity_ah=table["nominal_capacity_ah"],
        capacity_ah=table["capacity_ah"],
        r0_ohm=table["r0_ohm"],
        r1_ohm=table["r1_ohm"],
        tau1_s=table["tau1_s"],
        r2_ohm=table["r2_ohm"],
        tau2_s=table["tau2_s"],
        ocv=OcvTable(np.asarray(table["ocv_v"], dtype=float)),
    )


def scaled_to_capacity(params: CellParameters, nominal_capacity_ah: float) -> CellParameters:
    """The same chemistry in a cell of another rated size: capacity scales with the rating,
    resistances inversely (more electrode area in parallel); time constants and OCV stay."""
    ratio = params.nominal_capacity_ah / nominal_capacity_ah
    return CellParameters(
        chemistry=params.chemistry,
        nominal_capacity_ah=nominal_capacity_ah,
        capacity_ah=params.capacity_ah / ratio,
        r0_ohm=params.r0_ohm * ratio,
        r1_ohm=params.r1_ohm * ratio,
        tau1_s=params.tau1_s,
        r2_ohm=params.r2_ohm * ratio,
        tau2_s=params.tau2_s,
        ocv=params.ocv,
    )
