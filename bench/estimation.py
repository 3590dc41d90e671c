"""Benchmark: nanoseconds per cell-step of the batched estimator, per backend, against filterpy.

    .venv/bin/python bench/estimation.py

Times ``Estimator.step`` (the full step the node runs: EKF predict and update, R0 and capacity
learning, NaN masking) for N = 100 .. 1M cells on every installed backend, and filterpy's
ExtendedKalmanFilter run cell by cell on the same model in the same process. Each figure is the
best of many short repeats: on a shared machine other processes steal a core now and then, and
a parallel step waits for its slowest thread, so the least disturbed repeat is the one that
measures the code. The last line is machine-readable::

    ns_per_cell_step N=10000 numpy=<x> compiled=<y> filterpy=<z>
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for package_dir in (ROOT / "src" / "bms_estimation", ROOT / "src" / "bms_common"):
    sys.path.insert(0, str(package_dir))

from bms_common.pack_config import BalancingConfig, PackConfig  # noqa: E402 - needs the path above
from bms_estimation import ekf  # noqa: E402
from bms_estimation.estimator import Estimator  # noqa: E402

SIZES = (100, 1_000, 10_000, 100_000, 1_000_000)
DT_S = 0.1
INPUT_VARIANTS = 8  # distinct measurement vectors, cycled, so the inputs change every step


def pack(cells: int) -> PackConfig:
    return PackConfig(name="bench", source=Path("bench"), chemistry="NMC", modules=max(cells // 10, 1),
                      cells_per_module=min(cells, 10), nominal_capacity_ah=5.0,
                      temperature_sensors=(tuple(range(min(cells, 10))),), limits="nmc",
                      balancing=BalancingConfig())


def inputs(cells: int, rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Drive-like currents (steps that teach R0) and noisy voltages with a few NaN readings."""
    currents, voltages = [], []
    for k in range(INPUT_VARIANTS):
        current_a = np.full(cells, (-15.0, -5.0, 2.0, 0.0)[k % 4]) + 0.01 * rng.standard_normal(cells)
        voltage_v = 3.7 + 0.02 * current_a / 5.0 + 0.002 * rng.standard_normal(cells)
        voltage_v[rng.random(cells) < 0.001] = np.nan
        currents.append(current_a)
        voltages.append(voltage_v)
    return currents, voltages


def time_batched(backend: str, cells: int, budget_s: float, repeats: int) -> float:
    rng = np.random.default_rng(0)
    currents, voltages = inputs(cells, rng)
    est = Estimator(pack(cells), backend=backend, initial_soc=0.6, cells=cells)
    est.step(voltages[0], currents[0], DT_S)  # loads compiled code, fills the coefficient cache
    t0 = time.perf_counter()
    est.step(voltages[1], currents[1], DT_S)
    steps = int(np.clip(budget_s / max(time.perf_counter() - t0, 1e-7), 3, 20_000))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for k in range(steps):
            est.step(voltages[k % INPUT_VARIANTS], currents[k % INPUT_VARIANTS], DT_S)
        best = min(best, time.perf_counter() - t0)
    return best / steps / cells * 1e9


