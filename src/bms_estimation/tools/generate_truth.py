"""Generate truth data for the estimator from PyBaMM's DFN model (not needed by the test suite).

Runs in a separate virtual environment that has PyBaMM; the repository never imports it::

    python3 -m venv /work/pybamm-venv && /work/pybamm-venv/bin/pip install pybamm
    PYBAMM_DISABLE_TELEMETRY=true /work/pybamm-venv/bin/python \
        src/bms_estimation/tools/generate_truth.py --out src/bms_estimation/test/fixtures

For each chemistry (Chen2020 NMC, Prada2013 LFP) it simulates what a cell lab would measure:
a C/20 discharge and charge (for the OCV curve), an HPPC pulse test (for R0 and the RC pairs),
and a synthetic drive profile that spends most of its time between 20 and 80 % SOC. Outputs are
``<chem>_fit.npz`` (C/20 and HPPC, what fit_ecm.py reads) and ``<chem>_drive.npz`` (truth for the
accuracy test), downsampled to 1 s and compressed. Current sign: positive = charging (PyBaMM's
is the opposite; it is flipped here).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
import pybamm  # noqa: E402 - telemetry must be disabled before the import

FARADAY_C_PER_MOL = 96485.33212
PARAMETER_SETS = {"nmc": "Chen2020", "lfp": "Prada2013"}


def stoichiometric_capacity_ah(values: pybamm.ParameterValues) -> float:
    """Capacity between the voltage cut-offs at equilibrium: PyBaMM's definition of 0..100 % SOC."""
    x_0, x_100, _, _ = pybamm.lithium_ion.get_min_max_stoichiometries(values)
    negative_ah = (
        values["Maximum concentration in negative electrode [mol.m-3]"]
        * values["Negative electrode active material volume fraction"]
        * values["Negative electrode thickness [m]"]
        * values["Electrode height [m]"]
        * values["Electrode width [m]"]
        * values["Number of electrodes connected in parallel to make a cell"]
        * FARADAY_C_PER_MOL
        / 3600.0
    )
    return float((x_100 - x_0) * negative_ah)


def drive_current_a(rng: np.random.Generator, capacity_ah: float, soc0: float) -> np.ndarray:
    """A drive-like current at 1 s: trips of acceleration, cruise, regeneration and stops,
    parking, a partial charge, and more driving, staying mostly within 20..80 % SOC."""
    c_rate = capacity_ah
    samples: list[float] = []
    soc = soc0

    def extend(current_a: float, seconds: int) -> None:
        nonlocal soc
        samples.extend([current_a] * seconds)
        soc += current_a * seconds / 3600.0 / capacity_ah

    def drive_until(soc_floor: float) -> None:
        while soc > soc_floor:
            extend(-rng.uniform(1.0, 2.5) * c_rate, int(rng.integers(4, 15)))
            extend(-rng.uniform(0.15, 0.7) * c_rate, int(rng.integers(20, 150)))
            extend(rng.uniform(0.2, 1.0) * c_rate, int(rng.integers(3, 12)))
            extend(0.0, int(rng.integers(2, 40)))
            if rng.random() < 0.05:
                extend(0.0, int(rng.integers(300, 900)))

    drive_until(rng.uniform(0.22, 0.28))
    extend(0.0, 1200)
    while soc < rng.uniform(0.65, 0.75):
        extend(0.5 * c_rate, 60)
    extend(0.0, 600)
    drive_until(rng.uniform(0.35, 0.45))
    current = np.asarray(samples)
    # A vehicle's current does not step within a millisecond: smooth with a 1.5 s time constant.
    smoothed = np.empty_like(current)
    alpha = 1.0 - np.exp(-1.0 / 1.5)
    level = 0.0
    for k, value in enumerate(current):
        level += alpha * (value - level)
        smoothed[k] = level
    return smoothed


