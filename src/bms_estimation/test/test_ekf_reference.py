"""The batched EKF is the textbook EKF: it matches filterpy run cell by cell, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from filterpy.kalman import ExtendedKalmanFilter

from bms_estimation import ekf
from bms_estimation.ekf import FilterTuning, available_backends
from bms_estimation.estimator import Estimator

CELLS = 6
STEPS = 300
DT_S = 1.0


def drive(rng: np.random.Generator, steps: int, cells: int) -> tuple[np.ndarray, np.ndarray]:
    """A current with steps and rests, voltages around the NMC plateau, and some NaN readings."""
    current_a = np.repeat(rng.uniform(-12.0, 6.0, steps // 10), 10)
    current_a[rng.random(steps) < 0.2] = 0.0
    voltage_v = 3.65 + 0.03 * rng.standard_normal((steps, cells)) + 0.004 * current_a[:, None]
    voltage_v[rng.random((steps, cells)) < 0.1] = np.nan
    voltage_v[50:70, 2] = np.nan  # a module that stops reporting for a while
    return current_a, voltage_v


def filterpy_reference(est: Estimator, soc0: np.ndarray, current_a: np.ndarray,
                       voltage_v: np.ndarray) -> np.ndarray:
    """Run filterpy's ExtendedKalmanFilter per cell with the same model and noise."""
    t = est.tuning
    ocv = est.params.ocv
    coef = ekf.rc_coefficients(est.tau1_s, est.r1_ohm, est.tau2_s, est.r2_ohm, DT_S, t.soc_lag_per_c,
                                t.nominal_capacity_ah)
    out = np.empty((current_a.size, voltage_v.shape[1], 3))
    for cell in range(voltage_v.shape[1]):
        kf = ExtendedKalmanFilter(dim_x=3, dim_z=1, dim_u=1)
        kf.x = np.array([[soc0[cell]], [0.0], [0.0]])
        kf.P = np.diag(est.state[[ekf.P00, ekf.P11, ekf.P22], cell])
        a1, g1, a2, g2, lag = coef[[ekf.A1, ekf.G1, ekf.A2, ekf.G2, ekf.SOC_LAG], cell]
        r0, capacity_ah = est.state[ekf.R0, cell], est.state[ekf.CAP, cell]
        b0 = DT_S / (3600.0 * capacity_ah)
        kf.F = np.diag([1.0, a1, a2])
        kf.B = np.array([[b0], [g1], [g2]])
        for k, i_a in enumerate(current_a):
            sig_i = t.current_noise_a + t.current_gain_error * abs(i_a)
            rc_q = t.rc_noise_v2_per_s * DT_S
            kf.Q = np.diag([(sig_i * b0) ** 2 * t.current_error_time_s / DT_S, rc_q, rc_q])
            kf.predict(u=np.array([[i_a]]))
            y = voltage_v[k, cell]
            if np.isfinite(y):
                slope = float(ocv.slope_v_per_soc(kf.x[0, 0]))
                model_v = (t.model_error_v + t.model_error_v_per_c * abs(i_a) / t.nominal_capacity_ah
                           + t.model_error_per_polarisation * abs(kf.x[1, 0] + kf.x[2, 0]))
                e = y - float(ocv.voltage_v(kf.x[0, 0])) - kf.x[1, 0] - kf.x[2, 0] - r0 * i_a
                flat_weight = min(1.0, (t.flat_bias_sigmas * model_v) ** 2 / e**2) if e else 1.0
                r_v2 = t.voltage_noise_v**2 + model_v**2 * (1.0 + flat_weight * t.flat_slope_v**2 / (slope**2 + 1e-12))
                r_v2 += (min(slope, t.jacobian_max_v) * lag * abs(kf.x[1, 0] + kf.x[2, 0])) ** 2
                kf.update(
                    np.array([[y]]),
                    HJacobian=lambda x: np.array([[min(float(ocv.slope_v_per_soc(x[0, 0])), t.jacobian_max_v), 1.0, 1.0]]),
                    Hx=lambda x, i=i_a, r=r0: np.array([[float(ocv.voltage_v(x[0, 0])) + x[1, 0] + x[2, 0] + r * i]]),
                    R=r_v2,
                )
            out[k, cell] = kf.x[:, 0]
    return out


@pytest.mark.parametrize("backend", list(available_backends()))
def test_batched_ekf_matches_filterpy_cell_by_cell(backend: str, make_pack) -> None:
    rng = np.random.default_rng(6)
    current_a, voltage_v = drive(rng, STEPS, CELLS)
    soc0 = rng.uniform(0.3, 0.9, CELLS)
    tuning = FilterTuning(nominal_capacity_ah=5.0, learn_r0=False, learn_capacity=False, capacity_window=1e9)
    est = Estimator(make_pack(cells_per_module=3), tuning=tuning, backend=backend, initial_soc=soc0)
    expected = filterpy_reference(est, soc0, current_a, voltage_v)
    for k in range(STEPS):
        est.step(voltage_v[k], current_a[k], DT_S)
        got = est.state[[ekf.SOC, ekf.V1, ekf.V2]].T
        np.testing.assert_allclose(got, expected[k], rtol=0.0, atol=1e-9)
