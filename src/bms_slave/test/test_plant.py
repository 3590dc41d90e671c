"""Pack plant: contactors, precharge, loads, chargers and current limits."""

from __future__ import annotations

import numpy as np
import pytest
from slave_test_helpers import close_mains, pack_with, plant_of, run

from bms_common.pack_config import ConfigError
from bms_slave.load import ConstantCurrent
from bms_slave.plant import PackPlant
from bms_slave.sim_config import load_sim_config


def test_open_contactors_give_zero_current() -> None:
    plant = plant_of()
    plant.set_profile(ConstantCurrent(-80.0))
    run(plant, 5.0)
    assert plant.current_a == 0.0
    close_mains(plant)
    run(plant, 1.0)
    assert plant.current_a == pytest.approx(-80.0)
    plant.hv.command_contactors(main_plus=False, main_minus=True, precharge=False)
    run(plant, 1.0)
    assert plant.current_a == 0.0


def precharge_ratio(plant: PackPlant, seconds: float) -> float:
    plant.hv.command_contactors(main_plus=False, main_minus=True, precharge=True)
    run(plant, seconds, dt_s=0.01)
    return plant.hv.dc_link_voltage_v / plant.pack_voltage_v


def test_precharge_reaches_95_percent() -> None:
    plant = plant_of()
    tau_s = plant.sim.precharge_resistance_ohm * plant.sim.dc_link_capacitance_f
    assert precharge_ratio(plant, 0.5 * tau_s) < 0.5
    assert precharge_ratio(plant, 3.5 * tau_s) > 0.95
    # Precharge current flows out of the pack and fades as the DC link fills.
    assert -0.05 * plant.pack_voltage_v / plant.sim.precharge_resistance_ohm < plant.current_a < 0.0


def test_precharge_cannot_finish_with_a_short_on_the_dc_link() -> None:
    plant = plant_of()
    plant.hv.dc_link_short_ohm = 5.0
    assert precharge_ratio(plant, 5.0) < 0.1


def test_dc_link_follows_pack_with_mains_closed_and_decays_when_open() -> None:
    plant = plant_of()
    close_mains(plant)
    run(plant, 0.2)
    assert plant.hv.dc_link_voltage_v == pytest.approx(plant.pack_voltage_v, rel=0.01)
    plant.hv.command_contactors(False, False, False)
    before = plant.hv.dc_link_voltage_v
    tau_s = plant.sim.dc_link_bleed_ohm * plant.sim.dc_link_capacitance_f
    run(plant, tau_s, dt_s=1.0)
    assert plant.hv.dc_link_voltage_v == pytest.approx(before / np.e, rel=0.02)


def test_welded_contactor_keeps_feedback_closed_and_current_flowing() -> None:
    plant = plant_of()
    close_mains(plant)
    plant.set_profile(ConstantCurrent(-30.0))
    plant.hv.set_welded("main_plus", True)
    plant.hv.set_welded("main_minus", True)
    plant.hv.command_contactors(False, False, False)
    run(plant, 1.0)
    feedback = plant.hv.feedback()
    assert feedback.main_plus and feedback.main_minus and not feedback.precharge
    assert plant.current_a == pytest.approx(-30.0)


def test_drive_cycle_accelerates_cruises_regenerates_and_rests() -> None:
    plant = plant_of()
    close_mains(plant)
    plant.set_profile(plant.make_profile("drive"))
    currents = []
    for _ in range(2400):
        plant.step(0.1)
        currents.append(plant.current_a)
    currents_c = np.asarray(currents) / plant.pack.nominal_capacity_ah
    assert currents_c.min() < -2.0           # hard acceleration
    assert currents_c.max() > 0.5            # regeneration
    assert np.mean(np.abs(currents_c) < 1e-9) > 0.1  # standing still
    assert -1.0 < currents_c.mean() < -0.2


def test_drive_cycle_obeys_current_limits() -> None:
    plant = plant_of()
    close_mains(plant)
    plant.set_profile(plant.make_profile("drive"))
    plant.set_current_limits(charge_a=10.0, discharge_a=25.0)
    currents = []
    for _ in range(2400):
        plant.step(0.1)
        currents.append(plant.current_a)
    assert min(currents) == pytest.approx(-25.0)
    assert max(currents) == pytest.approx(10.0)
    plant.set_current_limits(None, float("nan"))
    run(plant, 240.0)
    with pytest.raises(ValueError, match="magnitudes"):
        plant.set_current_limits(-1.0, 10.0)


def test_cccv_charging_tapers_and_stops() -> None:
    plant = plant_of(initial_soc=0.85)
    close_mains(plant)
    charger = plant.make_profile("cccv")
    plant.set_profile(charger)
    cv_v = plant.cells.chemistry.charge_voltage_v
    currents, max_cell_v = [], []
    for _ in range(3 * 3600):
        plant.step(1.0)
        currents.append(plant.current_a)
        max_cell_v.append(plant.cells.voltage_v.max())
        if plant.current_a == 0.0:
            break
    currents_a = np.asarray(currents)
    assert currents_a[0] == pytest.approx(0.5 * plant.pack.nominal_capacity_ah)
    assert currents_a[-1] == 0.0
    cv_phase = currents_a[np.argmax(np.asarray(max_cell_v) > cv_v - 0.002):-1]
    assert cv_phase.size > 100
    assert cv_phase[-1] < 0.2 * cv_phase[0]  # tapering
    assert max(max_cell_v) < cv_v + 0.005


def test_cccv_obeys_charge_limit() -> None:
    plant = plant_of(initial_soc=0.5)
    close_mains(plant)
    plant.set_profile(plant.make_profile("cccv"))
    plant.set_current_limits(charge_a=8.0, discharge_a=0.0)
    run(plant, 60.0, dt_s=1.0)
    assert plant.current_a == pytest.approx(8.0)


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="known: rest, constant, drive, cccv"):
        plant_of().make_profile("sprint")


@pytest.mark.parametrize(("key", "value", "message"), [
    ("initial_soc", 1.5, "simulation.initial_soc must be 0..1, got 1.5"),
    ("seed", "x", "simulation.seed must be an integer, got 'x'"),
    ("temperature_sensor", "median", "simulation.temperature_sensor must be one of mean, max"),
    ("warp_drive", 1, "simulation.warp_drive is not a known key"),
])
def test_simulation_settings_are_validated(key: str, value: object, message: str) -> None:
    pack = pack_with(**{key: value})
    with pytest.raises(ConfigError, match="demo.yaml: ") as error:
        load_sim_config(pack)
    assert message in str(error.value)


def test_all_shipped_packs_simulate() -> None:
    for name in ("demo", "nmc_16x12", "lfp"):
        plant = plant_of(name)
        close_mains(plant)
        plant.set_profile(plant.make_profile("drive"))
        run(plant, 10.0)
        assert np.all(np.isfinite(plant.cells.voltage_v))
