"""Three-level threshold checks: debounce, hysteresis, latching, windows and derating."""

import math

import numpy as np
import pytest
from safety_harness import Harness, levels

from bms_safety.codes import Level

W, A, F = Level.WARNING, Level.ALARM, Level.FAULT


def set_cell(h: Harness, value: float) -> None:
    h.volts[1, 2] = value


def set_low_cell(h: Harness, value: float) -> None:
    h.volts[1, 2] = value


def set_sensor(h: Harness, value: float) -> None:
    h.temps[0, 1] = value


def set_current(h: Harness, value: float) -> None:
    h.current_a = value


def set_insulation(h: Harness, value: float) -> None:
    h.insulation_ohm = value


# code, setter, location, current during the test, (value, level, debounce_s) per level, a good value
CASES = [
    ("CELL_OV", set_cell, (1, 2), -10.0, [(4.19, W, 1.0), (4.23, A, 0.5), (4.26, F, 0.2)], 3.9),
    ("CELL_UV", set_cell, (1, 2), -10.0, [(3.05, W, 1.0), (2.90, A, 0.5), (2.75, F, 0.2)], 3.7),
    ("CELL_SPREAD", set_low_cell, (-1, -1), -10.0, [(3.58, W, 5.0), (3.43, A, 5.0), (3.15, F, 5.0)], 3.7),
    ("TEMP_HIGH_DISCHARGE", set_sensor, (0, 1), -10.0, [(56, W, 2.0), (59, A, 1.0), (61, F, 1.0)], 25),
    ("TEMP_LOW_DISCHARGE", set_sensor, (0, 1), -10.0, [(-16, W, 2.0), (-19, A, 1.0), (-21, F, 1.0)], 25),
    ("TEMP_HIGH_CHARGE", set_sensor, (0, 1), 10.0, [(41, W, 2.0), (44, A, 1.0), (46, F, 1.0)], 25),
    ("TEMP_LOW_CHARGE", set_sensor, (0, 1), 10.0, [(4, W, 2.0), (1, A, 1.0), (-1, F, 1.0)], 25),
    ("OVERCURRENT_CHARGE", set_current, (-1, -1), None, [(130, W, 2.0), (160, A, 1.0), (210, F, 0.5)], 10.0),
    ("OVERCURRENT_DISCHARGE", set_current, (-1, -1), None,
     [(-310, W, 2.0), (-360, A, 1.0), (-460, F, 0.5)], -10.0),
    ("INSULATION_LOW", set_insulation, (-1, -1), -10.0, [(4e5, W, 5.0), (2e5, A, 2.0), (5e4, F, 1.0)], 5e6),
]


def raise_time(h: Harness, code: str, where: tuple[int, int], level: Level, limit_s: float) -> float:
    """Step until ``code`` reaches ``level`` at ``where``; the time from the first sample that
    carried the bad value."""
    start = h.t + h.dt_s
    while h.t < start + limit_s:
        result = h.step()
        if levels(result).get((code, *where)) == level:
            return h.t - start
    raise AssertionError(f"{code} never reached {level.name} within {limit_s} s")


