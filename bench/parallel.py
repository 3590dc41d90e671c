"""Parallel computing backends for the per-cell estimator step, paced at 10 Hz and in a tight loop.

Runs ``Estimator.step`` (the full step the estimator node runs) with its kernel on each backend:

- ``numpy``: bms_estimation.kernels_numpy (array expressions, one thread);
- ``numba-serial``: the compiled kernel (kernels_numba._step's Python source) compiled here with
  ``parallel=False``: one fused loop, one thread;
- ``numba-omp``, ``numba-workqueue``, ``numba-tbb``: the project's compiled kernel
  (``parallel=True``, prange over cells) on each numba threading layer available here (tbb needs
  the ``tbb`` package, workqueue is always there, omp needs libgomp). Each layer runs in a process
  of its own: numba fixes the layer at the first parallel call.

For each size it prints:

- paced: CPU per tick in ms with the step run at 10 Hz (sleeping between ticks), as process CPU
  time (all threads: a parallel layer's workers that spin after a region count, as they do in the
  node), divided by the ticks; and the share of one core that is at 10 Hz;
- throughput: ns per cell-step in a tight loop, best of repeats, by wall clock (perf_counter) and
  by process CPU time. Wall-clock figures on a loaded machine are not the code's: read the CPU ones.

No GPU backend: no GPU is lent to this project's tasks (docs/parallel.md).

    .venv/bin/python bench/parallel.py [--sizes 48 192 1024 10000 100000 1000000] [--ticks 20]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for package_dir in (ROOT / "src" / "bms_estimation", ROOT / "src" / "bms_common"):
    sys.path.insert(0, str(package_dir))

SIZES = (48, 192, 1024, 10_000, 100_000, 1_000_000)
BACKENDS = ("numpy", "numba-serial", "numba-omp", "numba-workqueue", "numba-tbb")
DT_S = 0.1


def _make_estimator(backend: str, cells: int):  # noqa: ANN202 - Estimator, imported late on purpose
    from bms_estimation.estimator import Estimator

    pack = _bench_estimation().pack  # the same pack shape as bench/estimation.py

    if backend == "numpy":
        return Estimator(pack(cells), backend="numpy", initial_soc=0.6, cells=cells)
    est = Estimator(pack(cells), backend="compiled", initial_soc=0.6, cells=cells)
    if backend == "numba-serial":
        import numba

        from bms_estimation import kernels_numba

        serial = numba.njit(parallel=False, fastmath=False, cache=False, nogil=True,
                            error_model="numpy")(kernels_numba._step.py_func)
        est._backend = SimpleNamespace(
            step=lambda state, coef, i, v, dt, tuning, seg: serial(state, coef, i, v, float(dt), tuning, seg))
    return est


def _inputs(cells: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    return _bench_estimation().inputs(cells, np.random.default_rng(0))


def _bench_estimation():  # noqa: ANN202 - a module
    """bench/estimation.py, whose pack and drive-like inputs this benchmark shares."""
    import importlib.util

    if "bench_estimation" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_estimation", ROOT / "bench" / "estimation.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_estimation"] = module
        spec.loader.exec_module(module)
    return sys.modules["bench_estimation"]


def measure(backend: str, cells: int, ticks: int, budget_s: float, repeats: int) -> dict[str, float]:
    est = _make_estimator(backend, cells)
    currents, voltages = _inputs(cells)
    n = len(currents)
    for k in range(3):  # compile, fill caches, start the worker threads
        est.step(voltages[k % n], currents[k % n], DT_S)
    # Paced: one step every 100 ms; CPU of the whole process over whole periods.
    period = 0.1
    cpu0, start = time.process_time(), time.monotonic()
    for k in range(ticks):
        est.step(voltages[k % n], currents[k % n], DT_S)
        time.sleep(max(0.0, start + (k + 1) * period - time.monotonic()))
    paced_ms = (time.process_time() - cpu0) / ticks * 1e3
    # Throughput: tight loop, best of repeats (wall) and the CPU of that repeat.
    t0 = time.perf_counter()
    est.step(voltages[0], currents[0], DT_S)
    steps = int(np.clip(budget_s / max(time.perf_counter() - t0, 1e-7), 3, 20_000))
    best_wall, best_cpu = float("inf"), float("inf")
    for _ in range(repeats):
        c0, w0 = time.process_time(), time.perf_counter()
        for k in range(steps):
            est.step(voltages[k % n], currents[k % n], DT_S)
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    layer = ""
    if backend.startswith("numba-") and backend != "numba-serial":
        import numba

        layer = numba.threading_layer()
    return {"paced_ms": paced_ms, "wall_ns": best_wall / steps / cells * 1e9,
            "cpu_ns": best_cpu / steps / cells * 1e9, "layer": layer}


def worker(backend: str, sizes: list[int], ticks: int, budget_s: float, repeats: int) -> None:
    out = {}
    for cells in sizes:
        out[cells] = measure(backend, cells, ticks, budget_s, repeats)
        print(json.dumps({"cells": cells, **out[cells]}), flush=True)


def run_backend(backend: str, args: argparse.Namespace) -> dict[int, dict[str, float]] | str:
    env = dict(os.environ)
    if backend.startswith("numba-") and backend != "numba-serial":
        env["NUMBA_THREADING_LAYER"] = backend.removeprefix("numba-")
    try:
        import numba  # noqa: F401
    except ImportError:
        if backend != "numpy":
            return "numba not installed"
    argv = [sys.executable, __file__, "--worker", backend, "--ticks", str(args.ticks), "--budget-s",
            str(args.budget_s), "--repeats", str(args.repeats), "--sizes", *map(str, args.sizes)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    rows = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            rows[row.pop("cells")] = row
    if proc.returncode != 0 and not rows:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return last[:120]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS))
    parser.add_argument("--ticks", type=int, default=20, help="paced 10 Hz ticks per size")
    parser.add_argument("--budget-s", type=float, default=0.05, help="tight-loop time per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.sizes, args.ticks, args.budget_s, args.repeats)
        return
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default (cores)')}; no GPU lent")
    results = {}
    for backend in args.backends:
        results[backend] = run_backend(backend, args)
        if isinstance(results[backend], str):
            print(f"{backend}: not measured ({results[backend]})", flush=True)
        else:
            print(f"{backend}: done", flush=True)
    measured = [b for b in args.backends if not isinstance(results[b], str)]
    for title, key, fmt in (("paced at 10 Hz: process CPU ms per tick", "paced_ms", "{:>16.3f}"),
                            ("tight loop: ns per cell-step, process CPU time", "cpu_ns", "{:>16.2f}"),
                            ("tight loop: ns per cell-step, wall clock (load-sensitive)", "wall_ns", "{:>16.2f}")):
        print(f"\n{title}")
        print(f"{'cells':>9} " + " ".join(f"{b:>16}" for b in measured))
        for cells in args.sizes:
            row = [fmt.format(results[b][cells][key]) if cells in results[b] else f"{'-':>16}" for b in measured]
            print(f"{cells:>9} " + " ".join(row))
    print("\npaced CPU at 10 Hz in % of one core = ms per tick / 1")
    best = {}
    for cells in args.sizes:
        costs = {b: results[b][cells]["paced_ms"] for b in measured if cells in results[b]}
        if costs:
            best[cells] = min(costs, key=costs.get)
    print("cheapest paced backend per size: " + ", ".join(f"{c}: {b}" for c, b in best.items()))
    layers = {b: next(iter(results[b].values()))["layer"] for b in measured if b.startswith("numba-")
              and b != "numba-serial" and results[b]}
    if layers:
        print("threading layer each parallel run really used: "
              + ", ".join(f"{b}: {layer}" for b, layer in layers.items()))


if __name__ == "__main__":
    main()
