"""Measurement models of the simulated sensors: what a real AFE and current sensor would report
for given true values. Each model owns its random stream so runs repeat with the same seed."""

from __future__ import annotations

import numpy as np

from bms_common.pack_config import PackConfig

from .sim_config import SimConfig

# LTC6813-class cell input range; readings outside are clipped and flagged.
AFE_RANGE_V = (0.0, 5.0)
TEMPERATURE_RESOLUTION_DEGC = 0.1
# Random-stream ids next to the seed so each model draws independently of the others.
STREAM_AFE = 1
STREAM_CURRENT_SENSOR = 2


def afe_sample_skew_s(pack: PackConfig, sim: SimConfig, module_id: int) -> float:
    """How long before the current sensor a module's AFE samples: the daisy chain is read one
    module after the other, the last one ``afe_sample_skew_s`` behind the first."""
    return sim.afe_sample_skew_s * module_id / max(pack.modules - 1, 1)


class TemperatureSensors:
    """Where a module's temperature sensors sit: each senses the mean (or, with
    ``temperature_sensor: max``, the maximum) of the cells the pack file places it next to."""

    def __init__(self, pack: PackConfig, sim: SimConfig) -> None:
        sensors, cells = pack.sensors_per_module, pack.cells_per_module
        self.use_max = sim.temperature_sensor == "max"
        # Mean as a matrix product; max over a padded index table (padding repeats a member).
        self._weights = np.zeros((sensors, cells))
        width = max(len(members) for members in pack.temperature_sensors)
        self._members = np.empty((sensors, width), dtype=int)
        for k, members in enumerate(pack.temperature_sensors):
            self._weights[k, list(members)] = 1.0 / len(members)
            self._members[k] = list(members) + [members[0]] * (width - len(members))

    def true_degc(self, cell_temperature_degc: np.ndarray) -> np.ndarray:
        """The true temperature at each sensor for the module's cell temperatures."""
        if self.use_max:
            return cell_temperature_degc[self._members].max(axis=1)
        return self._weights @ cell_temperature_degc


class AfeMeasurementModel:
    """Cell voltage and temperature channels of one module's AFE.

    Voltage: a fixed per-channel offset (uniform within +-voltage_offset_v, drawn once), gaussian
    noise and quantisation to the ADC resolution; total error about 2 mV as LTC6813 specifies.
    Temperature: the true temperature at each sensor (:class:`TemperatureSensors`) plus a fixed
    offset and noise, in 0.1 degC steps.
    """

    def __init__(self, pack: PackConfig, sim: SimConfig, module_id: int) -> None:
        self.module_id = module_id
        self.rng = np.random.default_rng([sim.seed, STREAM_AFE, module_id])
        cells = pack.cells_per_module
        self.voltage_offset_v = self.rng.uniform(-sim.voltage_offset_v, sim.voltage_offset_v, cells)
        self.voltage_noise_v = sim.voltage_noise_v
        self.voltage_resolution_v = sim.voltage_resolution_v
        sensors = pack.sensors_per_module
        self.temperature_offset_degc = self.rng.uniform(-sim.temperature_offset_degc,
                                                        sim.temperature_offset_degc, sensors)
        self.temperature_noise_degc = sim.temperature_noise_degc

    def measure_voltages(self, true_voltage_v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (reading_v, out_of_range) for the true cell voltages."""
        reading = true_voltage_v + self.voltage_offset_v
        if self.voltage_noise_v > 0.0:
            reading += self.rng.normal(0.0, self.voltage_noise_v, reading.shape)
        if self.voltage_resolution_v > 0.0:
            reading = np.round(reading / self.voltage_resolution_v) * self.voltage_resolution_v
        out_of_range = (reading < AFE_RANGE_V[0]) | (reading > AFE_RANGE_V[1])
        return np.clip(reading, *AFE_RANGE_V), out_of_range

    def measure_temperatures(self, sensor_temperature_degc: np.ndarray) -> np.ndarray:
        """Readings for the true temperature at each sensor."""
        reading = sensor_temperature_degc + self.temperature_offset_degc
        if self.temperature_noise_degc > 0.0:
            reading += self.rng.normal(0.0, self.temperature_noise_degc, reading.shape)
        return np.round(reading / TEMPERATURE_RESOLUTION_DEGC) * TEMPERATURE_RESOLUTION_DEGC


class CurrentSensorModel:
    """Hall/shunt current sensor: reading = true * (1 + gain error) + offset + noise."""

    def __init__(self, sim: SimConfig) -> None:
        self.rng = np.random.default_rng([sim.seed, STREAM_CURRENT_SENSOR])
        self.gain_error = float(self.rng.uniform(-sim.current_gain_error, sim.current_gain_error))
        self.offset_a = float(self.rng.uniform(-sim.current_offset_a, sim.current_offset_a))
        self.noise_a = sim.current_noise_a
        self.voltage_noise_v = sim.pack_voltage_noise_v
        # Added by the current_sensor_offset fault.
        self.fault_offset_a = 0.0

    def measure_current(self, true_current_a: float) -> float:
        noise = self.rng.normal(0.0, self.noise_a) if self.noise_a > 0.0 else 0.0
        return true_current_a * (1.0 + self.gain_error) + self.offset_a + self.fault_offset_a + noise

    def measure_voltage(self, true_voltage_v: float) -> float:
        noise = self.rng.normal(0.0, self.voltage_noise_v) if self.voltage_noise_v > 0.0 else 0.0
        return true_voltage_v + noise
