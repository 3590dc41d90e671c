"""Simulated AFE backend: samples one module of the pack plant through the AFE measurement model,
with the module's injected sensor faults applied the way real hardware shows them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from bms_common.pack_config import PackConfig

from .afe import (
    AFE_CELL_FLAG_DTYPE,
    CELL_ADC_MISMATCH,
    CELL_OPEN_WIRE,
    CELL_OUT_OF_RANGE,
    MODULE_AFE_COMM_ERROR,
    MODULE_THERMISTOR_FAULT,
    AfeBackend,
    AfeCommunicationError,
    AfeDiagnostics,
    AfeReading,
)
from .measurement import AFE_RANGE_V, AfeMeasurementModel
from .plant import AfeInputs
from .sim_config import SimConfig

ALL_CHANNELS = -1


class ModuleTruthSource(Protocol):
    """Where a simulated AFE gets the truth and sends its bleed switches: the plant itself, or a
    board's link to the plant over /sim (bms_slave.sim_link)."""

    def afe_inputs(self, module: int) -> AfeInputs: ...

    def set_module_balancing(self, module: int, mask: np.ndarray) -> None: ...


@dataclass
class AfeFaultState:
    """Sensor faults of one simulated AFE (set by bms_slave.faults)."""

    open_wire: set[int] = field(default_factory=set)
    stuck_voltage_v: dict[int, float] = field(default_factory=dict)
    stuck_temperature_degc: dict[int, float] = field(default_factory=dict)
    # Cells (or ALL_CHANNELS) whose reading comes back NaN / as random in-range garbage.
    nan_cells: set[int] = field(default_factory=set)
    garbled_cells: set[int] = field(default_factory=set)
    open_thermistors: set[int] = field(default_factory=set)
    silent: bool = False


class SimulatedAfe(AfeBackend):
    def __init__(self, source: ModuleTruthSource, module_id: int, model: AfeMeasurementModel,
                 cells: int, sensors: int) -> None:
        self.source = source
        self.module_id = module_id
        self.model = model
        self._cells, self._sensors = cells, sensors
        self.faults = AfeFaultState()
        self._samples = 0
        self._communication_errors = 0
        self._last: AfeReading | None = None

    @classmethod
    def create(cls, source: ModuleTruthSource, pack: PackConfig, sim: SimConfig, module_id: int) -> SimulatedAfe:
        """The usual construction: the module's measurement model from the pack and its simulation settings."""
        if not 0 <= module_id < pack.modules:
            raise ValueError(f"module {module_id} is not in pack {pack.name} (0..{pack.modules - 1})")
        return cls(source, module_id, AfeMeasurementModel(pack, sim, module_id),
                   pack.cells_per_module, pack.sensors_per_module)

    @property
    def cell_count(self) -> int:
        return self._cells

    @property
    def sensor_count(self) -> int:
        return self._sensors

    def set_balancing(self, mask: np.ndarray) -> None:
        self.source.set_module_balancing(self.module_id, mask)

    def read(self) -> AfeReading:
        if self.faults.silent:
            self._communication_errors += 1
            raise AfeCommunicationError(f"module {self.module_id}: AFE does not answer")
        reading = self._sample()
        self._samples += 1
        self._last = reading
        return reading

    def latest(self) -> AfeReading:
        """The last reading, or a fresh one when none was taken yet (stuck faults freeze it)."""
        return self._last if self._last is not None else self._sample()

    def _sample(self) -> AfeReading:
        truth = self.source.afe_inputs(self.module_id)
        true_v = truth.cell_voltage_v.copy()
        flags = np.zeros(self._cells, dtype=AFE_CELL_FLAG_DTYPE)
        module_flags = 0
        f = self.faults
        for cell in sorted(f.open_wire):
            # The open sense line floats: its channel collapses and the channel above it spans both cells.
            if cell + 1 < self._cells:
                true_v[cell + 1] += true_v[cell]
            true_v[cell] = 0.0
            flags[cell] |= CELL_OPEN_WIRE
        voltage, out_of_range = self.model.measure_voltages(true_v)
        flags[out_of_range] |= CELL_OUT_OF_RANGE
        for cell, frozen_v in f.stuck_voltage_v.items():
            voltage[cell] = frozen_v
        garbled = _channels(f.garbled_cells, self._cells)
        voltage[garbled] = self.model.rng.uniform(*AFE_RANGE_V, int(garbled.sum()))
        nan = _channels(f.nan_cells, self._cells)
        if nan.any():
            voltage[nan] = np.nan
            flags[nan] |= CELL_ADC_MISMATCH
            module_flags |= MODULE_AFE_COMM_ERROR if ALL_CHANNELS in f.nan_cells else 0

        temperature = self.model.measure_temperatures(truth.sensor_temperature_degc)
        for sensor, frozen_degc in f.stuck_temperature_degc.items():
            temperature[sensor] = frozen_degc
        if f.open_thermistors:
            temperature[sorted(f.open_thermistors)] = np.nan
            module_flags |= MODULE_THERMISTOR_FAULT
        return AfeReading(
            stamp_s=truth.stamp_s,
            cell_voltage_v=voltage,
            temperature_degc=temperature,
            balancing=truth.balancing,
            cell_flags=flags,
            module_flags=module_flags,
        )

    def diagnostics(self) -> AfeDiagnostics:
        silent = self.faults.silent
        return AfeDiagnostics(
            hardware_id=f"sim-afe-{self.module_id}",
            ok=not silent,
            message="no answer from AFE" if silent else "ok",
            samples=self._samples,
            communication_errors=self._communication_errors,
        )


def _channels(cells: set[int], count: int) -> np.ndarray:
    mask = np.zeros(count, dtype=bool)
    if ALL_CHANNELS in cells:
        mask[:] = True
    else:
        mask[sorted(cells)] = True
    return mask
