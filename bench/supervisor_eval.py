"""CPU time of one safety evaluation (SafetyEvaluator.evaluate) per pack, paced as the node runs it.

Feeds the evaluator as the supervisor node does: 10 Hz slave samples between 20 Hz evaluations
(each evaluation sees half the modules updated), a pack measurement and an estimator heartbeat,
and measures evaluate() alone with the thread's CPU clock (time.thread_time_ns), so the figure
holds on a loaded machine. With ``--baseline REV`` the same script runs against bms_safety and
bms_common as they were at git revision REV (extracted to a temporary directory) and prints both
side by side with the ratio.

    .venv/bin/python bench/supervisor_eval.py [--packs demo nmc_16x12 nmc_64x16] [--baseline HEAD]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def measure(pack_name: str, evaluations: int) -> dict[str, float]:
    import numpy as np

    from bms_common.pack_config import load_pack_config
    from bms_safety.evaluator import SafetyEvaluator

    pack = load_pack_config(pack_name)
    ev = SafetyEvaluator.from_pack(pack, start_s=0.0)
    rng = np.random.default_rng(0)
    m, c, s = pack.modules, pack.cells_per_module, pack.sensors_per_module
    volts = rng.normal(3.7, 0.005, (m, c))
    eval_ns, feed_ns = [], []
    seq = np.zeros(m, dtype=np.int64)
    for k in range(1, evaluations + 1):
        t = k * 0.05
        start = time.thread_time_ns()
        # Half of the modules report between two evaluations (10 Hz samples, 20 Hz evaluation).
        for mod in range(k % 2, m, 2):
            seq[mod] += 1
            ev.update_module(mod, t, volts[mod] + rng.normal(0, 5e-4, c), 25.0 + rng.normal(0, 0.05, s),
                             int(seq[mod]))
        ev.update_pack(t, -50.0, float(volts.sum()), float(volts.sum()), 5e6, True)
        ev.update_estimator(t)
        ev.update_contactors(t, (True, True, False), (True, True, False))
        mid = time.thread_time_ns()
        result = ev.evaluate(t)
        end = time.thread_time_ns()
        if k > 20:  # the first evaluations see modules not yet heard from
            eval_ns.append(end - mid)
            feed_ns.append(mid - start)
    assert result.level == 0, result.faults[:3]
    e = np.array(eval_ns) / 1e6
    return {"cells": m * c, "median_ms": float(np.median(e)), "p99_ms": float(np.percentile(e, 99)),
            "mean_ms": float(e.mean()), "feed_ms": float(np.mean(feed_ns) / 1e6)}


def run_here(packs: list[str], evaluations: int) -> dict[str, dict[str, float]]:
    return {p: measure(p, evaluations) for p in packs}


def run_at(rev: str, packs: list[str], evaluations: int) -> dict[str, dict[str, float]]:
    """The same measurement against the safety and common packages of git revision ``rev``."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src/bms_safety", "src/bms_common"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        path = [f"{tmp}/src/bms_safety", f"{tmp}/src/bms_common"]
        code = (f"import sys, json; sys.path[:0] = {path!r}; sys.path.insert(0, {str(ROOT / 'bench')!r}); "
                f"import supervisor_eval as b; print(json.dumps(b.run_here({packs!r}, {evaluations})))")
        out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                             env={**__import__("os").environ, "BMS_CONFIG_DIR": str(ROOT / "config")})
        return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packs", nargs="+", default=["demo", "nmc_16x12", "nmc_64x16"])
    parser.add_argument("--evaluations", type=int, default=1000)
    parser.add_argument("--baseline", metavar="REV", help="git revision to compare against, e.g. HEAD~3")
    args = parser.parse_args()
    sys.path[:0] = [str(ROOT / "src" / "bms_safety"), str(ROOT / "src" / "bms_common")]

    now = run_here(args.packs, args.evaluations)
    before = run_at(args.baseline, args.packs, args.evaluations) if args.baseline else None
    print(f"evaluate() CPU time per evaluation (thread CPU clock, {args.evaluations} evaluations, 20 Hz pacing)")
    head = f"{'pack':<11} {'cells':>6} {'median ms':>10} {'p99 ms':>8} {'x 20 Hz':>8}"
    if before:
        head += f" {'before ms':>10} {'ratio':>7}"
    print(head)
    for pack, r in now.items():
        line = (f"{pack:<11} {r['cells']:>6} {r['median_ms']:>10.3f} {r['p99_ms']:>8.3f} "
                f"{r['mean_ms'] * 20 / 10:>7.2f}%")
        if before:
            b = before[pack]
            line += f" {b['median_ms']:>10.3f} {b['median_ms'] / r['median_ms']:>6.1f}x"
        print(line)
    print("'x 20 Hz': mean evaluation CPU at the 20 Hz evaluation rate, in % of one core")


if __name__ == "__main__":
    main()
