"""SOC accuracy against PyBaMM DFN truth (fixtures from tools/generate_truth.py; no PyBaMM needed).

Two drive profiles per chemistry (seeds 6 and 7 of the generator); the scenario and its sensor
errors are in bms_estimation.validation.
"""

from __future__ import annotations

import pytest

from bms_estimation.validation import rmse_after, soc_error


@pytest.mark.parametrize("profile", ["drive", "drive_seed7"])
@pytest.mark.parametrize(("chemistry", "after_s", "target"), [
    ("nmc", 600, 0.02),
    ("nmc", 1800, 0.01),
    ("lfp", 1800, 0.03),
])
def test_soc_rmse_against_physics_model(chemistry, after_s, target, profile, fixtures_dir) -> None:
    errors = soc_error(fixtures_dir / f"{chemistry}_{profile}.npz")
    assert rmse_after(errors, after_s) <= target
