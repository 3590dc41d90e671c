"""Every installed backend runs the same full step (EKF, R0 and capacity learning) to 1e-9."""

from __future__ import annotations

import numpy as np
import pytest

from bms_estimation.ekf import STATE_NAMES, available_backends
from bms_estimation.estimator import Estimator


def run(backend: str, make_pack, steps: int = 2500) -> np.ndarray:
    rng = np.random.default_rng(3)
    cells = 40
    est = Estimator(make_pack(modules=4, cells_per_module=10), backend=backend, initial_soc=rng.uniform(0.2, 0.9, cells))
    current_a = np.repeat(rng.uniform(-15.0, 8.0, steps // 20), 20) - 2.0
    for k in range(steps):
        voltage_v = est.params.ocv.voltage_v(0.6 - 0.2 * k / steps) + 0.02 * rng.standard_normal(cells)
        voltage_v += 0.03 * current_a[k] / 5.0
        voltage_v[rng.random(cells) < 0.05] = np.nan
        if 100 <= k < 300:
            voltage_v[10:20] = np.nan  # a module drops out
        est.step(voltage_v, current_a[k] * (1.0 + 0.01 * rng.standard_normal(cells)), 1.0)
    return est.state.copy()


@pytest.mark.skipif(len(available_backends()) < 2, reason="only one backend installed")
def test_backends_agree_to_1e9(make_pack) -> None:
    reference = run("numpy", make_pack)
    for backend in list(available_backends())[1:]:
        got = run(backend, make_pack)
        for row, name in enumerate(STATE_NAMES):
            np.testing.assert_allclose(got[row], reference[row], rtol=0.0, atol=1e-9, err_msg=f"{backend}: {name}")
    # The run exercised the learning paths, so the agreement covers them.
    assert np.any(reference[STATE_NAMES.index("capacity_ah")] != 5.0)
    assert np.any(reference[STATE_NAMES.index("r0_ohm")] != reference[STATE_NAMES.index("r0_ohm")][0])
