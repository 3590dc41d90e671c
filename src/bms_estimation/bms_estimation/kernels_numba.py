"""Compiled multi-core backend: one fused pass per cell, cells spread over cores with prange.

The arithmetic is that of kernels_numpy, term for term and in the same order, so both backends
agree to rounding. ``fastmath`` stays off: reassociation would break that agreement. Compiled
code is cached on disk, so only the first import on a machine pays for compilation.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from . import ekf


@numba.njit(parallel=True, fastmath=False, cache=True, nogil=True)
def _step(state, coef, current_a, voltage_v, dt_s, tuning, ocv_v, ocv_slope_v):  # noqa: C901 - one fused pass
    segments = ocv_slope_v.size
    voltage_var = tuning[ekf.T_VNOISE] * tuning[ekf.T_VNOISE]
    rc_q = tuning[ekf.T_RC] * dt_s
    soc_q_scale = tuning[ekf.T_ITIME] / dt_s
    flat2 = tuning[ekf.T_FLAT] * tuning[ekf.T_FLAT]
    r0_meas_var = tuning[ekf.T_R0_MEAS] * tuning[ekf.T_R0_MEAS]
    rest_a = tuning[ekf.T_REST_C] * tuning[ekf.T_NOMINAL_AH]
    for n in numba.prange(state.shape[1]):
        i_a = current_a[n]
        cap = state[ekf.CAP, n]
        a1 = coef[ekf.A1, n]
        a2 = coef[ekf.A2, n]
        # Predict.
        b0 = dt_s / (3600.0 * cap)
        soc = state[ekf.SOC, n] + b0 * i_a
        v1 = a1 * state[ekf.V1, n] + coef[ekf.G1, n] * i_a
        v2 = a2 * state[ekf.V2, n] + coef[ekf.G2, n] * i_a
        sig_i = tuning[ekf.T_INOISE] + tuning[ekf.T_IGAIN] * abs(i_a)
        p00 = state[ekf.P00, n] + sig_i * b0 * sig_i * b0 * soc_q_scale
        p01 = a1 * state[ekf.P01, n]
        p02 = a2 * state[ekf.P02, n]
        p11 = a1 * a1 * state[ekf.P11, n] + rc_q
        p12 = a1 * a2 * state[ekf.P12, n]
        p22 = a2 * a2 * state[ekf.P22, n] + rc_q
        r0 = state[ekf.R0, n]
        r0_var = state[ekf.R0_VAR, n] + tuning[ekf.T_R0_Q] * dt_s
        window_ah = state[ekf.WIN_AH, n] + i_a * dt_s / 3600.0
        rest_s = state[ekf.REST_S, n] + dt_s if abs(i_a) < rest_a else 0.0
        y = voltage_v[n]
        if y == y:
            # Update with the scalar voltage measurement.
            position = soc * segments
            j = min(max(math.floor(position), 0), segments - 1)
            slope = ocv_slope_v[j]
            h = slope * segments
            emf = ocv_v[j] + (position - j) * slope + v1 + v2
            e = y - emf - r0 * i_a
            model_v = (tuning[ekf.T_MODEL] + tuning[ekf.T_MODEL_PER_C] * abs(i_a) / tuning[ekf.T_NOMINAL_AH]
                       + tuning[ekf.T_MODEL_POL] * abs(v1 + v2))
            rm = voltage_var + model_v * model_v * (1.0 + flat2 / (h * h + 1e-12))
            ph0 = p00 * h + p01 + p02
            ph1 = p01 * h + p11 + p12
            ph2 = p02 * h + p12 + p22
            s = h * ph0 + ph1 + ph2 + rm
            k0 = ph0 / s
            k1 = ph1 / s
            k2 = ph2 / s
            soc += k0 * e
            v1 += k1 * e
            v2 += k2 * e
            p00 -= k0 * ph0
            p01 -= k0 * ph1
            p02 -= k0 * ph2
            p11 -= k1 * ph1
            p12 -= k1 * ph2
            p22 -= k2 * ph2
            emf_post = emf + e * (1.0 - rm / s)
            prev_v = state[ekf.PREV_V, n]
            di = i_a - state[ekf.PREV_I, n]
            if tuning[ekf.T_LEARN_R0] != 0.0 and prev_v == prev_v and abs(di) >= tuning[ekf.T_R0_DI]:
                # R0 from the voltage step the model's EMF does not explain.
                yr = (y - prev_v) - (emf - state[ekf.PREV_EMF, n])
                kr = r0_var * di / (di * di * r0_var + r0_meas_var)
                r0 += kr * (yr - r0 * di)
                r0_var -= kr * di * r0_var
                r0 = min(max(r0, tuning[ekf.T_R0_MIN]), tuning[ekf.T_R0_MAX])
            state[ekf.PREV_V, n] = y
            state[ekf.PREV_I, n] = i_a
            state[ekf.PREV_EMF, n] = emf_post
        else:
            state[ekf.PREV_V, n] = np.nan
        cap_var = state[ekf.CAP_VAR, n] + tuning[ekf.T_CAP_Q] * dt_s
        if rest_s >= tuning[ekf.T_REST_S] and abs(window_ah) >= tuning[ekf.T_CAP_WIN] * cap:
            d_soc = soc - state[ekf.WIN_SOC, n]
            if tuning[ekf.T_LEARN_CAP] != 0.0 and d_soc * window_ah > 0.0:
                # Between two rests (where the SOC is best known): capacity = charge / SOC change,
                # weighted by the SOC uncertainty at both ends.
                c_obs = window_ah / d_soc
                obs_var = c_obs * c_obs * (p00 + state[ekf.WIN_VAR, n]) / (d_soc * d_soc)
                kc = cap_var / (cap_var + obs_var)
                cap += kc * (c_obs - cap)
                cap_var -= kc * cap_var
                cap = min(max(cap, 0.5 * tuning[ekf.T_NOMINAL_AH]), 1.5 * tuning[ekf.T_NOMINAL_AH])
            state[ekf.WIN_SOC, n] = soc
            state[ekf.WIN_VAR, n] = p00
            window_ah = 0.0
        state[ekf.SOC, n] = soc
        state[ekf.V1, n] = v1
        state[ekf.V2, n] = v2
        state[ekf.P00, n] = p00
        state[ekf.P01, n] = p01
        state[ekf.P02, n] = p02
        state[ekf.P11, n] = p11
        state[ekf.P12, n] = p12
        state[ekf.P22, n] = p22
        state[ekf.R0, n] = r0
        state[ekf.R0_VAR, n] = r0_var
        state[ekf.CAP, n] = cap
        state[ekf.CAP_VAR, n] = cap_var
        state[ekf.WIN_AH, n] = window_ah
        state[ekf.REST_S, n] = rest_s


def step(state: np.ndarray, coef: np.ndarray, current_a: np.ndarray, voltage_v: np.ndarray, dt_s: float,
         tuning: np.ndarray, ocv_v: np.ndarray, ocv_slope_v: np.ndarray) -> None:
    """Advance every cell by dt_s in place (see kernels_numpy for the equations)."""
    _step(state, coef, current_a, voltage_v, float(dt_s), tuning, ocv_v, ocv_slope_v)
