"""Physics invariants of the cell model: charge balance, balancing, heating, stability, seeds."""

from __future__ import annotations

import numpy as np
import pytest
from slave_test_helpers import close_mains, plant_of, run

from bms_slave.load import ConstantCurrent, LoadContext, LoadProfile


class SquareWave(LoadProfile):
    """Charge and discharge alternately so SOC stays put while cells heat."""

    def __init__(self, amplitude_a: float, period_s: float) -> None:
        self.amplitude_a, self.period_s = amplitude_a, period_s

    def demand_a(self, context: LoadContext) -> float:
        return self.amplitude_a if context.time_s % self.period_s < self.period_s / 2 else -self.amplitude_a


@pytest.mark.parametrize("current_a", [-50.0, 30.0])
def test_soc_change_equals_integrated_current_over_capacity(current_a: float) -> None:
    plant = plant_of(initial_soc=0.5)
    close_mains(plant)
    plant.set_profile(ConstantCurrent(current_a))
    start = plant.cells.soc.copy()
    run(plant, 600.0)
    params = plant.cells.params
    efficiency = plant.cells.chemistry.coulombic_efficiency if current_a > 0 else 1.0
    expected = (current_a * efficiency - params.self_discharge_a) * 600.0 / 3600.0 / params.capacity_ah
    assert plant.current_a == pytest.approx(current_a)
    np.testing.assert_allclose(plant.cells.soc - start, expected, rtol=1e-3)


def test_balancing_drains_only_the_commanded_cells() -> None:
    plant = plant_of()
    mask = np.zeros(plant.pack.cells_per_module, dtype=bool)
    mask[[2, 7]] = True
    plant.set_module_balancing(1, mask)
    start = plant.cells.soc.copy()
    voltage = plant.cells.voltage_v.copy()
    run(plant, 600.0, dt_s=1.0)
    drop = start - plant.cells.soc
    commanded = np.zeros(plant.pack.cell_count, dtype=bool)
    commanded[[12 + 2, 12 + 7]] = True
    bleed_ah = voltage[commanded] / plant.pack.balancing.bleed_resistance_ohm * 600.0 / 3600.0
    np.testing.assert_allclose(drop[commanded], bleed_ah / plant.cells.params.capacity_ah[commanded], rtol=0.02)
    self_discharge = plant.cells.params.self_discharge_a * 600.0 / 3600.0 / plant.cells.params.capacity_ah
    np.testing.assert_allclose(drop[~commanded], self_discharge[~commanded], rtol=1e-6)
    assert plant.current_a == 0.0


def test_temperature_rises_with_current_and_settles() -> None:
    plant = plant_of(ambient_degc=25.0)
    close_mains(plant)
    plant.set_profile(SquareWave(100.0, 60.0))
    temperatures = []
    for _ in range(120):
        run(plant, 60.0, dt_s=1.0)
        temperatures.append(plant.cells.temperature_degc.mean())
    assert temperatures[0] > 25.1
    assert temperatures[30] > temperatures[5] > temperatures[0]
    late_rise_per_min = (temperatures[-1] - temperatures[-11]) / 10.0
    assert 0.0 <= late_rise_per_min < 0.01
    assert 30.0 < temperatures[-1] < 60.0


def test_cold_cells_have_higher_resistance() -> None:
    drops = {}
    for ambient in (-10.0, 25.0):
        plant = plant_of(ambient_degc=ambient)
        close_mains(plant)
        rest_v = plant.cells.voltage_v.copy()
        plant.set_profile(ConstantCurrent(-50.0))
        plant.step(0.1)
        drops[ambient] = float(np.mean(rest_v - plant.cells.voltage_v))
    assert drops[-10.0] > 2.0 * drops[25.0] > 0.0


def test_one_second_steps_match_fine_steps() -> None:
    results = []
    for dt_s in (0.1, 1.0):
        plant = plant_of()
        close_mains(plant)
        plant.set_profile(SquareWave(150.0, 40.0))
        run(plant, 600.0, dt_s)
        results.append((plant.cells.voltage_v.copy(), plant.cells.temperature_degc.copy()))
    np.testing.assert_allclose(results[0][0], results[1][0], atol=3e-3)
    np.testing.assert_allclose(results[0][1], results[1][1], atol=0.1)


def test_lfp_rest_voltage_remembers_the_last_current_direction() -> None:
    rest_voltages = {}
    for current_a in (50.0, -50.0):
        plant = plant_of("lfp", initial_soc=0.5, initial_soc_spread=0.0)
        close_mains(plant)
        plant.set_profile(ConstantCurrent(current_a))
        run(plant, 900.0, dt_s=1.0)
        plant.set_profile(ConstantCurrent(-current_a))
        run(plant, 900.0, dt_s=1.0)
        plant.set_profile(ConstantCurrent(0.0))
        run(plant, 3600.0, dt_s=1.0)
        rest_voltages[current_a] = plant.cells.voltage_v - plant.cells.chemistry.ocv.ocv_v(
            plant.cells.soc, plant.cells.temperature_degc)
    # Charge last (second leg of -50 then +50) sits on the upper branch.
    hysteresis_v = plant.cells.chemistry.hysteresis_v
    np.testing.assert_allclose(rest_voltages[-50.0], hysteresis_v, atol=0.003)
    np.testing.assert_allclose(rest_voltages[50.0], -hysteresis_v, atol=0.003)


def test_runs_repeat_with_a_seed_and_differ_without() -> None:
    def final_voltages(seed: int) -> np.ndarray:
        plant = plant_of(seed=seed)
        close_mains(plant)
        plant.set_profile(plant.make_profile("drive"))
        run(plant, 60.0)
        return plant.cells.voltage_v.copy()

    np.testing.assert_array_equal(final_voltages(3), final_voltages(3))
    assert not np.array_equal(final_voltages(3), final_voltages(4))


def test_ageing_reduces_capacity_and_raises_resistance() -> None:
    fresh, aged = plant_of(), plant_of(capacity_fade=0.2, resistance_growth=0.5)
    assert aged.cells.params.capacity_ah.mean() == pytest.approx(0.8 * fresh.cells.params.capacity_ah.mean(), rel=0.03)
    assert aged.cells.params.r0_ohm.mean() == pytest.approx(1.5 * fresh.cells.params.r0_ohm.mean(), rel=0.05)
