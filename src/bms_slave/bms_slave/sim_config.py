"""Simulation settings: the ``simulation:`` mapping of a pack file, validated with defaults.

Every key is optional. Errors name the file, the key and the value so a user can fix the YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from bms_common.pack_config import ConfigError, PackConfig

TEMPERATURE_SENSOR_MODES = ("mean", "max")


@dataclass(frozen=True)
class SimConfig:
    seed: int = 0
    initial_soc: float = 0.5
    ambient_degc: float = 25.0
    # Cell-to-cell variation: relative standard deviations, SOC standard deviation.
    capacity_spread: float = 0.01
    resistance_spread: float = 0.05
    initial_soc_spread: float = 0.005
    # NaN: the chemistry's typical self-discharge.
    self_discharge_per_month: float = float("nan")
    # Ageing: mean capacity lost (fraction) and mean resistance increase (fraction), with a
    # relative spread across cells.
    capacity_fade: float = 0.0
    resistance_growth: float = 0.0
    ageing_spread: float = 0.2
    # Thermal: per-cell conductance to the coolant/ambient and between neighbouring cells.
    cooling_w_per_k: float = 1.0
    neighbour_w_per_k: float = 2.0
    # Share of the bleed resistor's heat that reaches its cell (the rest heats the board).
    bleed_heat_to_cell: float = 0.5
    # AFE measurement (LTC6813 class): fixed per-channel offset up to +-voltage_offset_v,
    # gaussian noise, ADC resolution.
    voltage_offset_v: float = 0.0012
    voltage_noise_v: float = 0.00025
    voltage_resolution_v: float = 0.0001
    temperature_offset_degc: float = 0.5
    temperature_noise_degc: float = 0.1
    temperature_sensor: str = "mean"
    # Sampling delay of the last module in the daisy chain behind the current sensor; module m
    # samples m/(modules-1) of it late. At most one plant step (the plant keeps one step of history).
    afe_sample_skew_s: float = 0.02
    current_gain_error: float = 0.005
    current_offset_a: float = 0.05
    current_noise_a: float = 0.05
    pack_voltage_noise_v: float = 0.2
    # HV circuit.
    precharge_resistance_ohm: float = 100.0
    dc_link_capacitance_f: float = 0.002
    dc_link_bleed_ohm: float = 50_000.0
    insulation_resistance_ohm: float = 5.0e6

    @property
    def afe_channel_error_v(self) -> float:
        """Worst-case channel error (offset + 3 sigma noise + half a quantisation step)."""
        return self.voltage_offset_v + 3.0 * self.voltage_noise_v + 0.5 * self.voltage_resolution_v


# key -> (low, high) inclusive bounds for floats and ints.
_BOUNDS: dict[str, tuple[float, float]] = {
    "seed": (0, 2**32 - 1),
    "initial_soc": (0.0, 1.0),
    "ambient_degc": (-40.0, 80.0),
    "capacity_spread": (0.0, 0.2),
    "resistance_spread": (0.0, 0.5),
    "initial_soc_spread": (0.0, 0.2),
    "self_discharge_per_month": (0.0, 0.5),
    "capacity_fade": (0.0, 0.5),
    "resistance_growth": (0.0, 5.0),
    "ageing_spread": (0.0, 1.0),
    "cooling_w_per_k": (0.0, 1000.0),
    "neighbour_w_per_k": (0.0, 1000.0),
    "bleed_heat_to_cell": (0.0, 1.0),
    "voltage_offset_v": (0.0, 0.1),
    "voltage_noise_v": (0.0, 0.1),
    "voltage_resolution_v": (0.0, 0.1),
    "temperature_offset_degc": (0.0, 10.0),
    "temperature_noise_degc": (0.0, 10.0),
    "afe_sample_skew_s": (0.0, 1.0),
    "current_gain_error": (0.0, 0.1),
    "current_offset_a": (0.0, 100.0),
    "current_noise_a": (0.0, 100.0),
    "pack_voltage_noise_v": (0.0, 100.0),
    "precharge_resistance_ohm": (0.1, 1.0e5),
    "dc_link_capacitance_f": (1.0e-6, 10.0),
    "dc_link_bleed_ohm": (1.0, 1.0e9),
    "insulation_resistance_ohm": (1.0, 1.0e12),
}


def load_sim_config(pack: PackConfig) -> SimConfig:
    """Validate ``pack.simulation`` and fill in defaults."""
    where = f"{pack.source}: simulation."
    known = {f.name: f for f in fields(SimConfig)}
    values: dict[str, Any] = {}
    for key, value in pack.simulation.items():
        if key not in known:
            raise ConfigError(f"{where}{key} is not a known key (known: {', '.join(sorted(known))})")
        default = known[key].default
        if isinstance(default, str):
            if value not in TEMPERATURE_SENSOR_MODES:
                raise ConfigError(
                    f"{where}{key} must be one of {', '.join(TEMPERATURE_SENSOR_MODES)}, got {value!r}"
                )
        elif isinstance(default, int):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{where}{key} must be an integer, got {value!r}")
        else:
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ConfigError(f"{where}{key} must be a number, got {value!r}")
            value = float(value)
        if key in _BOUNDS:
            low, high = _BOUNDS[key]
            if not low <= value <= high:
                raise ConfigError(f"{where}{key} must be {low:g}..{high:g}, got {value!r}")
        values[key] = value
    return SimConfig(**values)
