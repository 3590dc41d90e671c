"""Online SOH: resistance and capacity learnt from driving, against a simulated ECM cell."""

from __future__ import annotations

import numpy as np

from bms_estimation.cell_model import CellParameters
from bms_estimation.estimator import Estimator

DT_S = 1.0


def simulate(params: CellParameters, capacity_ah: np.ndarray, r0_ohm: np.ndarray, current_a: np.ndarray,
             soc0: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Voltages of cells that follow the ECM with the given capacity and R0, plus 2 mV noise."""
    a1, a2 = np.exp(-DT_S / params.tau1_s), np.exp(-DT_S / params.tau2_s)
    soc = np.full(capacity_ah.size, soc0)
    v1 = np.zeros_like(soc)
    v2 = np.zeros_like(soc)
    voltage_v = np.empty((current_a.size, soc.size))
    for k, i_a in enumerate(current_a):
        soc = soc + i_a * DT_S / 3600.0 / capacity_ah
        v1 = a1 * v1 + params.r1_ohm * (1 - a1) * i_a
        v2 = a2 * v2 + params.r2_ohm * (1 - a2) * i_a
        voltage_v[k] = params.ocv.voltage_v(soc) + v1 + v2 + r0_ohm * i_a
    return voltage_v + 0.002 * rng.standard_normal(voltage_v.shape), soc


def cycling_current(capacity_ah: float, cycles: int, rng: np.random.Generator) -> np.ndarray:
    """Pulsed discharges and charges of 40 % SOC between 20-minute rests."""
    pieces = []
    for _ in range(cycles):
        for sign in (-1.0, 1.0):
            pulses = np.repeat(rng.uniform(0.3, 1.5, 80) * capacity_ah * sign, 20)
            pulses *= 0.4 * capacity_ah * 3600.0 / np.abs(pulses).sum()
            pieces += [pulses, np.zeros(1200)]
    return np.concatenate(pieces)


def test_capacity_and_resistance_are_learnt_with_shrinking_uncertainty(make_pack) -> None:
    rng = np.random.default_rng(11)
    pack = make_pack(modules=1, cells_per_module=4)
    est = Estimator(pack, initial_soc=0.7)
    true_capacity_ah = est.params.capacity_ah * np.array([1.0, 0.92, 0.85, 0.95])
    true_r0_ohm = est.params.r0_ohm * np.array([1.0, 1.3, 1.6, 0.8])
    current_a = cycling_current(est.params.capacity_ah, cycles=6, rng=rng)
    voltage_v, _ = simulate(est.params, true_capacity_ah, true_r0_ohm, current_a, 0.7, rng)
    capacity_std_start = est.capacity_std_ah.copy()
    resistance_std_start = est.resistance_std_ohm.copy()
    for k in range(current_a.size):
        est.step(voltage_v[k], current_a[k], DT_S)
    np.testing.assert_allclose(est.resistance_ohm, true_r0_ohm, rtol=0.05)
    np.testing.assert_allclose(est.capacity_ah, true_capacity_ah, rtol=0.03)
    np.testing.assert_allclose(est.soh, est.capacity_ah / pack.nominal_capacity_ah)
    assert np.all(est.capacity_std_ah < 0.5 * capacity_std_start)
    assert np.all(est.resistance_std_ohm < 0.2 * resistance_std_start)
    assert est.pack_soh() == est.soh.min()
