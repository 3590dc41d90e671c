"""Start-up accuracy of the estimator's own first SOC (no given SOC) on the PyBaMM drives.

SOC RMSE over the first 10 minutes and after them, from starts inside a long charge, at the
start of a regeneration pulse, as a 0.8C discharge begins and at rest, realistic sensor errors
(issue 19), for each truth file. ``--history-s`` is the current seen before the first voltage:
1 as the node runs (it holds the first voltages for a second of current), 0 the estimator core
alone from its first voltage (what the node did before it held them). One run is about 6 s on the 2-core machine::

    python bench/estimator_startup.py --history-s 1 src/bms_estimation/test/fixtures/*_drive*.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bms_estimation.cell_model import default_parameters
from bms_estimation.validation import CHEMISTRY_OF_PARAMETER_SET, rmse_after, run

# name: (start, seconds of current seen before the first voltage beyond the node's one second).
# The profiles start from rest at 0 s with a 0.8C discharge: seen from 1 s earlier, the node saw
# the rest before it; from 0 s, the load is on from the node's first current sample.
LOADED_STARTS_S = {"inside a long charge (7400 s)": (7400, 0), "inside a long charge (7800 s)": (7800, 0),
                   "regeneration pulse begins (1243 s)": (1243, 0),
                   "0.8C discharge begins, rest seen before (0 s)": (0, 1),
                   "0.8C discharge on from the first current (0 s)": (0, 0)}
REST_BEFORE_S = 600


def rest_start_s(truth_path: Path) -> int:
    """The first instant after 30 minutes with 10 minutes below C/20 before it."""
    truth = np.load(truth_path)
    chemistry = CHEMISTRY_OF_PARAMETER_SET[str(truth["parameter_set"])]
    resting = np.abs(truth["current_a"]) < 0.05 * default_parameters(chemistry).nominal_capacity_ah
    run_length = np.zeros(resting.size, dtype=int)
    for k in range(1, resting.size):
        run_length[k] = run_length[k - 1] + 1 if resting[k] else 0
    return int(np.flatnonzero((run_length >= REST_BEFORE_S) & (np.arange(resting.size) >= 1800))[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("truth", type=Path, nargs="+")
    parser.add_argument("--history-s", type=int, default=1)
    args = parser.parse_args()
    for path in args.truth:
        starts = dict(LOADED_STARTS_S)
        starts["at rest"] = (rest_start_s(path), 0)
        for name, (start_s, seen_before_s) in starts.items():
            error = run(path, start_s=start_s, initial_error="own", realistic_sensors=True,
                        history_s=args.history_s + seen_before_s if args.history_s else 0).soc_error
            first = float(np.sqrt(np.nanmean(error[:600] ** 2)))
            print(f"{path.stem:<16} {name:<47} start {start_s:>5} s  RMSE 0-10 min {100 * first:5.2f} %  "
                  f"after {100 * rmse_after(error, 600):5.2f} %", flush=True)


if __name__ == "__main__":
    main()
