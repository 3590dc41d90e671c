"""Every fault shows through its physical effect on the readings, and the registry refuses bad requests."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from slave_test_helpers import close_mains, plant_of, run

from bms_slave.afe import (
    CELL_OPEN_WIRE,
    MODULE_AFE_COMM_ERROR,
    MODULE_THERMISTOR_FAULT,
    AfeCommunicationError,
)
from bms_slave.faults import FAULTS, FaultInjector
from bms_slave.load import ConstantCurrent
from bms_slave.plant import PackPlant
from bms_slave.sim_afe import SimulatedAfe
from bms_slave.sim_pack_sensor import SimulatedPackSensor


class Bench:
    """A demo pack with every simulated sensor and an injector over all of them."""

    def __init__(self, **simulation: object) -> None:
        self.plant: PackPlant = plant_of(**simulation)
        pack = self.plant.pack
        self.afes = {m: SimulatedAfe.create(self.plant, pack, self.plant.sim, m) for m in range(pack.modules)}
        self.pack_sensor = SimulatedPackSensor(self.plant, self.plant.sim)
        self.injector = FaultInjector(pack, self.plant, self.afes, self.pack_sensor)

    def voltages(self, module: int) -> np.ndarray:
        return self.afes[module].read().cell_voltage_v

    def temperatures(self, module: int) -> np.ndarray:
        return self.afes[module].read().temperature_degc


def drift(direction: float) -> Callable[[Bench], None]:
    def check(bench: Bench) -> None:
        before = bench.voltages(1)
        bench.injector.inject("cell_drift", 1, 5, 50.0 * direction)
        run(bench.plant, 600.0, dt_s=1.0)
        change = bench.voltages(1) - before
        assert direction * change[5] > 0.05
        assert np.abs(np.delete(change, 5)).max() < 0.005
    return check


def check_cooling_failure(bench: Bench) -> None:
    close_mains(bench.plant)
    bench.plant.set_profile(ConstantCurrent(-100.0))
    bench.injector.inject("cooling_failure", 0, magnitude=0.0)
    run(bench.plant, 1200.0, dt_s=1.0)
    assert bench.temperatures(0).mean() > bench.temperatures(1).mean() + 2.0


def check_overtemperature(bench: Bench) -> None:
    bench.injector.inject("overtemperature", 2, magnitude=90.0)
    readings = []
    for _ in range(4):
        run(bench.plant, 300.0, dt_s=1.0)
        readings.append(bench.temperatures(2).mean())
    assert np.all(np.diff(readings) > 1.0)
    assert readings[-1] > 40.0
    assert bench.temperatures(1).mean() < 30.0  # neighbouring modules only through their own coolant


def check_dc_link_short(bench: Bench) -> None:
    bench.injector.inject("dc_link_short", magnitude=2.0)
    bench.plant.hv.command_contactors(main_plus=False, main_minus=True, precharge=True)
    run(bench.plant, 3.0, dt_s=0.01)
    reading = bench.pack_sensor.read()
    assert reading.dc_link_voltage_v < 0.1 * reading.pack_voltage_v


def check_insulation_fault(bench: Bench) -> None:
    bench.injector.inject("insulation_fault", magnitude=40e3)
    assert bench.pack_sensor.read().insulation_resistance_ohm == pytest.approx(40e3, rel=0.07)


def check_hvil_open(bench: Bench) -> None:
    bench.injector.inject("hvil_open")
    assert not bench.pack_sensor.read().hvil_closed


def welded(contactor: str) -> Callable[[Bench], None]:
    def check(bench: Bench) -> None:
        bench.injector.inject(f"welded_{contactor}")
        bench.plant.hv.command_contactors(False, False, False)
        feedback = bench.plant.hv.feedback()
        assert getattr(feedback, contactor)
        assert sum((feedback.main_plus, feedback.main_minus, feedback.precharge)) == 1
    return check


def check_welded_mains_keep_the_dc_link_live(bench: Bench) -> None:
    close_mains(bench.plant)
    run(bench.plant, 0.2)
    bench.injector.inject("welded_main_plus")
    bench.injector.inject("welded_main_minus")
    bench.plant.hv.command_contactors(False, False, False)
    run(bench.plant, 60.0, dt_s=1.0)
    reading = bench.pack_sensor.read()
    assert reading.dc_link_voltage_v == pytest.approx(reading.pack_voltage_v, rel=0.01)


def check_current_sensor_offset(bench: Bench) -> None:
    before = np.mean([bench.pack_sensor.read().current_a for _ in range(200)])
    bench.injector.inject("current_sensor_offset", magnitude=3.0)
    after = np.mean([bench.pack_sensor.read().current_a for _ in range(200)])
    assert after - before == pytest.approx(3.0, abs=0.05)
    assert bench.plant.current_a == 0.0


def check_open_wire(bench: Bench) -> None:
    bench.injector.inject("open_wire", 3, 4)
    reading = bench.afes[3].read()
    assert reading.cell_voltage_v[4] < 0.01
    assert reading.cell_voltage_v[5] == pytest.approx(5.0)  # both cells, clipped at full scale
    assert reading.cell_flags[4] & CELL_OPEN_WIRE


def check_stuck_cell_voltage(bench: Bench) -> None:
    close_mains(bench.plant)
    bench.plant.set_profile(ConstantCurrent(-100.0))
    bench.injector.inject("stuck_cell_voltage", 0, 2)
    frozen = bench.voltages(0)
    run(bench.plant, 120.0)
    now = bench.voltages(0)
    assert now[2] == frozen[2]
    assert np.all(np.delete(now - frozen, 2) < -0.01)


def check_stuck_temperature(bench: Bench) -> None:
    bench.injector.inject("stuck_temperature", 1, 2)
    frozen = bench.temperatures(1)
    bench.injector.inject("overtemperature", 1, magnitude=90.0)
    run(bench.plant, 600.0, dt_s=1.0)
    now = bench.temperatures(1)
    assert now[2] == frozen[2]
    assert np.all(np.delete(now - frozen, 2) > 5.0)


def check_nan_reading(bench: Bench) -> None:
    bench.injector.inject("nan_reading", 0, 7)
    reading = bench.afes[0].read()
    assert np.isnan(reading.cell_voltage_v[7]) and np.isfinite(np.delete(reading.cell_voltage_v, 7)).all()
    bench.injector.inject("nan_reading", 2, -1)
    reading = bench.afes[2].read()
    assert np.isnan(reading.cell_voltage_v).all() and reading.module_flags & MODULE_AFE_COMM_ERROR


def check_garbled_reading(bench: Bench) -> None:
    truth = bench.plant.module_truth(1).cell_voltage_v
    bench.injector.inject("garbled_reading", 1, -1)
    first, second = bench.voltages(1), bench.voltages(1)
    assert np.abs(first - truth).max() > 0.1
    assert not np.array_equal(first, second)
    assert np.all((first >= 0.0) & (first <= 5.0))


def check_thermistor_open(bench: Bench) -> None:
    bench.injector.inject("thermistor_open", 0, 3)
    reading = bench.afes[0].read()
    assert np.isnan(reading.temperature_degc[3]) and reading.module_flags & MODULE_THERMISTOR_FAULT


def check_module_silence(bench: Bench) -> None:
    bench.injector.inject("module_silence", 2)
    with pytest.raises(AfeCommunicationError):
        bench.afes[2].read()
    bench.afes[1].read()
    assert not bench.afes[2].diagnostics().ok
    bench.injector.clear("module_silence", 2)
    bench.afes[2].read()


CHECKS: dict[str, Callable[[Bench], None]] = {
    "cell_drift": drift(+1.0),
    "cooling_failure": check_cooling_failure,
    "overtemperature": check_overtemperature,
    "dc_link_short": check_dc_link_short,
    "insulation_fault": check_insulation_fault,
    "hvil_open": check_hvil_open,
    "welded_main_plus": welded("main_plus"),
    "welded_main_minus": welded("main_minus"),
    "welded_precharge": welded("precharge"),
    "current_sensor_offset": check_current_sensor_offset,
    "open_wire": check_open_wire,
    "stuck_cell_voltage": check_stuck_cell_voltage,
    "stuck_temperature": check_stuck_temperature,
    "nan_reading": check_nan_reading,
    "garbled_reading": check_garbled_reading,
    "thermistor_open": check_thermistor_open,
    "module_silence": check_module_silence,
}


def test_every_fault_has_a_physical_check() -> None:
    assert set(CHECKS) == set(FAULTS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_fault_shows_its_physical_effect(name: str) -> None:
    CHECKS[name](Bench())


def test_cell_drift_down_lowers_the_cell() -> None:
    drift(-1.0)(Bench())


def test_welded_mains_keep_the_dc_link_live() -> None:
    check_welded_mains_keep_the_dc_link_live(Bench())


def test_clearing_restores_healthy_behaviour() -> None:
    bench = Bench()
    healthy = bench.afes[0].read()
    for name, module, cell, magnitude in (("open_wire", 0, 3, math.nan), ("nan_reading", 0, -1, math.nan),
                                          ("insulation_fault", -1, -1, 1e3), ("hvil_open", -1, -1, math.nan),
                                          ("cooling_failure", 0, -1, 0.1)):
        bench.injector.inject(name, module, cell, magnitude)
    assert len(bench.injector.active) == 5
    bench.injector.clear_all()
    assert not bench.injector.active
    reading = bench.afes[0].read()
    np.testing.assert_allclose(reading.cell_voltage_v, healthy.cell_voltage_v, atol=0.002)
    assert not reading.cell_flags.any() and reading.module_flags == 0
    sensed = bench.pack_sensor.read()
    assert sensed.hvil_closed and sensed.insulation_resistance_ohm > 1e6
    np.testing.assert_array_equal(bench.plant.cells.thermal.cooling_w_per_k, bench.plant.sim.cooling_w_per_k)


@pytest.mark.parametrize(("request_args", "message"), [
    (("melt", 0, 0, math.nan), "unknown fault 'melt' (known: cell_drift"),
    (("open_wire", 4, 0, math.nan), "open_wire: module_id must be 0..3, got 4"),
    (("open_wire", 0, 12, math.nan), "open_wire: cell must be 0..11, got 12"),
    (("stuck_temperature", 0, 4, math.nan), "cell (the temperature sensor index) must be 0..3, got 4"),
    (("cell_drift", 0, 0, math.nan), "cell_drift: give a magnitude in A"),
    (("cooling_failure", 0, -1, 2.0), "magnitude must be 0..1 fraction, got 2"),
])
def test_bad_requests_are_refused_with_a_reason(request_args: tuple, message: str) -> None:
    ok, text = Bench().injector.handle(*request_args, clear=False)
    assert not ok and message in text


def test_faults_go_to_the_node_that_holds_their_target() -> None:
    bench = Bench()
    slave_only = FaultInjector(bench.plant.pack, afes={1: bench.afes[1]})
    ok, text = slave_only.handle("open_wire", 2, 0, math.nan, clear=False)
    assert not ok and "the slave node of module 2" in text
    ok, text = slave_only.handle("hvil_open", -1, -1, math.nan, clear=False)
    assert not ok and "the plant node" in text
    ok, text = slave_only.handle("open_wire", 1, 0, math.nan, clear=True)
    assert not ok and "is not active" in text
    assert slave_only.handle("open_wire", 1, 0, math.nan, clear=False) == (True, "injected fault open_wire module 1 cell 0")