def time_filterpy(cells: int, steps: int) -> float:
    """The same model with filterpy's ExtendedKalmanFilter, one filter per cell."""
    from filterpy.kalman import ExtendedKalmanFilter

    est = Estimator(pack(cells), initial_soc=0.6, cells=cells)
    t, ocv = est.tuning, est.params.ocv
    coef = ekf.rc_coefficients(est.tau1_s, est.r1_ohm, est.tau2_s, est.r2_ohm, DT_S, t.soc_lag_per_c,
                                t.nominal_capacity_ah)
    currents, voltages = inputs(cells, np.random.default_rng(0))
    filters = []
    for cell in range(cells):
        kf = ExtendedKalmanFilter(dim_x=3, dim_z=1, dim_u=1)
        kf.x = np.array([[0.6], [0.0], [0.0]])
        kf.P = np.diag([0.09, 1e-4, 1e-4])
        kf.F = np.diag([1.0, coef[ekf.A1, cell], coef[ekf.A2, cell]])
        kf.B = np.array([[DT_S / 3600.0 / est.capacity_ah[cell]], [coef[ekf.G1, cell]], [coef[ekf.G2, cell]]])
        filters.append(kf)
    r0 = float(est.resistance_ohm[0])

    def jacobian(x: np.ndarray) -> np.ndarray:
        return np.array([[min(float(ocv.slope_v_per_soc(x[0, 0])), t.jacobian_max_v), 1.0, 1.0]])

    def measurement(x: np.ndarray, current_a: float) -> np.ndarray:
        return np.array([[float(ocv.voltage_v(x[0, 0])) + x[1, 0] + x[2, 0] + r0 * current_a]])

    t0 = time.perf_counter()
    for k in range(steps):
        current_a, voltage_v = currents[k % INPUT_VARIANTS], voltages[k % INPUT_VARIANTS]
        for cell, kf in enumerate(filters):
            i_a = float(current_a[cell])
            sig_i = t.current_noise_a + t.current_gain_error * abs(i_a)
            kf.Q = np.diag([(sig_i * kf.B[0, 0]) ** 2 * t.current_error_time_s / DT_S,
                            t.rc_noise_v2_per_s * DT_S, t.rc_noise_v2_per_s * DT_S])
            kf.predict(u=np.array([[i_a]]))
            if np.isfinite(voltage_v[cell]):
                slope = float(ocv.slope_v_per_soc(kf.x[0, 0]))
                model_v = (t.model_error_v + t.model_error_v_per_c * abs(i_a) / t.nominal_capacity_ah
                           + t.model_error_per_polarisation * abs(kf.x[1, 0] + kf.x[2, 0]))
                e = voltage_v[cell] - float(ocv.voltage_v(kf.x[0, 0])) - kf.x[1, 0] - kf.x[2, 0] - r0 * i_a
                flat_weight = min(1.0, (t.flat_bias_sigmas * model_v) ** 2 / e**2) if e else 1.0
                r_v2 = t.voltage_noise_v**2 + model_v**2 * (1.0 + flat_weight * t.flat_slope_v**2 / (slope**2 + 1e-12))
                r_v2 += (min(slope, t.jacobian_max_v) * coef[ekf.SOC_LAG, cell] * abs(kf.x[1, 0] + kf.x[2, 0])) ** 2
                kf.update(np.array([[voltage_v[cell]]]), jacobian, measurement, R=r_v2, hx_args=(i_a,))
    return (time.perf_counter() - t0) / steps / cells * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=0.05, help="target time per repeat")
    parser.add_argument("--repeats", type=int, default=12)
    args = parser.parse_args()
    backends = list(ekf.available_backends())
    filterpy_ns = time_filterpy(cells=50, steps=20)
    print(f"filterpy ExtendedKalmanFilter, one per cell: {filterpy_ns:,.0f} ns per cell-step")
    print(f"{'cells':>9} " + " ".join(f"{name + ' ns':>12} {'x filterpy':>11}" for name in backends))
    at_10k: dict[str, float] = {}
    for cells in SIZES:
        row = f"{cells:>9} "
        for name in backends:
            ns = time_batched(name, cells, args.budget_s, args.repeats)
            row += f"{ns:>12.2f} {filterpy_ns / ns:>11,.0f}"
            if cells == 10_000:
                at_10k[name] = ns
        print(row, flush=True)
    figures = " ".join(f"{name}={at_10k.get(name, float('nan')):.2f}" for name in ("numpy", "compiled"))
    print(f"ns_per_cell_step N=10000 {figures} filterpy={filterpy_ns:.0f}")


if __name__ == "__main__":
    main()
