"""Batched extended Kalman filter over N cells: state layout, tuning and backend selection.

The state is a structure of arrays: one float64 row per quantity, one column per cell, so a
backend streams through contiguous rows and never builds a 3x3 matrix. The EKF state of a cell
is (soc, v1, v2); its symmetric covariance is six rows (p00, p01, p02, p11, p12, p22). The
measurement is a scalar (the cell voltage), so the update is closed form: no matrix inverse.
Next to the EKF, each cell carries a scalar Kalman filter for R0 and one for capacity (SOH).

Both backends implement ``step(state, coef, current_a, voltage_v, dt_s, tuning, segments)``
with the same arithmetic in the same order; ``kernels_numpy`` documents it.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from types import ModuleType

import numpy as np

# Rows of the state array.
SOC, V1, V2, P00, P01, P02, P11, P12, P22 = range(9)
R0, R0_VAR, CAP, CAP_VAR = range(9, 13)
WIN_SOC, WIN_VAR, WIN_AH = range(13, 16)  # capacity window: SOC, its variance, charge since
PREV_V, PREV_I, PREV_EMF = range(16, 19)  # last measured voltage, current, model EMF
REST_S = 19  # time since the current was last above the rest threshold
WIN_ERR_AH = 20  # how wrong the window's charge may be: sensor offset and gain, accumulated
STATE_ROWS = 21
STATE_NAMES = (
    "soc", "v1_v", "v2_v", "p00", "p01", "p02", "p11", "p12", "p22", "r0_ohm", "r0_var",
    "capacity_ah", "capacity_var", "window_soc", "window_var", "window_ah",
    "prev_voltage_v", "prev_current_a", "prev_emf_v", "rest_s", "window_error_ah",
)

# Rows of the per-step coefficient array (depend on dt and each cell's time constants).
A1, G1, A2, G2, A1_SQ, A1_A2, A2_SQ, SOC_LAG = range(8)
COEF_ROWS = 8


@dataclass(frozen=True)
class FilterTuning:
    """Noise model and learning settings; defaults are physical, not fitted to a data set."""

    voltage_noise_v: float = 0.002  # AFE measurement noise (1 sigma)
    model_error_v: float = 0.004  # ECM error at rest: OCV fit, unmodelled diffusion
    model_error_v_per_c: float = 0.01  # extra ECM error per C of current (nonlinear R0)
    # The ECM's polarisation (v1 + v2) stands for diffusion, which it reproduces only roughly:
    # the longer and harder the current, the larger the error, and the slower it fades at rest.
    model_error_per_polarisation: float = 1.0
    # Under load the voltage follows the particle surfaces, whose SOC leads the average: an error
    # in SOC (per C of the filtered current that v1 + v2 stand for), worst where the OCV is steep.
    soc_lag_per_c: float = 0.2
    flat_slope_v: float = 0.15  # OCV slope (V per unit SOC) below which voltage is de-weighted
    # ... but only residuals that a model bias could explain: beyond this many model-error sigmas
    # the voltage says the SOC is elsewhere on the curve (a plateau is not a licence to ignore it).
    flat_bias_sigmas: float = 3.0
    # The OCV walls at the ends of the curve (20 to 60 V per unit SOC) are far steeper than any
    # SOC uncertainty can be linearised over: an estimate on a wall would collapse its variance
    # while the voltage says it is far away. The Jacobian's slope is bounded by this (V per unit).
    jacobian_max_v: float = 2.0
    current_noise_a: float = 0.05  # current sensor offset (1 sigma)
    current_gain_error: float = 0.005  # current sensor gain error (fraction)
    current_error_time_s: float = 60.0  # how long a current error persists (bias, not white)
    rc_noise_v2_per_s: float = 1e-8  # process noise of the RC voltages
    r0_noise_ohm2_per_s: float = 1e-12  # how fast R0 may move (temperature, ageing)
    r0_measurement_v: float = 0.003  # noise of one R0 sample dV - R0 dI
    r0_min_current_step_a: float = 0.0  # smallest current step that teaches R0 (0: C/5)
    capacity_noise_ah2_per_s: float = 1e-10  # how fast capacity may move (ageing)
    capacity_window: float = 0.15  # charge, as a fraction of capacity, per capacity sample
    rest_current_c: float = 0.05  # below this C-rate the cell is resting
    rest_time_s: float = 600.0  # capacity samples start and end after this long at rest
    rest_soc_error: float = 0.01  # SOC error of a rested voltage: relaxation is never complete
    # Charge / SOC change is far from Gaussian when the SOC change is poorly known (1/x): a sample
    # whose SOC change has a relative error above this is skipped, not down-weighted.
    capacity_sample_max_error: float = 0.1
    nominal_capacity_ah: float = 1.0  # for C-rates and the learning bounds
    r0_min_ohm: float = 0.0
    r0_max_ohm: float = 1.0
    # The model's error at rest that the published SOC uncertainty stands for (Estimator.soc_std):
    # the filter's variance assumes the model exact and was 5 to 10 times too small. Calibrated
    # on the PyBaMM drives (docs/estimation.md, "Uncertainty"); not used by the filter itself.
    soc_std_model_error_v: float = 0.007
    learn_r0: bool = True
    learn_capacity: bool = True

    def as_array(self) -> np.ndarray:
        """The tuning as a float64 vector, the form compiled kernels take."""
        values = np.array(astuple(self), dtype=np.float64)
        if values[T_R0_DI] <= 0.0:
            values[T_R0_DI] = 0.2 * self.nominal_capacity_ah
        return values


TUNING_FIELDS = tuple(FilterTuning.__dataclass_fields__)
# Positions in FilterTuning.as_array(), by field name so that adding a field cannot shift them.
T_VNOISE = TUNING_FIELDS.index("voltage_noise_v")
T_MODEL = TUNING_FIELDS.index("model_error_v")
T_MODEL_PER_C = TUNING_FIELDS.index("model_error_v_per_c")
T_MODEL_POL = TUNING_FIELDS.index("model_error_per_polarisation")
T_SOC_LAG = TUNING_FIELDS.index("soc_lag_per_c")
T_FLAT = TUNING_FIELDS.index("flat_slope_v")
T_FLAT_BIAS = TUNING_FIELDS.index("flat_bias_sigmas")
T_INOISE = TUNING_FIELDS.index("current_noise_a")
T_IGAIN = TUNING_FIELDS.index("current_gain_error")
T_ITIME = TUNING_FIELDS.index("current_error_time_s")
T_RC = TUNING_FIELDS.index("rc_noise_v2_per_s")
T_R0_Q = TUNING_FIELDS.index("r0_noise_ohm2_per_s")
T_R0_MEAS = TUNING_FIELDS.index("r0_measurement_v")
T_R0_DI = TUNING_FIELDS.index("r0_min_current_step_a")
T_CAP_Q = TUNING_FIELDS.index("capacity_noise_ah2_per_s")
T_CAP_WIN = TUNING_FIELDS.index("capacity_window")
T_REST_C = TUNING_FIELDS.index("rest_current_c")
T_REST_S = TUNING_FIELDS.index("rest_time_s")
T_REST_SOC = TUNING_FIELDS.index("rest_soc_error")
T_CAP_MAX_ERR = TUNING_FIELDS.index("capacity_sample_max_error")
T_NOMINAL_AH = TUNING_FIELDS.index("nominal_capacity_ah")
T_R0_MIN = TUNING_FIELDS.index("r0_min_ohm")
T_R0_MAX = TUNING_FIELDS.index("r0_max_ohm")
T_LEARN_R0 = TUNING_FIELDS.index("learn_r0")
T_LEARN_CAP = TUNING_FIELDS.index("learn_capacity")


# Rows of the OCV segment table: OCV at the segment start, rise across it, the slope the
# Jacobian uses (bounded, see FilterTuning.jacobian_max_v), and how much the voltage is
# de-weighted where the OCV is flat, (s_flat / slope)^2 (see kernels_numpy).
SEG_OCV, SEG_SLOPE, SEG_JACOBIAN, SEG_FLAT = range(4)

# Every index the kernels use (all upper-case integer constants here, in name order); the
# compiled backend checks its disk cache against it.
TUNING_COUNT = len(TUNING_FIELDS)
LAYOUT = tuple(value for name, value in sorted(globals().items())
               if name.isupper() and isinstance(value, int) and not isinstance(value, bool))


def ocv_segments(ocv_v: np.ndarray, flat_slope_v: float, jacobian_max_v: float) -> np.ndarray:
    """The OCV table as per-segment rows, precomputed so that a step needs no division for it."""
    segments = ocv_v.size - 1
    table = np.empty((4, segments))
    table[SEG_OCV] = ocv_v[:-1]
    table[SEG_SLOPE] = np.diff(ocv_v)
    slope_per_soc = table[SEG_SLOPE] * segments
    table[SEG_JACOBIAN] = np.minimum(slope_per_soc, jacobian_max_v)
    table[SEG_FLAT] = flat_slope_v**2 / (slope_per_soc * slope_per_soc + 1e-12)
    return table


def rc_coefficients(tau1_s: np.ndarray, r1_ohm: np.ndarray, tau2_s: np.ndarray, r2_ohm: np.ndarray,
                    dt_s: float, soc_lag_per_c: float = 0.0, nominal_capacity_ah: float = 1.0) -> np.ndarray:
    """Exact zero-order-hold discretisation of both RC pairs for a step of dt_s, and the SOC lag
    per volt of polarisation (|v1 + v2| / (r1 + r2) is the filtered current)."""
    coef = np.empty((COEF_ROWS, np.size(tau1_s)))
    coef[A1] = np.exp(-dt_s / tau1_s)
    coef[G1] = r1_ohm * (1.0 - coef[A1])
    coef[A2] = np.exp(-dt_s / tau2_s)
    coef[G2] = r2_ohm * (1.0 - coef[A2])
    coef[A1_SQ] = coef[A1] * coef[A1]
    coef[A1_A2] = coef[A1] * coef[A2]
    coef[A2_SQ] = coef[A2] * coef[A2]
    coef[SOC_LAG] = soc_lag_per_c / ((r1_ohm + r2_ohm) * nominal_capacity_ah)
    return coef


def available_backends() -> dict[str, ModuleType]:
    """Importable backends, fastest last: 'numpy' always, 'compiled' when numba is installed."""
    from . import kernels_numpy

    backends: dict[str, ModuleType] = {"numpy": kernels_numpy}
    try:
        from . import kernels_numba
    except ImportError:
        return backends
    backends["compiled"] = kernels_numba
    return backends


# Below this many cells an unnamed backend is numpy. Paced at 10 Hz, the compiled backend's
# worker threads spin after every parallel step: 11.5 ms of CPU per step for 48 cells against
# 0.76 ms with numpy, though it is 16 times faster in a tight loop (docs/estimation.md, Backends).
COMPILED_MIN_CELLS = 100_000


def select_backend(name: str | None = None, cells: int | None = None) -> tuple[str, ModuleType]:
    """The named backend; unnamed, numpy for fewer than COMPILED_MIN_CELLS cells (or an unknown
    count), else the fastest available."""
    if name is None and (cells is None or cells < COMPILED_MIN_CELLS):
        name = "numpy"
    if name == "numpy":  # without importing numba: seconds of start-up on a loaded machine
        from . import kernels_numpy

        return name, kernels_numpy
    backends = available_backends()
    if name is None:
        name = list(backends)[-1]
    if name not in backends:
        raise ValueError(f"estimation backend {name!r} is not available; available: {', '.join(backends)}")
    return name, backends[name]
