"""Estimator behaviour the node relies on: masking, persistence, start-up, pack SOC/SOH and SOP."""

from __future__ import annotations

import numpy as np
import pytest

from bms_estimation import ekf
from bms_estimation.estimator import Estimator
from bms_estimation.pack import pack_soc, pack_soh
from bms_estimation.sop import SopLimits

NMC_LIMITS = SopLimits(cell_voltage_min_v=3.0, cell_voltage_max_v=4.2, charge_current_max_a=5.0,
                       discharge_current_max_a=15.0)


def drive(est: Estimator, steps: int, seed: int, corrupt_module: int | None = None) -> None:
    rng = np.random.default_rng(seed)
    per_module = est.pack.cells_per_module
    for k in range(steps):
        current_a = -5.0 if (k // 30) % 2 else 2.0
        voltage_v = 3.7 + 0.002 * rng.standard_normal(est.cells) + 0.03 * current_a
        if corrupt_module is not None:
            cells = slice(corrupt_module * per_module, (corrupt_module + 1) * per_module)
            voltage_v[cells] = np.nan if k % 2 else 1e6
        est.step(voltage_v, current_a, 0.1)


@pytest.mark.parametrize("backend", ["numpy", None])
def test_a_missing_or_garbage_module_leaves_the_other_cells_untouched(backend, make_pack) -> None:
    clean = Estimator(make_pack(modules=3), backend=backend, initial_soc=0.6)
    broken = Estimator(make_pack(modules=3), backend=backend, initial_soc=0.6)
    drive(clean, 200, seed=1)
    drive(broken, 200, seed=1, corrupt_module=1)
    others = np.r_[0:4, 8:12]
    np.testing.assert_array_equal(broken.state[:, others], clean.state[:, others])
    assert np.all(np.isfinite(broken.soc))


def test_unmeasured_cells_are_coulomb_counted(make_pack) -> None:
    est = Estimator(make_pack(), initial_soc=0.9, initial_soc_std=0.01)
    for _ in range(36):
        # 48 minutes at 1C discharge, nothing measured
        est.step(np.full(est.cells, np.nan), -est.params.capacity_ah, 80.0)
    np.testing.assert_allclose(est.soc, 0.9 - 0.8, atol=1e-12)
    assert np.all(est.soc_std > 0.01)


@pytest.mark.parametrize("backend", ["numpy", None])
def test_unknown_current_holds_charge_and_skips_the_update(backend, make_pack) -> None:
    est = Estimator(make_pack(), backend=backend, initial_soc=0.5)
    current_a = np.full(est.cells, -5.0)
    current_a[:4] = np.nan  # module 0's current could not be aligned
    est.step(np.full(est.cells, 3.0), current_a, 1.0)
    np.testing.assert_array_equal(est.soc[:4], 0.5)
    assert np.all(est.soc[4:] != 0.5)
    assert np.all(np.isfinite(np.delete(est.state, ekf.PREV_V, axis=0)))  # PREV_V: NaN = none


def test_first_soc_comes_from_the_open_circuit_voltage(make_pack) -> None:
    est = Estimator(make_pack())
    rest_voltage_v = est.params.ocv.voltage_v(np.linspace(0.2, 0.9, est.cells))
    est.step(rest_voltage_v, 0.0, 0.1)
    np.testing.assert_allclose(est.soc, np.linspace(0.2, 0.9, est.cells), atol=0.01)


def test_first_soc_under_load_allows_for_the_polarisation_it_cannot_see(make_pack) -> None:
    # A cell at 50 % that has been charged at 0.5C for minutes: its voltage carries R0 and both
    # RC voltages in steady state. Taken as OCV + R0 i alone (before), the SOC came out high.
    est = Estimator(make_pack())
    i_a = 0.5 * est.params.capacity_ah
    polarised_v = est.params.ocv.voltage_v(0.5) + (est.params.r0_ohm + est.params.r1_ohm + est.params.r2_ohm) * i_a
    naive_soc = float(est.params.ocv.soc_at(polarised_v - est.params.r0_ohm * i_a))
    est.step(np.full(est.cells, polarised_v), i_a, 0.1)
    assert np.all(np.abs(est.soc - 0.5) < 0.6 * abs(naive_soc - 0.5))
    # The RC voltages start at half their steady state, uncertain by a uniform spread over it.
    assert np.all(est.state[ekf.V1] > 0.0) and np.all(est.state[ekf.P11] > 1e-4 * 0.5)
    rested = Estimator(make_pack())
    rested.step(est.params.ocv.voltage_v(np.full(est.cells, 0.5)), 0.0, 0.1)
    assert np.all(rested.state[ekf.V1] == 0.0)  # at rest nothing changes


def test_a_load_seen_beginning_starts_the_rc_voltages_from_rest(make_pack) -> None:
    # The node holds the first voltages until it has seen a second of current: a 0.8C discharge
    # that begins in that second is integrated from rest, not guessed at half its steady state.
    est, guessing = Estimator(make_pack()), Estimator(make_pack())
    p, i_a, dt_s = est.params, -0.8 * est.params.capacity_ah, 0.1
    unmeasured = np.full(est.cells, np.nan)
    for current_a in (0.0,) * 5 + (i_a,) * 4:
        est.step(unmeasured, current_a, dt_s)
    assert est.awaiting_first_soc
    loaded_for_s = 5 * dt_s  # four predictions and the step with the first voltage
    rc_v = sum(r * (1 - np.exp(-loaded_for_s / tau)) for r, tau in ((p.r1_ohm, p.tau1_s), (p.r2_ohm, p.tau2_s)))
    voltage_v = np.full(est.cells, p.ocv.voltage_v(0.5) + (p.r0_ohm + rc_v) * i_a)
    est.step(voltage_v, i_a, dt_s)
    guessing.step(voltage_v, i_a, dt_s)
    np.testing.assert_allclose(est.soc, 0.5 + i_a * dt_s / 3600 / p.capacity_ah, atol=0.005)
    assert np.all(np.abs(guessing.soc - 0.5) > 0.03)  # the same voltage with a guess: points off
    assert not est.awaiting_first_soc


def test_a_given_soc_replaces_the_first_voltage_and_a_restored_soc(make_pack) -> None:
    est = Estimator(make_pack())
    est.set_soc(np.linspace(0.1, 0.8, est.cells), 0.02)
    assert not est.awaiting_first_soc
    np.testing.assert_allclose(est.soc, np.linspace(0.1, 0.8, est.cells))
    np.testing.assert_allclose(est.filter_soc_std, 0.02)
    assert np.all(est.soc_std > est.filter_soc_std)  # plus the model's own error, never less
    est.set_soc(0.5, 0.1)
    np.testing.assert_allclose(est.soc, 0.5)


def test_state_survives_a_restart_through_savez(tmp_path, make_pack) -> None:
    est = Estimator(make_pack(), initial_soc=0.7)
    drive(est, 300, seed=2)
    path = tmp_path / "estimator.npz"
    np.savez(path, **est.state_dict())
    restarted = Estimator(make_pack())
    with np.load(path) as saved:
        restarted.load_state(saved)
    np.testing.assert_array_equal(restarted.state, est.state)
    drive(est, 10, seed=3)
    drive(restarted, 10, seed=3)
    np.testing.assert_array_equal(restarted.state, est.state)


def test_state_of_another_pack_is_refused(make_pack) -> None:
    saved = Estimator(make_pack(modules=2)).state_dict()
    with pytest.raises(ValueError, match="delete the state file"):
        Estimator(make_pack(modules=3)).load_state(saved)


def test_pack_soc_is_limited_by_the_weakest_cells() -> None:
    capacity_ah = np.array([5.0, 4.0, 5.0])
    soc = np.array([0.5, 0.5, 0.9])
    # 2.0 Ah until cell 1 is empty, 0.5 Ah until cell 2 is full.
    assert pack_soc(soc, capacity_ah) == pytest.approx(2.0 / 2.5)
    assert pack_soc(np.full(3, 0.3), np.full(3, 5.0)) == pytest.approx(0.3)
    assert pack_soh(capacity_ah, 5.0) == pytest.approx(0.8)


def test_power_limits_shrink_with_horizon_and_respect_limits(make_pack) -> None:
    est = Estimator(make_pack(), initial_soc=0.5)
    est.step(est.params.ocv.voltage_v(np.full(est.cells, 0.5)), 0.0, 1.0, np.full(est.cells, 25.0))
    limits = est.power_limits(NMC_LIMITS)
    np.testing.assert_array_equal(limits.horizons_s, [2.0, 10.0, 30.0])
    assert np.all(np.diff(limits.max_discharge_current_a) <= 1e-9)
    assert np.all(limits.max_charge_current_a <= NMC_LIMITS.charge_current_max_a)
    assert np.all(limits.max_discharge_current_a > 0.0)
    assert np.all(limits.max_discharge_power_w > 0.0)
    # Discharging at the 10 s limit for 10 s brings the weakest cell to the voltage limit.
    s = est.state
    i_a = -limits.max_discharge_current_a[1]
    if i_a > -NMC_LIMITS.discharge_current_max_a:
        soc = est.soc + i_a * 10.0 / 3600.0 / est.capacity_ah
        v1 = s[1] * np.exp(-10.0 / est.tau1_s) + est.r1_ohm * (1 - np.exp(-10.0 / est.tau1_s)) * i_a
        v2 = s[2] * np.exp(-10.0 / est.tau2_s) + est.r2_ohm * (1 - np.exp(-10.0 / est.tau2_s)) * i_a
        voltage_v = est.params.ocv.voltage_v(soc) + v1 + v2 + est.resistance_ohm * i_a
        assert voltage_v.min() == pytest.approx(NMC_LIMITS.cell_voltage_min_v, abs=0.01)


def test_no_charge_power_outside_the_charge_temperature_window(make_pack) -> None:
    est = Estimator(make_pack(), initial_soc=0.5)
    temperature_degc = np.full(est.cells, 25.0)
    temperature_degc[3] = -5.0
    est.step(np.full(est.cells, 3.6), 0.0, 1.0, temperature_degc)
    limits = est.power_limits(NMC_LIMITS)
    assert np.all(limits.max_charge_current_a == 0.0)
    assert np.all(limits.max_discharge_current_a > 0.0)


def test_an_unnamed_backend_is_numpy_below_compiled_min_cells() -> None:
    assert ekf.select_backend(None, 48)[0] == "numpy"
    assert ekf.select_backend(None, None)[0] == "numpy"
    large = ekf.select_backend(None, ekf.COMPILED_MIN_CELLS)[0]
    assert large == list(ekf.available_backends())[-1]
    with pytest.raises(ValueError, match="not available"):
        ekf.select_backend("fortran", 48)
