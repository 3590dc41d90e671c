"""Fit the 2RC equivalent-circuit model to simulated lab tests, as a cell engineer would.

Reads ``<chem>_fit.npz`` written by generate_truth.py (a C/20 discharge and charge, an HPPC
pulse test) and writes ``bms_estimation/ecm_tables.py``, the estimator's default parameters::

    .venv/bin/python src/bms_estimation/tools/fit_ecm.py \
        --fixtures src/bms_estimation/test/fixtures --out src/bms_estimation/bms_estimation/ecm_tables.py

- Capacity: the charge delivered by the C/20 discharge from full to the lower cut-off.
- OCV: the mean of the C/20 discharge and charge curves, which cancels most of the (nearly
  symmetric) C/20 overpotential, on a uniform SOC grid, then shifted onto the voltages at the
  end of the HPPC's 30-minute rests (interpolated between them), forced monotonic.
- R0, R1, tau1, R2, tau2: one set per cell by least squares over the discharge and charge
  pulses with their 10-minute relaxations between 20 and 80 % SOC, simulating the same
  discrete-time model the filter runs, with the OCV drift during each pulse from the fitted table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares
from scipy.signal import lfilter

OCV_POINTS = 201
PULSE_WINDOW_S = 630
FIT_SOC_RANGE = (0.2, 0.8)


def unique_seconds(time_s: np.ndarray, *series: np.ndarray) -> list[np.ndarray]:
    """Experiments report both sides of each step change at one instant; keep the first."""
    _, first = np.unique(np.round(time_s, 6), return_index=True)
    return [time_s[first]] + [s[first].astype(float) for s in series]


def fit_ocv(time_s: np.ndarray, current_a: np.ndarray, voltage_v: np.ndarray) -> tuple[np.ndarray, float]:
    time_s, current_a, voltage_v = unique_seconds(time_s, current_a, voltage_v)
    charge_ah = np.concatenate([[0.0], np.cumsum(current_a[1:] * np.diff(time_s))]) / 3600.0
    discharging, charging = current_a < -1e-6, current_a > 1e-6
    capacity_ah = -charge_ah[discharging].min()
    soc = 1.0 + charge_ah / capacity_ah
    soc_charge_start = soc[charging][0]
    grid = np.linspace(0.0, 1.0, OCV_POINTS)
    v_discharge = np.interp(grid, soc[discharging][::-1], voltage_v[discharging][::-1])
    v_charge = np.interp(grid, soc[charging] - soc_charge_start, voltage_v[charging])
    have_discharge = (grid >= soc[discharging].min()) & (grid <= soc[discharging].max())
    have_charge = grid <= (soc[charging] - soc_charge_start).max()
    both = have_discharge & have_charge
    half_gap = np.interp(grid, grid[both], 0.5 * (v_charge - v_discharge)[both])
    ocv = np.where(both, 0.5 * (v_charge + v_discharge), np.where(have_discharge, v_discharge + half_gap,
                                                                  v_charge - half_gap))
    return np.maximum.accumulate(ocv), float(capacity_ah)


def rested_ocv_correction(time_s, current_a, voltage_v, capacity_ah, ocv_v) -> np.ndarray:
    """Shift the C/20 curve onto the HPPC's rested voltages (30 minutes after each 10 % step):
    C/20 still carries some overpotential, and smears the steps of a flat (LFP) curve."""
    time_s, current_a, voltage_v = unique_seconds(time_s, current_a, voltage_v)
    charge_ah = np.concatenate([[0.0], np.cumsum(current_a[1:] * np.diff(time_s))]) / 3600.0
    soc = 1.0 + charge_ah / capacity_ah
    at_rest = np.abs(current_a) < 1e-6
    rest_ends = np.flatnonzero(at_rest[:-1] & ~at_rest[1:])
    # Only the long rests: the last 25 minutes before the step were at rest.
    rest_ends = [k for k in rest_ends if k >= 1500 and at_rest[k - 1500:k + 1].all()]
    grid = np.linspace(0.0, 1.0, ocv_v.size)
    rested_soc = soc[rest_ends]
    correction_v = voltage_v[rest_ends] - np.interp(rested_soc, grid, ocv_v)
    order = np.argsort(rested_soc)
    print(f"  {len(rest_ends)} rested points, OCV correction {1e3 * correction_v.min():+.1f}.."
          f"{1e3 * correction_v.max():+.1f} mV")
    return np.maximum.accumulate(ocv_v + np.interp(grid, rested_soc[order], correction_v[order]))


def simulate_rc(theta: np.ndarray, current_a: np.ndarray) -> np.ndarray:
    r0, r1, tau1, r2, tau2 = theta
    a1, a2 = np.exp(-1.0 / tau1), np.exp(-1.0 / tau2)
    v1 = lfilter([r1 * (1.0 - a1)], [1.0, -a1], current_a)
    v2 = lfilter([r2 * (1.0 - a2)], [1.0, -a2], current_a)
    return r0 * current_a + v1 + v2


def pulse_windows(time_s, current_a, voltage_v, capacity_ah, ocv_v):
    """Pulses that start from rest, as (current, voltage minus OCV drift) from 1 s before."""
    time_s, current_a, voltage_v = unique_seconds(time_s, current_a, voltage_v)
    charge_ah = np.concatenate([[0.0], np.cumsum(current_a[1:] * np.diff(time_s))]) / 3600.0
    soc = 1.0 + charge_ah / capacity_ah
    grid = np.linspace(0.0, 1.0, ocv_v.size)
    at_rest = np.abs(current_a) < 1e-6
    starts = np.flatnonzero(at_rest[:-1] & ~at_rest[1:] & (np.diff(time_s) > 0))
    windows = []
    for start in starts:
        stop = start + PULSE_WINDOW_S
        # Only short pulses followed by a full relaxation, inside the SOC range the cell works in.
        if stop >= time_s.size or np.count_nonzero(~at_rest[start:stop]) > 40:
            continue
        if not FIT_SOC_RANGE[0] <= soc[start] <= FIT_SOC_RANGE[1]:
            continue
        ocv_drift = np.interp(soc[start:stop], grid, ocv_v) - np.interp(soc[start], grid, ocv_v)
        windows.append((current_a[start:stop], voltage_v[start:stop] - voltage_v[start] - ocv_drift))
    return windows


def fit_rc(windows) -> np.ndarray:
    def residual(theta):
        return np.concatenate([simulate_rc(theta, i) - dv for i, dv in windows])

    start = np.array([0.02, 0.01, 10.0, 0.01, 200.0])
    bounds = ([1e-5, 1e-6, 1.0, 1e-6, 60.0], [1.0, 1.0, 60.0, 1.0, 3000.0])
    result = least_squares(residual, start, bounds=bounds, x_scale=[0.01, 0.01, 10.0, 0.01, 100.0])
    rms_mv = 1e3 * np.sqrt(np.mean(result.fun**2))
    print(f"  {len(windows)} pulses, fit RMS {rms_mv:.2f} mV")
    return result.x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, required=True, help="directory with <chem>_fit.npz")
    parser.add_argument("--out", type=Path, required=True, help="python module to write")
    args = parser.parse_args()
    lines = [
        '"""Default 2RC parameters per chemistry, fitted by tools/fit_ecm.py (generated: do not edit).',
        "",
        "Sources: PyBaMM DFN simulations of the Chen2020 (NMC, LG M50) and Prada2013 (LFP, A123)",
        "parameter sets; ocv_v is on a uniform SOC grid from 0 to 1.",
        '"""',
        "",
        "CELLS = {",
    ]
    for chemistry in ("nmc", "lfp"):
        data = np.load(args.fixtures / f"{chemistry}_fit.npz")
        ocv_v, capacity_ah = fit_ocv(data["c20_time_s"], data["c20_current_a"], data["c20_voltage_v"])
        print(f"{chemistry}: C/20 capacity {capacity_ah:.4f} Ah, OCV {ocv_v[0]:.3f}..{ocv_v[-1]:.3f} V")
        ocv_v = rested_ocv_correction(data["hppc_time_s"], data["hppc_current_a"], data["hppc_voltage_v"],
                                      capacity_ah, ocv_v)
        windows = pulse_windows(data["hppc_time_s"], data["hppc_current_a"], data["hppc_voltage_v"],
                                capacity_ah, ocv_v)
        r0, r1, tau1, r2, tau2 = fit_rc(windows)
        print(f"  R0 {r0 * 1e3:.2f} mOhm, R1 {r1 * 1e3:.2f} mOhm tau1 {tau1:.1f} s, "
              f"R2 {r2 * 1e3:.2f} mOhm tau2 {tau2:.0f} s")
        ocv_text = ", ".join(f"{v:.5f}" for v in ocv_v)
        lines += [
            f'    "{chemistry.upper()}": {{',
            f'        "source": "{data["parameter_set"]}",',
            f'        "nominal_capacity_ah": {float(data["nominal_capacity_ah"]):.5g},',
            f'        "capacity_ah": {capacity_ah:.5f},',
            f'        "r0_ohm": {r0:.6g},',
            f'        "r1_ohm": {r1:.6g},',
            f'        "tau1_s": {tau1:.6g},',
            f'        "r2_ohm": {r2:.6g},',
            f'        "tau2_s": {tau2:.6g},',
            f'        "ocv_v": [{ocv_text}],',
            "    },",
        ]
    lines.append("}")
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
