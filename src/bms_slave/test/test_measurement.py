"""AFE and current sensor measurement models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from slave_test_helpers import close_mains, ideal_sim, pack_with, plant_of, run

from bms_slave.load import ConstantCurrent
from bms_slave.plant import PackPlant
from bms_slave.sim_afe import SimulatedAfe
from bms_slave.sim_pack_sensor import SimulatedPackSensor


def test_cell_voltage_error_is_ltc6813_class_and_quantised() -> None:
    plant = plant_of()
    afe = SimulatedAfe.create(plant, plant.pack, plant.sim, 0)
    truth = plant.module_truth(0).cell_voltage_v
    readings = np.array([afe.read().cell_voltage_v for _ in range(500)])
    error = readings - truth
    assert np.abs(error).max() <= 0.0021
    assert np.abs(error).max() > 0.0005  # offsets and noise are really there
    np.testing.assert_allclose(readings / 1e-4, np.round(readings / 1e-4), atol=1e-6)
    # A fixed offset per channel: averaging removes the noise but not the offset.
    assert np.std(error.mean(axis=0)) > 2e-4


@pytest.mark.parametrize("mode", ["mean", "max"])
def test_temperature_sensors_read_their_cells(mode: str) -> None:
    pack = pack_with(temperature_sensor=mode)
    sim = dataclasses.replace(ideal_sim(pack), temperature_sensor=mode)
    plant = PackPlant(pack, sim)
    plant.cells.thermal.temperature_degc[12:24] = np.arange(12) + 20.0  # module 1
    reading = SimulatedAfe.create(plant, pack, sim, 1).read().temperature_degc
    expected = [np.mean([20, 21, 22]), 23 + 1, 26 + 1, 29 + 1] if mode == "mean" else [22, 25, 28, 31]
    np.testing.assert_allclose(reading, expected, atol=0.051)


def test_modules_sample_later_down_the_daisy_chain() -> None:
    pack = pack_with(afe_sample_skew_s=0.06)
    sim = ideal_sim(pack)
    plant = PackPlant(pack, sim)
    close_mains(plant)
    plant.set_profile(ConstantCurrent(-100.0))
    run(plant, 1.0)
    plant.set_profile(ConstantCurrent(100.0))  # a current step so the skew shows in the voltages
    plant.step(0.1)
    last = pack.modules - 1
    first_reading = SimulatedAfe.create(plant, pack, sim, 0).read()
    last_reading = SimulatedAfe.create(plant, pack, sim, last).read()
    assert first_reading.stamp_s == pytest.approx(plant.time_s)
    assert last_reading.stamp_s == pytest.approx(plant.time_s - 0.06)
    truth = plant.module_truth(last)
    expected = truth.cell_voltage_v + 0.6 * (truth.previous_cell_voltage_v - truth.cell_voltage_v)
    np.testing.assert_allclose(last_reading.cell_voltage_v, expected, atol=1e-9)
    assert np.all(last_reading.cell_voltage_v < truth.cell_voltage_v)


def test_current_sensor_has_gain_error_offset_and_noise() -> None:
    plant = plant_of(current_gain_error=0.01, current_offset_a=0.2, current_noise_a=0.1)
    close_mains(plant)
    plant.set_profile(ConstantCurrent(-100.0))
    plant.step(0.1)
    sensor = SimulatedPackSensor(plant, plant.sim)
    readings = np.array([sensor.read().current_a for _ in range(2000)])
    model = sensor.model
    assert readings.mean() == pytest.approx(-100.0 * (1 + model.gain_error) + model.offset_a, abs=0.01)
    assert readings.std() == pytest.approx(0.1, rel=0.1)
    assert abs(readings.mean() + 100.0) <= 1.2


def test_pack_sensor_reports_the_hv_side() -> None:
    plant = plant_of()
    close_mains(plant)
    run(plant, 0.5)
    reading = SimulatedPackSensor(plant, ideal_sim(plant.pack)).read()
    assert reading.stamp_s == pytest.approx(plant.time_s)
    assert reading.pack_voltage_v == pytest.approx(plant.cells.voltage_v.sum())
    assert reading.dc_link_voltage_v == pytest.approx(reading.pack_voltage_v, rel=0.01)
    assert reading.insulation_resistance_ohm == pytest.approx(plant.sim.insulation_resistance_ohm, rel=0.07)
    assert reading.hvil_closed