@pytest.mark.parametrize("code,setter,where,current,steps,good", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("index", [0, 1, 2], ids=["MOL", "RSL", "MSL"])
def test_level_raised_after_debounce_not_before(harness, code, setter, where, current, steps, good, index):
    if current is not None:
        harness.current_a = current
        harness.run(0.5)
    value, level, debounce_s = steps[index]
    setter(harness, value)
    elapsed = raise_time(harness, code, where, level, debounce_s + 1.0)
    assert debounce_s - 1e-9 <= elapsed <= debounce_s + harness.dt_s + 1e-9
    fault = next(f for f in harness.step().faults if f.code == code)
    assert (fault.module_id, fault.cell) == where
    assert fault.latched == (level == F)


@pytest.mark.parametrize("code,setter,where,current,steps,good", CASES, ids=[c[0] for c in CASES])
def test_msl_latches_and_reset_needs_cause_gone(harness, code, setter, where, current, steps, good):
    if current is not None:
        harness.current_a = current
    value, level, debounce_s = steps[2]
    setter(harness, value)
    result = harness.run(debounce_s + 0.5)
    assert result.level == F and not result.contactors_allowed and result.charge_derating == 0.0

    refused = harness.ev.reset(harness.t)
    assert not refused.success and f"{code}/{where[0]}/{where[1]}" in refused.refused
    assert "cause persists" in refused.reason

    setter(harness, good)
    result = harness.run(0.5)
    assert levels(result).get((code, *where)) == F, "latched fault cleared without reset"
    answer = harness.ev.reset(harness.t)
    assert answer.success and f"{code}/{where[0]}/{where[1]}" in answer.cleared
    assert harness.step().level == Level.OK


def test_hysteresis_holds_until_value_is_clearly_back(harness):
    harness.volts[1, 2] = 4.19
    harness.run(1.5)
    harness.volts[1, 2] = 4.17  # below 4.18 but not below 4.18 - 0.02
    assert levels(harness.run(1.0))[("CELL_OV", 1, 2)] == W
    harness.volts[1, 2] = 4.14
    assert ("CELL_OV", 1, 2) not in levels(harness.run(0.2))


def test_low_side_hysteresis(harness):
    harness.insulation_ohm = 4e5
    harness.run(6.0)
    harness.insulation_ohm = 5.2e5  # above 500 kohm, inside the 50 kohm band
    assert levels(harness.run(1.0))[("INSULATION_LOW", -1, -1)] == W
    harness.insulation_ohm = 6e5
    assert harness.run(0.2).level == Level.OK


def test_reset_refused_inside_hysteresis_band(harness):
    harness.volts[1, 2] = 4.26
    harness.run(0.5)
    harness.volts[1, 2] = 4.215  # below MSL 4.25 but not below 4.25 - 0.05
    harness.run(0.5)
    assert not harness.ev.reset(harness.t).success
    harness.volts[1, 2] = 4.0
    harness.run(0.2)
    assert harness.ev.reset(harness.t).success


def test_short_excursion_below_debounce_raises_nothing(harness):
    harness.volts[1, 2] = 4.30
    harness.step()
    harness.step()  # 0.1 s < MSL debounce 0.2 s
    harness.volts[1, 2] = 3.7
    assert harness.run(2.0).level == Level.OK


def test_temperature_window_follows_current_sign(harness):
    harness.temps[0, 1] = 44.0  # inside discharge window, above charge RSL
    assert harness.run(3.0).level == Level.OK
    harness.current_a = 20.0
    result = harness.run(1.5)
    assert levels(result)[("TEMP_HIGH_CHARGE", 0, 1)] == A
    harness.current_a = -20.0
    assert harness.run(0.2).level == Level.OK


def test_unknown_current_selects_stricter_charge_window(harness):
    harness.temps[0, 1] = 44.0
    harness.current_a = math.nan
    assert levels(harness.run(1.5)).get(("TEMP_HIGH_CHARGE", 0, 1)) == A


def test_charge_window_fault_reset_needs_temperature_back_in_window(harness):
    harness.current_a = 10.0
    harness.temps[0, 1] = 47.0
    harness.run(1.5)
    harness.current_a = 0.0  # contactors open, no current: the window check is inactive
    harness.run(0.5)
    assert not harness.ev.reset(harness.t).success
    harness.temps[0, 1] = 30.0
    harness.run(0.2)
    assert harness.ev.reset(harness.t).success


def test_alarm_keeps_pack_closed_but_forbids_closing(harness):
    harness.volts[1, 2] = 4.23
    result = harness.run(0.8)
    assert result.level == A
    assert not result.contactors_allowed and result.stay_closed_allowed
    assert result.charge_derating == 0.0 and result.discharge_derating == 1.0


def test_warning_derates_and_allows_contactors(harness):
    harness.volts[0, 0] = 3.05  # below the 3.10 V MOL, above the RSL
    result = harness.run(1.5)
    assert result.level == W and result.contactors_allowed
    assert result.discharge_derating == 0.5 and result.charge_derating == 1.0


def test_fault_descriptions_name_location_value_and_limit(harness):
    harness.volts[1, 2] = 4.3
    fault = next(f for f in harness.run(0.5).faults if f.code == "CELL_OV")
    assert fault.limit == 4.25 and np.isclose(fault.value, 4.3, atol=0.002)
    assert "module 1 cell 2" in fault.description and "4.25 V" in fault.description
    assert fault.since_s > 0
