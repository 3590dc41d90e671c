"""Balancing strategy rules (no ROS, no physics)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from bms_master.balancing import BalancingStrategy, BalancingStrategyConfig
from bms_master.enums import OperatingState as S

CFG = BalancingStrategyConfig(threshold_v=0.010, hysteresis_v=0.003, threshold_ah=0.05, hysteresis_ah=0.02)
WARM = np.full(8, 25.0)


def volts(*offsets_mv: float) -> np.ndarray:
    return 3.7 + np.asarray(offsets_mv, dtype=float) / 1000.0


def test_bleeds_cells_above_minimum_plus_threshold():
    strategy = BalancingStrategy(CFG, modules=2, cells_per_module=4)
    d = strategy.decide(volts(0, 5, 11, 20, 9, 10.5, 0, 30), WARM, S.STANDBY, 0.0)
    assert d.mode == "voltage" and d.masks.shape == (2, 4)
    assert d.masks.ravel().tolist() == [False, False, True, True, False, True, False, True]


def test_hysteresis_keeps_bleeding_until_below_threshold_minus_hysteresis():
    strategy = BalancingStrategy(CFG, 1, 2)
    temps = np.full(2, 25.0)
    assert strategy.decide(volts(0, 11), temps, S.STANDBY, 0.0).masks[0, 1]
    assert strategy.decide(volts(0, 8), temps, S.STANDBY, 0.0).masks[0, 1]
    assert not strategy.decide(volts(0, 6.9), temps, S.STANDBY, 0.0).masks[0, 1]
    assert not strategy.decide(volts(0, 9), temps, S.STANDBY, 0.0).masks[0, 1]


@pytest.mark.parametrize("state", [S.DRIVE, S.PRECHARGE, S.ERROR])
def test_off_outside_allowed_states(state):
    d = BalancingStrategy(CFG, 2, 4).decide(volts(0, 50, 50, 50, 50, 50, 50, 50), WARM, state, 0.0)
    assert d.mode == "off" and not d.masks.any() and state.name in d.reason


def test_off_while_discharging_hard_or_current_unknown_but_on_while_charging():
    strategy = BalancingStrategy(CFG, 2, 4)
    v = volts(0, 50, 50, 50, 50, 50, 50, 50)
    assert not strategy.decide(v, WARM, S.CHARGE, -20.0).masks.any()
    assert not strategy.decide(v, WARM, S.CHARGE, math.nan).masks.any()
    assert strategy.decide(v, WARM, S.CHARGE, 30.0).masks.sum() == 7


def test_temperature_window_and_unknown_data_exclude_cells():
    strategy = BalancingStrategy(CFG, 2, 4)
    temps = np.array([25.0, 55.0, -5.0, math.nan, 25.0, 25.0, 25.0, 25.0])
    v = volts(0, 50, 50, 50, 50, 50, 50, 50)
    v[5] = math.nan
    d = strategy.decide(v, temps, S.STANDBY, 0.0).masks.ravel()
    assert d.tolist() == [False, False, False, False, True, False, True, True]


def test_all_unknown_is_off():
    d = BalancingStrategy(CFG, 2, 4).decide(np.full(8, math.nan), WARM, S.STANDBY, 0.0)
    assert d.mode == "off" and not d.masks.any()


def test_max_cells_per_module_keeps_the_highest():
    strategy = BalancingStrategy(BalancingStrategyConfig(max_cells_per_module=2), 2, 4)
    d = strategy.decide(volts(0, 20, 40, 30, 50, 15, 12, 60), WARM, S.STANDBY, 0.0)
    assert d.masks.tolist() == [[False, False, True, True], [True, False, False, True]]


def test_soc_mode_uses_dischargeable_charge():
    strategy = BalancingStrategy(CFG, 1, 4)
    soc = np.array([0.50, 0.50, 0.50, 0.51])
    capacity = np.array([50.0, 50.2, 49.0, 50.0])  # charge: 25.0, 25.1, 24.5, 25.5 Ah
    d = strategy.decide(volts(0, 0, 0, 0), np.full(4, 25.0), S.STANDBY, 0.0, soc, capacity)
    assert d.mode == "soc" and d.masks.ravel().tolist() == [True, True, False, True]


def test_soc_mode_skips_cells_without_voltage_or_estimate():
    strategy = BalancingStrategy(CFG, 1, 4)
    soc = np.array([0.5, math.nan, 0.6, 0.6])
    v = volts(0, 0, 0, 0)
    v[3] = math.nan
    d = strategy.decide(v, np.full(4, 25.0), S.STANDBY, 0.0, soc, np.full(4, 50.0))
    assert d.masks.ravel().tolist() == [False, False, True, False]


def test_wrong_length_is_rejected():
    with pytest.raises(ValueError, match="has 3 values"):
        BalancingStrategy(CFG, 2, 4).decide(np.zeros(3), WARM, S.STANDBY, 0.0)


def test_config_from_pack_balancing_settings():
    pack = SimpleNamespace(threshold_v=0.005, min_temperature_degc=5.0, max_temperature_degc=40.0)
    cfg = BalancingStrategyConfig.from_pack(pack, max_cells_per_module=3)
    assert (cfg.threshold_v, cfg.min_temperature_degc, cfg.max_cells_per_module) == (0.005, 5.0, 3)
