"""Pack aggregation: from the latest per-module measurements to the PackState and BatteryState fields.

:class:`ModuleTable` keeps the latest cell voltages and temperatures of every module with the time
they arrived on the node's clock; :func:`aggregate` turns them into pack figures. Only fresh
modules (arrived within the freshness timeout) count; unknown values are NaN. Vectorized over
cells; no ROS imports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .enums import ModuleStatus


class ModuleTable:
    """Latest values per module: voltages (modules, cells), temperatures (modules, sensors)."""

    def __init__(self, modules: int, cells_per_module: int, sensors_per_module: int) -> None:
        self.voltages_v = np.full((modules, cells_per_module), np.nan)
        self.temperatures_degc = np.full((modules, sensors_per_module), np.nan)
        # Receive time per module on the supplied clock; NaN = never heard from.
        self.time_s = np.full(modules, np.nan)

    @property
    def modules(self) -> int:
        return self.voltages_v.shape[0]

    def update(self, module_id: int, cell_voltages_v: Sequence[float], temperatures_degc: Sequence[float],
               time_s: float) -> None:
        """Store one CellMeasurements. Raises ValueError (module left unchanged) on bad input."""
        if not 0 <= module_id < self.modules:
            raise ValueError(f"cell_measurements: module_id {module_id} is not in the pack "
                             f"(0..{self.modules - 1}); check the slave's module_id parameter")
        voltages = np.asarray(cell_voltages_v, dtype=float)
        temperatures = np.asarray(temperatures_degc, dtype=float)
        cells, sensors = self.voltages_v.shape[1], self.temperatures_degc.shape[1]
        if voltages.shape != (cells,):
            raise ValueError(f"cell_measurements: module {module_id} sent {voltages.size} cell voltages, "
                             f"the pack configuration has {cells} cells per module")
        if temperatures.shape != (sensors,):
            raise ValueError(f"cell_measurements: module {module_id} sent {temperatures.size} temperatures, "
                             f"the pack configuration has {sensors} sensors per module")
        # Infinities are as unknown as NaN; keep one representation.
        self.voltages_v[module_id] = np.where(np.isfinite(voltages), voltages, np.nan)
        self.temperatures_degc[module_id] = np.where(np.isfinite(temperatures), temperatures, np.nan)
        self.time_s[module_id] = time_s

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
