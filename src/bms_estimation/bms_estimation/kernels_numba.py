"""Compiled multi-core backend: one fused pass per cell, cells spread over cores with prange.

The arithmetic is that of kernels_numpy, term for term and in the same order, so both backends
agree to rounding. ``fastmath`` stays off: reassociation would break that agreement. The loop
body has no branches (conditions become selects), which lets LLVM vectorise it; a branch in the
learning code costs a factor of three. ``error_model="numpy"`` lets a division by zero in a
discarded lane give inf instead of raising. Compiled code is cached on disk, so only the first
import on a machine pays for compilation.
"""

from __future__ import annotations

import numba
import numpy as np

from . import ekf


@numba.njit(parallel=True, fastmath=False, cache=True, nogil=True, error_model="numpy")
def _step(state, coef, current_a, voltage_v, dt_s, tuning, segments):  # noqa: C901 - one fused pass
    n_segments = segments.shape[1]
    seg_ocv = segments[ekf.SEG_OCV]
    seg_slope = segments[ekf.SEG_SLOPE]
    seg_jacobian = segments[ekf.SEG_JACOBIAN]
    seg_flat = segments[ekf.SEG_FLAT]
    voltage_var = tuning[ekf.T_VNOISE] * tuning[ekf.T_VNOISE]
    model_v0 = tuning[ekf.T_MODEL]
    model_v_per_a = tuning[ekf.T_MODEL_PER_C] / tuning[ekf.T_NOMINAL_AH]
    model_pol = tuning[ekf.T_MODEL_POL]
    flat_bias_sigmas = tuning[ekf.T_FLAT_BIAS]
    i_noise = tuning[ekf.T_INOISE]
    i_gain = tuning[ekf.T_IGAIN]
    soc_q_scale = tuning[ekf.T_ITIME] / dt_s
    rc_q = tuning[ekf.T_RC] * dt_s
    r0_q = tuning[ekf.T_R0_Q] * dt_s
    r0_meas_var = tuning[ekf.T_R0_MEAS] * tuning[ekf.T_R0_MEAS]
    r0_min_step_a = tuning[ekf.T_R0_DI]
    r0_min = tuning[ekf.T_R0_MIN]
    r0_max = tuning[ekf.T_R0_MAX]
    learn_r0 = tuning[ekf.T_LEARN_R0] != 0.0
    learn_cap = tuning[ekf.T_LEARN_CAP] != 0.0
    cap_q = tuning[ekf.T_CAP_Q] * dt_s
    cap_window = tuning[ekf.T_CAP_WIN]
    cap_min = 0.5 * tuning[ekf.T_NOMINAL_AH]
    cap_max = 1.5 * tuning[ekf.T_NOMINAL_AH]
    rest_a = tuning[ekf.T_REST_C] * tuning[ekf.T_NOMINAL_AH]
    rest_time_s = tuning[ekf.T_REST_S]
    rest_soc_var = tuning[ekf.T_REST_SOC] * tuning[ekf.T_REST_SOC]
    cap_max_err = tuning[ekf.T_CAP_MAX_ERR]
    ah_per_a = dt_s / 3600.0
    # One assignment per row: numba 0.68 with parallel=True silently dropped stores through
    # views that came from one tuple assignment of four rows.
    soc_r = state[ekf.SOC]
    v1_r = state[ekf.V1]
    v2_r = state[ekf.V2]
    p00_r = state[ekf.P00]
    p01_r = state[ekf.P01]
    p02_r = state[ekf.P02]
    p11_r = state[ekf.P11]
    p12_r = state[ekf.P12]
    p22_r = state[ekf.P22]
    r0_r = state[ekf.R0]
    r0_var_r = state[ekf.R0_VAR]
    cap_r = state[ekf.CAP]
    cap_var_r = state[ekf.CAP_VAR]
    win_soc_r = state[ekf.WIN_SOC]
    win_var_r = state[ekf.WIN_VAR]
    win_ah_r = state[ekf.WIN_AH]
    prev_v_r = state[ekf.PREV_V]
    prev_i_r = state[ekf.PREV_I]
    prev_emf_r = state[ekf.PREV_EMF]
    rest_r = state[ekf.REST_S]
    win_err_r = state[ekf.WIN_ERR_AH]
    a1_r = coef[ekf.A1]
    g1_r = coef[ekf.G1]
    a2_r = coef[ekf.A2]
    g2_r = coef[ekf.G2]
    a1_sq_r = coef[ekf.A1_SQ]
    a1_a2_r = coef[ekf.A1_A2]
    a2_sq_r = coef[ekf.A2_SQ]
    soc_lag_r = coef[ekf.SOC_LAG]
    for n in numba.prange(state.shape[1]):
        # An unknown current (NaN) counts as zero and voids the voltage it would have to explain.
        i_raw = current_a[n]
        current_known = i_raw == i_raw
        i_a = i_raw if current_known else 0.0
        abs_i = abs(i_a)
        cap = cap_r[n]
        a1 = a1_r[n]
        a2 = a2_r[n]
        # Predict.
        b0 = ah_per_a / cap
        soc = soc_r[n] + b0 * i_a
        v1 = a1 * v1_r[n] + g1_r[n] * i_a
        v2 = a2 * v2_r[n] + g2_r[n] * i_a
        sig_i = i_noise + i_gain * abs_i
        soc_noise = sig_i * b0
        p00 = p00_r[n] + soc_noise * soc_noise * soc_q_scale
        p01 = a1 * p01_r[n]
        p02 = a2 * p02_r[n]
        p11 = a1_sq_r[n] * p11_r[n] + rc_q
        p12 = a1_a2_r[n] * p12_r[n]
        p22 = a2_sq_r[n] * p22_r[n] + rc_q
        r0 = r0_r[n]
        r0_var = r0_var_r[n] + r0_q
        window_ah = win_ah_r[n] + i_a * ah_per_a
        # The current sensor's error is a bias over a window: it adds up linearly, not in squares.
        window_error_ah = win_err_r[n] + sig_i * ah_per_a
        rest_s = rest_r[n] + dt_s if abs_i < rest_a else 0.0
        # Update with the scalar voltage; an unmeasured cell gets zero gain.
        soc_prior = soc
        y = voltage_v[n]
        measured = (y == y) & current_known
        position = soc * n_segments
        j = min(max(int(position), 0), n_segments - 1)
        slope = seg_slope[j]
        h = seg_jacobian[j]
        emf = seg_ocv[j] + (position - j) * slope + v1 + v2
        e = y - emf - r0 * i_a if measured else 0.0
        model_v = model_v0 + model_v_per_a * abs_i + model_pol * abs(v1 + v2)
        soc_lag = soc_lag_r[n] * abs(v1 + v2)
        bias_v = flat_bias_sigmas * model_v
        flat_weight = bias_v * bias_v / max(e * e, bias_v * bias_v)
        rm = voltage_var + model_v * model_v * (1.0 + seg_flat[j] * flat_weight) + h * soc_lag * h * soc_lag
        ph0 = p00 * h + p01 + p02
        ph1 = p01 * h + p11 + p12
        ph2 = p02 * h + p12 + p22
        inv_s = 1.0 / (h * ph0 + ph1 + ph2 + rm) if measured else 0.0
        k0 = ph0 * inv_s
        k1 = ph1 * inv_s
        k2 = ph2 * inv_s
        # SOC is defined on 0..1; an estimate outside has no OCV to be corrected against.
        soc = min(max(soc + k0 * e, 0.0), 1.0)
        v1 += k1 * e
        v2 += k2 * e
        p00 -= k0 * ph0
        p01 -= k0 * ph1
        p02 -= k0 * ph2
        p11 -= k1 * ph1
        p12 -= k1 * ph2
        p22 -= k2 * ph2
        # R0 from the voltage step that the model's EMF does not explain.
        prev_v = prev_v_r[n]
        di = i_a - prev_i_r[n]
        teach = learn_r0 & measured & (prev_v == prev_v) & (abs(di) >= r0_min_step_a)
        step_v = (y - prev_v) - (emf - prev_emf_r[n])
        kr = r0_var * di / (di * di * r0_var + r0_meas_var) if teach else 0.0
        r0_taught = min(max(r0 + kr * (step_v - r0 * di), r0_min), r0_max)
        r0 = r0_taught if teach else r0
        r0_var_post = r0_var - kr * di * r0_var
        prev_v_r[n] = y if measured else np.nan
        prev_i_r[n] = i_a if measured else prev_i_r[n]
        prev_emf_r[n] = emf + e * (1.0 - rm * inv_s) if measured else prev_emf_r[n]
        # Capacity between two rests: charge over the change of the SOC that the rested voltage
        # implies (not the filter's SOC, which the coulomb count with the old capacity pulls).
        at_rest = measured & (rest_s >= rest_time_s)
        soc_rest = soc_prior + e / h
        rest_var = rm / (h * h) + rest_soc_var
        cap_var = cap_var_r[n] + cap_q
        window_done = at_rest & (abs(window_ah) >= cap_window * cap)
        d_soc = soc_rest - win_soc_r[n]
        cap_sample = window_ah / d_soc
        sample_var = ((cap_sample * cap_sample * (rest_var + win_var_r[n]) + window_error_ah * window_error_ah)
                      / (d_soc * d_soc))
        soc_change_var = rest_var + win_var_r[n]
        linearisable = soc_change_var < cap_max_err * d_soc * cap_max_err * d_soc
        learn = window_done & learn_cap & (d_soc * window_ah > 0.0) & linearisable
        kc = cap_var / (cap_var + sample_var) if learn else 0.0
        cap_learnt = min(max(cap + kc * (cap_sample - cap), cap_min), cap_max)
        cap = cap_learnt if learn else cap
        cap_var_post = cap_var - kc * cap_var
        # A window starts at the end of the last one, or at a better-known rest before any charge.
        restart = window_done | (at_rest & (rest_var < win_var_r[n]))
        win_soc_r[n] = soc_rest if restart else win_soc_r[n]
        win_var_r[n] = rest_var if restart else win_var_r[n]
        win_ah_r[n] = 0.0 if restart else window_ah
        win_err_r[n] = 0.0 if restart else window_error_ah
        soc_r[n] = soc
        v1_r[n] = v1
        v2_r[n] = v2
        p00_r[n] = p00
        p01_r[n] = p01
        p02_r[n] = p02
        p11_r[n] = p11
        p12_r[n] = p12
        p22_r[n] = p22
        r0_r[n] = r0
        r0_var_r[n] = r0_var_post
        cap_r[n] = cap
        cap_var_r[n] = cap_var_post
        rest_r[n] = rest_s


@numba.njit(cache=True)
def _compiled_layout():
    return ekf.LAYOUT


# Numba freezes globals into the cached machine code and invalidates the cache only when this
# file changes; after a change to the layout in ekf.py the cache would run stale indices.
if _compiled_layout() != ekf.LAYOUT:
    for _dispatcher in (_compiled_layout, _step):
        _dispatcher._cache.flush()


def step(state: np.ndarray, coef: np.ndarray, current_a: np.ndarray, voltage_v: np.ndarray, dt_s: float,
         tuning: np.ndarray, segments: np.ndarray) -> None:
    """Advance every cell by dt_s in place (see kernels_numpy for the equations)."""
    _step(state, coef, current_a, voltage_v, float(dt_s), tuning, segments)
