"""Lumped thermal model: one heat capacity per cell, conduction to neighbouring cells of the same
module, convection to the module's coolant (or ambient air)."""

from __future__ import annotations

import math

import numpy as np


class ThermalModel:
    """Cell temperatures of a pack, module-major, integrated with explicit Euler sub-steps."""

    def __init__(self, modules: int, cells_per_module: int, heat_capacity_j_per_k: np.ndarray,
                 cooling_w_per_k: float, neighbour_w_per_k: float, initial_degc: float,
                 coolant_degc: float) -> None:
        count = modules * cells_per_module
        self.modules, self.cells_per_module = modules, cells_per_module
        self.heat_capacity_j_per_k = np.asarray(heat_capacity_j_per_k, dtype=float)
        self.neighbour_w_per_k = neighbour_w_per_k
        self.nominal_cooling_w_per_k = cooling_w_per_k
        self.nominal_coolant_degc = coolant_degc
        # Per cell so a fault can take one module's cooling away or heat its coolant.
        self.cooling_w_per_k = np.full(count, cooling_w_per_k)
        self.coolant_degc = np.full(count, coolant_degc)
        self.temperature_degc = np.full(count, initial_degc)
        self._net_w = np.empty(count)
        self._flow_w = np.empty((modules, max(cells_per_module - 1, 0)))
        self._max_step_s = 0.0
        self._update_stability_limit()

    def _module_cells(self, module: int) -> slice:
        return slice(module * self.cells_per_module, (module + 1) * self.cells_per_module)

    def set_module_cooling_factor(self, module: int, factor: float) -> None:
        """Scale one module's heat transfer to its coolant (1 = as configured, 0 = none)."""
        self.cooling_w_per_k[self._module_cells(module)] = self.nominal_cooling_w_per_k * factor
        self._update_stability_limit()

    def set_module_coolant(self, module: int, coolant_degc: float | None) -> None:
        """Set one module's coolant temperature; None restores the ambient."""
        self.coolant_degc[self._module_cells(module)] = (
            self.nominal_coolant_degc if coolant_degc is None else coolant_degc)

    def _update_stability_limit(self) -> None:
        # Explicit Euler is stable while dt < C / (sum of conductances); keep a 2x margin.
        conductance = self.cooling_w_per_k + 2.0 * self.neighbour_w_per_k
        ratio = self.heat_capacity_j_per_k / np.maximum(conductance, 1e-12)
        self._max_step_s = 0.5 * float(ratio.min())

    def step(self, heat_w: np.ndarray, dt_s: float) -> None:
        """Advance by dt_s with heat_w generated in each cell during the step."""
        substeps = max(1, math.ceil(dt_s / self._max_step_s))
        h = dt_s / substeps
        temperature = self.temperature_degc
        grid = temperature.reshape(self.modules, self.cells_per_module)
        net = self._net_w
        net_grid = net.reshape(self.modules, self.cells_per_module)
        flow = self._flow_w
        for _ in range(substeps):
            np.subtract(self.coolant_degc, temperature, out=net)
            net *= self.cooling_w_per_k
            net += heat_w
            if flow.size:
                np.subtract(grid[:, 1:], grid[:, :-1], out=flow)
                flow *= self.neighbour_w_per_k
                net_grid[:, :-1] += flow
                net_grid[:, 1:] -= flow
            net *= h
            net /= self.heat_capacity_j_per_k
            temperature += net
