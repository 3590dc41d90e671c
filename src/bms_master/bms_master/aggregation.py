"""Pack aggregation: from the latest per-module measurements to the PackState and BatteryState fields.

:class:`ModuleTable` keeps the latest cell voltages and temperatures of every module with the time
they arrived on the node's clock; :func:`aggregate` turns them into pack figures. Only fresh
modules (a usable sample within the freshness timeout) count; unknown values, implausible ones
included, are NaN. Vectorized over
cells; no ROS imports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bms_common.plausibility import PhysicalRanges, SampleGate

from .enums import ModuleStatus


class ModuleTable:
    """Latest values per module: voltages (modules, cells), temperatures (modules, sensors)."""

    def __init__(self, modules: int, cells_per_module: int, sensors_per_module: int,
                 ranges: PhysicalRanges | None = None) -> None:
        self.voltages_v = np.full((modules, cells_per_module), np.nan)
        self.temperatures_degc = np.full((modules, sensors_per_module), np.nan)
        # Receive time per module on the supplied clock; NaN = never heard from.
        self.time_s = np.full(modules, np.nan)
        self.gate = SampleGate(modules, cells_per_module, sensors_per_module)
        self.ranges = ranges or PhysicalRanges()

    @property
    def modules(self) -> int:
        return self.voltages_v.shape[0]

    def update(self, module_id: int, cell_voltages_v: Sequence[float], temperatures_degc: Sequence[float],
               time_s: float, stamp_s: float | None = None, sequence: int | None = None,
               cell_flags: int = 0, wall_s: float | None = None) -> str | None:
        """Store one CellMeasurements received at ``time_s`` (stamp: ``stamp_s``, default the
        same; sequence: default the next; ``wall_s``: the wall clock then, for the stamp rule's
        clock rate). A sample the contract's rule rejects
        (bms_common.plausibility.SampleGate) raises ValueError and leaves the module unchanged, so
        a module whose samples keep being rejected goes stale. Values outside the physical
        ranges are stored as unknown; the return value says which, else None."""
        voltages = np.asarray(cell_voltages_v, dtype=float)
        temperatures = np.asarray(temperatures_degc, dtype=float)
        if sequence is None and 0 <= module_id < self.modules:
            sequence = int(self.gate.sequence[module_id]) + 1
        rejected = self.gate.check(module_id, time_s if stamp_s is None else stamp_s, voltages.size,
                                   temperatures.size, cell_flags, sequence, time_s, wall_s)
        if rejected is not None:
            raise ValueError(f"cell_measurements: {rejected[1]}")
        bad_v, bad_t = self.ranges.bad_voltages(voltages), self.ranges.bad_temperatures(temperatures)
        # Infinities and implausible values are as unknown as NaN; keep one representation.
        self.voltages_v[module_id] = np.where(np.isfinite(voltages) & ~bad_v, voltages, np.nan)
        self.temperatures_degc[module_id] = np.where(np.isfinite(temperatures) & ~bad_t, temperatures, np.nan)
        self.time_s[module_id] = time_s
        if not (bad_v.any() or bad_t.any()):
            return None
        return (f"module {module_id}: {int(bad_v.sum())} cell voltages outside "
                f"{self.ranges.cell_voltage_min_v:g}..{self.ranges.cell_voltage_max_v:g} V "
                f"(e.g. {voltages[bad_v][:1].tolist()}) and {int(bad_t.sum())} temperatures outside "
                f"{self.ranges.temperature_min_degc:g}..{self.ranges.temperature_max_degc:g} degC "
                "ignored as unmeasured")

    def module_status(self, now_s: float, freshness_timeout_s: float) -> np.ndarray:
        """ModuleStatus per module (uint8)."""
        status = np.full(self.modules, ModuleStatus.MISSING, dtype=np.uint8)
        heard = ~np.isnan(self.time_s)
        status[heard] = ModuleStatus.OK
        age_s = now_s - self.time_s
        status[heard & (age_s > freshness_timeout_s)] = ModuleStatus.STALE
        return status


@dataclass(frozen=True)
class Extreme:
    """A minimum or maximum with its location; value NaN and location 0 when nothing is known."""

    value: float
    module: int
    index: int


@dataclass(frozen=True)
class PackAggregate:
    module_status: np.ndarray  # uint8 ModuleStatus per module
    sum_of_cells_v: float  # NaN unless every module is fresh and every cell known
    min_cell_voltage: Extreme
    max_cell_voltage: Extreme
    mean_cell_voltage_v: float
    min_temperature: Extreme  # index = sensor within the module
    max_temperature: Extreme
    mean_temperature_degc: float
    # Pack-wide module-major per-cell arrays for sensor_msgs/BatteryState (NaN = unknown or stale).
    cell_voltages_v: np.ndarray
    cell_temperatures_degc: np.ndarray


def aggregate(table: ModuleTable, now_s: float, freshness_timeout_s: float,
              sensor_of_cell: Sequence[int]) -> PackAggregate:
    """Pack figures over fresh modules at now_s; sensor_of_cell maps each cell to its sensor."""
    status = table.module_status(now_s, freshness_timeout_s)
    fresh = (status == ModuleStatus.OK)[:, None]
    voltages = np.where(fresh, table.voltages_v, np.nan)
    temperatures = np.where(fresh, table.temperatures_degc, np.nan)
    cell_temperatures = temperatures[:, np.asarray(sensor_of_cell, dtype=int)]
    return PackAggregate(
        module_status=status,
        sum_of_cells_v=float(voltages.sum()),
        min_cell_voltage=_extreme(voltages, np.nanargmin),
        max_cell_voltage=_extreme(voltages, np.nanargmax),
        mean_cell_voltage_v=_nanmean(voltages),
        min_temperature=_extreme(temperatures, np.nanargmin),
        max_temperature=_extreme(temperatures, np.nanargmax),
        mean_temperature_degc=_nanmean(temperatures),
        cell_voltages_v=voltages.ravel(),
        cell_temperatures_degc=cell_temperatures.ravel(),
    )


def _extreme(values: np.ndarray, arg: np.ufunc) -> Extreme:
    if np.isnan(values).all():
        return Extreme(math.nan, 0, 0)
    module, index = np.unravel_index(arg(values), values.shape)
    return Extreme(float(values[module, index]), int(module), int(index))


def _nanmean(values: np.ndarray) -> float:
    known = ~np.isnan(values)
    return float(values[known].mean()) if known.any() else math.nan
