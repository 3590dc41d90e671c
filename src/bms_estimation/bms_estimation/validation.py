"""Accuracy of the estimator against truth data (PyBaMM DFN runs from tools/generate_truth.py).

Each cell of the batch is one realisation of the sensor errors: 30 points of initial SOC error,
2 mV voltage noise, 0.5 % current gain error and 50 mA current offset (signs drawn per
realisation) from a fixed seed. ``realistic_sensors`` adds what issue 19's study used: a voltage
offset of up to 2 mV per cell, 100 uV resolution and 10 mA of current noise, with the gain and
offset drawn uniformly within their bounds. ``initial_error="own"`` starts the estimator as the
node does without a given SOC: from its first voltage, whatever the load. Run as a script to
print RMSE, the coverage of the published SOC uncertainty and of the capacity's::

    .venv/bin/python -m bms_estimation.validation src/bms_estimation/test/fixtures/*_drive*.npz
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bms_common.pack_config import BalancingConfig, PackConfig

from .cell_model import default_parameters
from .estimator import Estimator

INITIAL_SOC_ERROR = 0.30
VOLTAGE_NOISE_V = 0.002
CURRENT_GAIN_ERROR = 0.005
CURRENT_OFFSET_A = 0.05
VOLTAGE_OFFSET_V = 0.002  # realistic_sensors: bounds of a per-cell offset
VOLTAGE_RESOLUTION_V = 100e-6
CURRENT_NOISE_A = 0.01
CHEMISTRY_OF_PARAMETER_SET = {"Chen2020": "NMC", "Prada2013": "LFP"}


@dataclass
class Run:
    """One validation run, one row per 1 s sample and one column per realisation."""

    soc_error: np.ndarray  # estimated minus true SOC
    soc_std: np.ndarray  # the published SOC uncertainty
    capacity_error_ah: np.ndarray  # learnt minus true (PyBaMM stoichiometric) capacity
    capacity_std_ah: np.ndarray
    true_capacity_ah: float


def soc_error(truth_path: Path, realisations: int = 8, seed: int = 6, start_s: int = 0,
              initial_error: float | str | None = None, **tuning_changes: float) -> np.ndarray:
    """Estimated minus true SOC at every 1 s sample from start_s, one column per realisation.

    initial_error is the estimate's starting offset from the truth (clipped to 0..1); by default
    30 points towards the middle, so that the start is a valid SOC; "own": from the first voltage.
    """
    return run(truth_path, realisations, seed, start_s, initial_error, **tuning_changes).soc_error


def run(truth_path: Path, realisations: int = 8, seed: int = 6, start_s: int = 0,
        initial_error: float | str | None = None, realistic_sensors: bool = False,
        history_s: int = 0, **tuning_changes: float) -> Run:
    """The estimator on one truth file (see soc_error), with its uncertainties.

    history_s: the current of that many seconds before start_s is stepped first, without
    voltages, as the node does before a first SOC (it holds the first voltages until it has
    seen a second of current). Before the profile's start the truth is at rest (PyBaMM starts
    from equilibrium)."""
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
    initial_soc = None if initial_error == "own" else float(np.clip(soc_true[0] + initial_error, 0.0, 1.0))
    est = Estimator(pack, initial_soc=initial_soc)
    if tuning_changes:
        est = Estimator(pack, tuning=replace(est.tuning, **tuning_changes), initial_soc=initial_soc)
    if realistic_sensors:
        gain = 1.0 + CURRENT_GAIN_ERROR * rng.uniform(-1.0, 1.0, realisations)
        offset_a = CURRENT_OFFSET_A * rng.uniform(-1.0, 1.0, realisations)
        voltage_offset_v = VOLTAGE_OFFSET_V * rng.uniform(-1.0, 1.0, realisations)
        current_noise_a = CURRENT_NOISE_A
    else:
        gain = 1.0 + CURRENT_GAIN_ERROR * rng.choice([-1.0, 1.0], realisations)
        offset_a = CURRENT_OFFSET_A * rng.choice([-1.0, 1.0], realisations)
        voltage_offset_v, current_noise_a = np.zeros(realisations), 0.0
    shape = (soc_true.size, realisations)
    true_capacity_ah = float(truth["capacity_ah"])
    result = Run(np.empty(shape), np.empty(shape), np.empty(shape), np.empty(shape), true_capacity_ah)

    def record(k: int) -> None:
        result.soc_error[k] = est.soc - soc_true[k]
        result.soc_std[k] = est.soc_std
        result.capacity_error_ah[k] = est.capacity_ah - true_capacity_ah
        result.capacity_std_ah[k] = est.capacity_std_ah

    history_rng = np.random.default_rng(seed + 1)  # leaves the draws of the run itself as they were
    for k in range(start_s - history_s + 1, start_s + 1) if initial_soc is None else ():
        true_a = float(truth["current_a"][k]) if k >= 0 else 0.0
        measured_a = true_a * gain + offset_a + current_noise_a * history_rng.standard_normal(realisations)
        est.step(np.full(realisations, np.nan), measured_a, 1.0)
    record(0)
    if initial_soc is None:  # not estimated before the first voltage
        result.soc_error[0], result.soc_std[0] = np.nan, np.nan
    for k in range(1, soc_true.size):
        measured_v = voltage_v[k] + voltage_offset_v + VOLTAGE_NOISE_V * rng.standard_normal(realisations)
        measured_a = current_a[k] * gain + offset_a
        if realistic_sensors:
            measured_v = np.round(measured_v / VOLTAGE_RESOLUTION_V) * VOLTAGE_RESOLUTION_V
            measured_a = measured_a + current_noise_a * rng.standard_normal(realisations)
        est.step(measured_v, measured_a, 1.0)
        record(k)
    return result


def coverage(error: np.ndarray, std: np.ndarray, start_s: int, sigmas: float = 2.0) -> float:
    """Fraction of the samples from start_s whose error lies within sigmas standard deviations."""
    return float(np.mean(np.abs(error[start_s:]) <= sigmas * std[start_s:]))


def rmse_after(errors: np.ndarray, start_s: int) -> float:
    return float(np.sqrt(np.nanmean(errors[start_s:] ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description="SOC RMSE and uncertainty coverage of the estimator on truth data")
    parser.add_argument("truth", type=Path, nargs="+", help="<chem>_drive*.npz files")
    parser.add_argument("--start-s", type=int, default=0, help="start the estimator this far into the profile")
    parser.add_argument("--initial-error", default=None,
                        help="initial SOC error, signed (default: 0.3 towards the middle), or 'own': "
                             "from the first voltage, as the node starts without a given SOC")
    parser.add_argument("--history-s", type=int, default=0,
                        help="with 'own': the current seen before the first voltage, as the node sees it (1)")
    parser.add_argument("--realistic-sensors", action="store_true",
                        help="add per-cell voltage offsets, 100 uV resolution and current noise")
    args = parser.parse_args()
    initial_error = args.initial_error if args.initial_error in (None, "own") else float(args.initial_error)
    print(f"{'truth file':<22} {'RMSE 0-10 min':>13} {'after 10 min':>12} {'after 30 min':>12} "
          f"{'max after 30':>12} {'SOC in 2 sd':>11} {'cap. error':>10} {'cap. in 2 sd':>12}")
    for path in args.truth:
        r = run(path, start_s=args.start_s, initial_error=initial_error, realistic_sensors=args.realistic_sensors,
                history_s=args.history_s)
        e = r.soc_error
        first = float(np.sqrt(np.nanmean(e[:600] ** 2)))
        print(f"{str(path.name)[-22:]:<22} {100 * first:>12.2f}% {100 * rmse_after(e, 600):>11.2f}% "
              f"{100 * rmse_after(e, 1800):>11.2f}% {100 * np.abs(e[1800:]).max():>11.2f}% "
              f"{100 * coverage(e, r.soc_std, 600):>10.1f}% "
              f"{100 * np.abs(r.capacity_error_ah[-1]).max() / r.true_capacity_ah:>9.2f}% "
              f"{100 * coverage(r.capacity_error_ah, r.capacity_std_ah, 0):>11.1f}%")


if __name__ == "__main__":
    main()
