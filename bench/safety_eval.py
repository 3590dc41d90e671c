"""Safety evaluation time per cycle for a 200 modules x 16 cells pack (issue 5 benchmark).

Feeds every module once per cycle (as 10 Hz slaves do between two 20 Hz evaluations, rounded
up) and times SafetyEvaluator.evaluate alone and together with the 200 update_module calls.

    .venv/bin/python bench/safety_eval.py [--cycles N] [--modules M] [--cells C]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src" / "bms_safety"), str(ROOT / "src" / "bms_common")]

from bms_safety.evaluator import SafetyEvaluator  # noqa: E402
from bms_safety.limits import load_limits  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--modules", type=int, default=200)
    parser.add_argument("--cells", type=int, default=16)
    parser.add_argument("--sensors", type=int, default=4)
    args = parser.parse_args()

    ev = SafetyEvaluator(load_limits("nmc"), args.modules, args.cells, args.sensors, start_s=0.0)
    rng = np.random.default_rng(0)
    volts = rng.normal(3.7, 0.005, (args.modules, args.cells))
    eval_s, cycle_s = [], []
    for k in range(1, args.cycles + 1):
        t = k * 0.05
        start = time.perf_counter()
        noisy = volts + rng.normal(0, 5e-4, volts.shape)
        temps = 25.0 + rng.normal(0, 0.05, (args.modules, args.sensors))
        for m in range(args.modules):
            ev.update_module(m, t, noisy[m], temps[m], k)
        ev.update_pack(t, -50.0, float(noisy.sum()), float(noisy.sum()), 5e6, True)
        ev.update_estimator(t)
        mid = time.perf_counter()
        result = ev.evaluate(t)
        end = time.perf_counter()
        eval_s.append(end - mid)
        cycle_s.append(end - start)
    assert result.level == 0, result.faults[:3]

    feed = f"evaluate() + {args.modules} update_module()"
    for name, samples in (("evaluate()", eval_s), (feed, cycle_s)):
        ms = np.array(samples[10:]) * 1e3
        print(f"{name:<34} {args.modules}x{args.cells} cells: median {np.median(ms):.3f} ms, "
              f"p99 {np.percentile(ms, 99):.3f} ms, max {ms.max():.3f} ms over {ms.size} cycles")


if __name__ == "__main__":
    main()
