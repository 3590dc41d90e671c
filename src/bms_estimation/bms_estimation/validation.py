"""Accuracy of the estimator against truth data (PyBaMM DFN runs from tools/generate_truth.py).

Each cell of the batch is one realisation of the sensor errors: 30 points of initial SOC error,
2 mV voltage noise, 0.5 % current gain error and 50 mA current offset (signs drawn per
realisation) from a fixed seed. Run as a script to print the RMSE figures::

    .venv/bin/python -m bms_estimation.validation src/bms_estimation/test/fixtures/*_drive*.npz
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from bms_common.pack_config import BalancingConfig, PackConfig

from .cell_model import default_parameters
from .estimator import Estimator

INITIAL_SOC_ERROR = 0.30
VOLTAGE_NOISE_V = 0.002
CURRENT_GAIN_ERROR = 0.005
CURRENT_OFFSET_A = 0.05
CHEMISTRY_OF_PARAMETER_SET = {"Chen2020": "NMC", "Prada2013": "LFP"}


def soc_error(truth_path: Path, realisations: int = 8, seed: int = 6, start_s: int = 0,
              initial_error: float | None = None, **tuning_changes: float) -> np.ndarray:
    """Estimated minus true SOC at every 1 s sample from start_s, one column per realisation.

    initial_error is the estimate's starting offset from the truth (clipped to 0..1); by default
    30 points towards the middle, so that the start is a valid SOC.
    """
    truth = np.load(truth_path)
    chemistry = CHEMISTRY_OF_PARAMETER_SET[str(truth["parameter_set"])]
    rng = np.random.default_rng(seed)
    soc_true = truth["soc_true"][start_s:].astype(float)
    current_a = truth["current_a"][start_s:].astype(float)
    voltage_v = truth["voltage_v"][start_s:].astype(float)
    pack = PackConfig(name=truth_path.stem, source=truth_path, chemistry=chemistry, modules=1,
                      cells_per_module=realisations,
                      nominal_capacity_ah=default_parameters(chemistry).nominal_capacity_ah,
                      temperature_sensors=(tuple(range(realisations)),), limits=chemistry.lower(),
                      balancing=BalancingConfig())
    if initial_error is None:
        initial_error = -INITIAL_SOC_ERROR * float(np.sign(soc_true[0] - 0.5))
    initial_soc = float(np.clip(soc_true[0] + initial_error, 0.0, 1.0))
    est = Estimator(pack, initial_soc=initial_soc)
    if tuning_changes:
        est = Estimator(pack, tuning=replace(est.tuning, **tuning_changes), initial_soc=initial_soc)
    gain = 1.0 + CURRENT_GAIN_ERROR * rng.choice([-1.0, 1.0], realisations)
    offset_a = CURRENT_OFFSET_A * rng.choice([-1.0, 1.0], realisations)
    errors = np.empty((soc_true.size, realisations))
    errors[0] = initial_soc - soc_true[0]
    for k in range(1, soc_true.size):
        measured_v = voltage_v[k] + VOLTAGE_NOISE_V * rng.standard_normal(realisations)
        est.step(measured_v, current_a[k] * gain + offset_a, 1.0)
        errors[k] = est.soc - soc_true[k]
    return errors


def rmse_after(errors: np.ndarray, start_s: int) -> float:
    return float(np.sqrt(np.mean(errors[start_s:] ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description="SOC RMSE of the estimator on truth data")
    parser.add_argument("truth", type=Path, nargs="+", help="<chem>_drive*.npz files")
    parser.add_argument("--start-s", type=int, default=0, help="start the estimator this far into the profile")
    parser.add_argument("--initial-error", type=float, default=None,
                        help="initial SOC error, signed (default: 0.3 towards the middle)")
    args = parser.parse_args()
    print(f"{'truth file':<28} {'hours':>5} {'RMSE after 10 min':>18} {'after 30 min':>13} "
          f"{'max |err| after 30 min':>23}")
    for path in args.truth:
        errors = soc_error(path, start_s=args.start_s, initial_error=args.initial_error)
        print(f"{str(path)[-28:]:<28} {errors.shape[0] / 3600:>5.1f} {100 * rmse_after(errors, 600):>17.2f}% "
              f"{100 * rmse_after(errors, 1800):>12.2f}% {100 * np.abs(errors[1800:]).max():>22.2f}%")


if __name__ == "__main__":
    main()
