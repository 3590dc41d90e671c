"""Current limits: minimum of SOP, derating, maxima; state gating; estimator fallback."""

from __future__ import annotations

import math

import pytest

from bms_master.current_limits import (
    CurrentLimitConfig,
    StateOfPower,
    compute_current_limits,
    select_horizon,
)
from bms_master.enums import LimitReason as R
from bms_master.enums import OperatingState as S

CFG = CurrentLimitConfig(max_charge_current_a=100.0, max_discharge_current_a=300.0, max_regen_current_a=50.0,
                         fallback_charge_current_a=10.0, fallback_discharge_current_a=30.0,
                         estimator_timeout_s=2.0)
BIG_SOP = StateOfPower(1000.0, 1000.0, time_s=0.0)


@pytest.mark.parametrize("state", [S.STANDBY, S.PRECHARGE, S.ERROR])
def test_no_current_outside_drive_and_charge(state):
    r = compute_current_limits(CFG, state, BIG_SOP, 1.0, 1.0, 0.0)
    assert (r.max_charge_current_a, r.max_discharge_current_a) == (0.0, 0.0)
    assert r.charge_reason == r.discharge_reason == R.NOT_ALLOWED


def test_drive_allows_discharge_and_regen_up_to_regen_max():
    r = compute_current_limits(CFG, S.DRIVE, BIG_SOP, 1.0, 1.0, 0.0)
    assert r.max_discharge_current_a == 300.0 and r.discharge_reason == R.CONFIGURED_MAX
    assert r.max_charge_current_a == 50.0 and r.charge_reason == R.CONFIGURED_MAX


def test_charge_forbids_discharge():
    r = compute_current_limits(CFG, S.CHARGE, BIG_SOP, 1.0, 1.0, 0.0)
    assert r.max_charge_current_a == 100.0 and r.max_discharge_current_a == 0.0
    assert r.discharge_reason == R.NOT_ALLOWED


def test_state_of_power_limits_when_smallest():
    r = compute_current_limits(CFG, S.DRIVE, StateOfPower(20.0, 120.0, 0.0), 1.0, 1.0, 1.0)
    assert (r.max_charge_current_a, r.charge_reason) == (20.0, R.STATE_OF_POWER)
    assert (r.max_discharge_current_a, r.discharge_reason) == (120.0, R.STATE_OF_POWER)


def test_safety_derating_scales_configured_maximum():
    r = compute_current_limits(CFG, S.CHARGE, BIG_SOP, 0.5, 1.0, 0.0)
    assert (r.max_charge_current_a, r.charge_reason) == (50.0, R.SAFETY_DERATING)
    r = compute_current_limits(CFG, S.DRIVE, StateOfPower(0.0, 1000.0, 0.0), 1.0, 0.0, 0.0)
    assert (r.max_discharge_current_a, r.discharge_reason) == (0.0, R.SAFETY_DERATING)


def test_nan_derating_means_no_current():
    r = compute_current_limits(CFG, S.DRIVE, BIG_SOP, math.nan, math.nan, 0.0)
    assert r.max_charge_current_a == r.max_discharge_current_a == 0.0
    assert r.discharge_reason == R.SAFETY_DERATING


@pytest.mark.parametrize("sop", [None, StateOfPower(500.0, 500.0, time_s=-3.0),
                                 StateOfPower(math.nan, math.nan, time_s=0.0)])
def test_missing_stale_or_nan_estimator_falls_back(sop):
    r = compute_current_limits(CFG, S.DRIVE, sop, 1.0, 1.0, 0.0)
    assert (r.max_charge_current_a, r.charge_reason) == (10.0, R.NO_ESTIMATOR)
    assert (r.max_discharge_current_a, r.discharge_reason) == (30.0, R.NO_ESTIMATOR)


def test_fallback_still_obeys_derating():
    r = compute_current_limits(CFG, S.DRIVE, None, 1.0, 0.05, 0.0)
    assert (r.max_discharge_current_a, r.discharge_reason) == (15.0, R.SAFETY_DERATING)


def test_negative_sop_is_clipped_to_zero():
    r = compute_current_limits(CFG, S.CHARGE, StateOfPower(-5.0, 0.0, 0.0), 1.0, 1.0, 0.0)
    assert r.max_charge_current_a == 0.0 and r.charge_reason == R.STATE_OF_POWER


def test_select_horizon_prefers_configured_then_longer():
    horizons, charge, discharge = [2.0, 10.0, 30.0], [90.0, 60.0, 40.0], [400.0, 250.0, 200.0]
    assert select_horizon(horizons, charge, discharge, 10.0, 1.0) == StateOfPower(60.0, 250.0, 1.0)
    assert select_horizon(horizons, charge, discharge, 5.0, 1.0).charge_current_a == 60.0
    assert select_horizon(horizons, charge, discharge, 60.0, 1.0).charge_current_a == 40.0


def test_select_horizon_rejects_bad_arrays():
    with pytest.raises(ValueError, match="equally long"):
        select_horizon([2.0, 10.0], [1.0], [1.0, 2.0], 10.0, 0.0)
    with pytest.raises(ValueError):
        select_horizon([], [], [], 10.0, 0.0)