def simulate_current(values: pybamm.ParameterValues, current_a: np.ndarray, soc0: float) -> dict:
    """Simulate a 1 s current profile with the DFN model and assert it was not cut short."""
    time_s = np.arange(current_a.size, dtype=float)
    values = values.copy()
    values["Current function [A]"] = pybamm.Interpolant(time_s, -current_a, pybamm.t)
    sim = pybamm.Simulation(pybamm.lithium_ion.DFN(), parameter_values=values)
    solution = sim.solve([0.0, time_s[-1]], t_interp=time_s, initial_soc=soc0)
    voltage_v = solution["Voltage [V]"].entries
    # PyBaMM stops silently at a voltage cut-off; a shorter solution would be wrong truth data.
    assert voltage_v.size == time_s.size, f"solution truncated at {solution.t[-1]:.0f} s of {time_s[-1]:.0f} s"
    return {"time_s": time_s, "current_a": current_a, "voltage_v": voltage_v}


def simulate_experiment(values: pybamm.ParameterValues, steps: list, period: str, soc0: float) -> dict:
    experiment = pybamm.Experiment(steps, period=period)
    sim = pybamm.Simulation(pybamm.lithium_ion.DFN(), parameter_values=values, experiment=experiment)
    solution = sim.solve(initial_soc=soc0)
    return {
        "time_s": solution["Time [s]"].entries,
        "current_a": -solution["Current [A]"].entries,
        "voltage_v": solution["Voltage [V]"].entries,
    }


def hppc_steps(levels: int) -> list:
    pulse = (
        "Discharge at 1C for 30 seconds",
        "Rest for 10 minutes",
        "Charge at 0.5C for 30 seconds",
        "Rest for 10 minutes",
        "Discharge at 1C for 6 minutes",
        "Rest for 30 minutes",
    )
    return ["Rest for 10 minutes"] + [step for _ in range(levels) for step in pulse]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="directory for the .npz files")
    parser.add_argument("--seed", type=int, default=6, help="seed of the synthetic drive profile")
    parser.add_argument("--chemistry", choices=sorted(PARAMETER_SETS), nargs="*", default=sorted(PARAMETER_SETS))
    parser.add_argument("--skip-fit-tests", action="store_true", help="only simulate the drive profile")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for chemistry in args.chemistry:
        values = pybamm.ParameterValues(PARAMETER_SETS[chemistry])
        capacity_ah = stoichiometric_capacity_ah(values)
        v_min, v_max = values["Lower voltage cut-off [V]"], values["Upper voltage cut-off [V]"]
        if not args.skip_fit_tests:
            slow = simulate_experiment(
                values,
                [f"Discharge at C/20 until {v_min} V", "Rest for 1 hour", f"Charge at C/20 until {v_max} V"],
                "60 seconds",
                1.0,
            )
            hppc = simulate_experiment(values, hppc_steps(9), "1 second", 1.0)
            np.savez_compressed(
                args.out / f"{chemistry}_fit.npz",
                **{f"c20_{key}": np.asarray(val, dtype=np.float32) for key, val in slow.items()},
                **{f"hppc_{key}": np.asarray(val, dtype=np.float32) for key, val in hppc.items()},
                nominal_capacity_ah=values["Nominal cell capacity [A.h]"],
                parameter_set=PARAMETER_SETS[chemistry],
            )
        rng = np.random.default_rng(args.seed + (0 if chemistry == "nmc" else 1000))
        soc0 = float(rng.uniform(0.78, 0.85))
        drive = simulate_current(values, drive_current_a(rng, capacity_ah, soc0), soc0)
        charge_ah = np.concatenate([[0.0], np.cumsum(0.5 * (drive["current_a"][1:] + drive["current_a"][:-1]))])
        soc_true = soc0 + charge_ah / 3600.0 / capacity_ah
        np.savez_compressed(
            args.out / f"{chemistry}_drive.npz",
            current_a=drive["current_a"].astype(np.float32),
            voltage_v=drive["voltage_v"].astype(np.float32),
            soc_true=soc_true.astype(np.float32),
            capacity_ah=capacity_ah,
            temperature_degc=25.0,
            parameter_set=PARAMETER_SETS[chemistry],
            seed=args.seed,
        )
        print(f"{chemistry}: {drive['time_s'].size} s drive, SOC {soc_true.min():.2f}..{soc_true.max():.2f}, "
              f"capacity {capacity_ah:.3f} Ah")


if __name__ == "__main__":
    main()
