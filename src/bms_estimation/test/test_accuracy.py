"""SOC accuracy against PyBaMM DFN truth (fixtures from tools/generate_truth.py; no PyBaMM needed).

Each cell of the batch is one realisation of the sensor errors the issue specifies: 30 points of
initial SOC error, 2 mV voltage noise, 0.5 % current gain error and 50 mA current offset (signs
drawn per realisation), from a fixed seed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bms_estimation.cell_model import default_parameters
from bms_estimation.estimator import Estimator

REALISATIONS = 8
INITIAL_SOC_ERROR = 0.30


def soc_error(fixture: Path, make_pack, seed: int = 6, **tuning_changes: float) -> np.ndarray:
    """Estimated minus true SOC, one column per realisation, at 1 s."""
    truth = np.load(fixture)
    chemistry = fixture.name.split("_")[0].upper()
    rng = np.random.default_rng(seed)
    soc_true = truth["soc_true"].astype(float)
    current_a = truth["current_a"].astype(float)
    voltage_v = truth["voltage_v"].astype(float)
    nominal_ah = default_parameters(chemistry).nominal_capacity_ah
    pack = make_pack(chemistry, modules=1, cells_per_module=REALISATIONS, nominal_capacity_ah=nominal_ah)
    # Start 30 points off, towards the middle so that the start is a valid SOC.
    initial_soc = soc_true[0] - INITIAL_SOC_ERROR * np.sign(soc_true[0] - 0.5)
    est = Estimator(pack, initial_soc=initial_soc)
    if tuning_changes:
        est = Estimator(pack, tuning=replace(est.tuning, **tuning_changes), initial_soc=initial_soc)
    gain = 1.0 + 0.005 * rng.choice([-1.0, 1.0], REALISATIONS)
    offset_a = 0.05 * rng.choice([-1.0, 1.0], REALISATIONS)
    errors = np.empty((soc_true.size, REALISATIONS))
    errors[0] = initial_soc - soc_true[0]
    for k in range(1, soc_true.size):
        measured_v = voltage_v[k] + 0.002 * rng.standard_normal(REALISATIONS)
        est.step(measured_v, current_a[k] * gain + offset_a, 1.0)
        errors[k] = est.soc - soc_true[k]
    return errors


def rmse_after(errors: np.ndarray, start_s: int) -> float:
    return float(np.sqrt(np.mean(errors[start_s:] ** 2)))


@pytest.mark.parametrize(("chemistry", "after_s", "target"), [
    ("nmc", 600, 0.02),
    ("nmc", 1800, 0.01),
    ("lfp", 1800, 0.03),
])
def test_soc_rmse_against_physics_model(chemistry, after_s, target, fixtures_dir, make_pack) -> None:
    errors = soc_error(fixtures_dir / f"{chemistry}_drive.npz", make_pack)
    assert rmse_after(errors, after_s) <= target
