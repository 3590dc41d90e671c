"""Simulated pack sensing: reads the plant's pack truth through the current sensor model."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .measurement import CurrentSensorModel
from .pack_sensor import PackSensorBackend, PackSensorReading
from .plant import PackTruth
from .sim_config import SimConfig

# Insulation monitors resolve a few percent of the reading.
INSULATION_RELATIVE_NOISE = 0.02


class PackTruthSource(Protocol):
    """The plant itself, or a node's copy of the plant's /sim data."""

    def pack_truth(self) -> PackTruth: ...


class SimulatedPackSensor(PackSensorBackend):
    def __init__(self, source: PackTruthSource, sim: SimConfig) -> None:
        self.source = source
        self.model = CurrentSensorModel(sim)

    def read(self) -> PackSensorReading:
        truth, model = self.source.pack_truth(), self.model
        spread = float(np.clip(model.rng.standard_normal(), -3.0, 3.0))
        return PackSensorReading(
            stamp_s=truth.time_s,
            current_a=model.measure_current(truth.current_a),
            pack_voltage_v=model.measure_voltage(truth.pack_voltage_v),
            dc_link_voltage_v=model.measure_voltage(truth.dc_link_voltage_v),
            insulation_resistance_ohm=truth.insulation_resistance_ohm * (1.0 + INSULATION_RELATIVE_NOISE * spread),
            hvil_closed=truth.hvil_closed,
        )
