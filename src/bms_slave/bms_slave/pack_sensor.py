"""Hardware abstraction of the pack-level sensing: current sensor, HV voltage taps on both sides
of the contactors, insulation monitor and HV interlock loop. The current sensor node reads one
``PackSensorReading`` per sample and publishes it as PackMeasurement."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass


@dataclass(frozen=True)
class PackSensorReading:
    stamp_s: float
    current_a: float                  # positive = charging
    pack_voltage_v: float             # battery side of the contactors
    dc_link_voltage_v: float          # load side of the contactors
    insulation_resistance_ohm: float  # NaN while not measured
    hvil_closed: bool


class PackSensorBackend(ABC):
    @abstractmethod
    def read(self) -> PackSensorReading:
        """Take one sample of all pack-level quantities."""
