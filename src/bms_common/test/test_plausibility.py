"""The contract's sample rule (bms_common.plausibility), shared by every consumer."""

import numpy as np
import pytest

from bms_common.pack_config import load_pack_config
from bms_common.plausibility import (
    STAMP_BEHIND_TOLERANCE_S,
    ClockRate,
    SampleGate,
    physical_ranges,
    stamp_problem,
)
from bms_interfaces.msg import CellMeasurements


def test_flag_bits_are_the_message_constants():
    from bms_common import plausibility as p
    for name in ("CELL_OK", "CELL_OPEN_WIRE", "CELL_ADC_MISMATCH", "CELL_OUT_OF_RANGE", "MODULE_OK",
                 "MODULE_AFE_COMM_ERROR", "MODULE_AFE_SELF_TEST", "MODULE_THERMISTOR_FAULT"):
        assert getattr(p, name) == getattr(CellMeasurements, name), name


def test_ranges_come_from_the_packs_limit_table():
    nmc, lfp = physical_ranges(load_pack_config("demo")), physical_ranges(load_pack_config("lfp"))
    assert (nmc.cell_voltage_min_v, nmc.cell_voltage_max_v) == (1.0, 5.0)
    assert lfp.cell_voltage_max_v == 4.5
    assert list(nmc.bad_voltages(np.array([3.7, 3700.0, np.nan, 0.2]))) == [False, True, False, True]


@pytest.mark.parametrize(("offset_s", "rate", "usable"), [
    (0.2, 1.0, True), (0.5, 1.0, False), (-0.9, 1.0, True), (-2.0, 1.0, False),
    (-2.0, 5.0, True), (-6.0, 5.0, False), (0.5, 5.0, True), (1.5, 5.0, False), (-0.5, 0.0, True),
    (0.3, 0.5, False),
])
def test_stamp_tolerance_holds_on_the_wall_clock_too(offset_s, rate, usable):
    assert (stamp_problem(100.0 + offset_s, 100.0, rate) is None) == usable


def test_clock_rate_is_simulated_seconds_per_wall_second():
    rate = ClockRate()
    for k in range(40):
        rate.observe(now_s=5.0 * k * 0.05, wall_s=k * 0.05)
    assert rate.rate == pytest.approx(5.0)
    rate.observe(now_s=0.0, wall_s=2.1)  # a restarted simulation
    assert rate.observe(now_s=0.1, wall_s=2.2) == pytest.approx(5.0)  # kept until measured afresh


def test_gate_rejects_repeats_and_old_numbers_but_accepts_a_restart():
    gate = SampleGate(modules=2, cells=4, sensors=2)
    assert gate.check(0, 1.0, 4, 2, 0, 10, 1.0) is None
    assert gate.check(0, 1.1, 4, 2, 0, 10, 1.1)[0] == "sequence"
    assert gate.check(0, 1.0, 4, 2, 0, 5, 1.1)[0] == "sequence"  # older number, older stamp
    assert gate.check(0, 1.2, 4, 2, 0, 0, 1.2) is None  # restart: counts from 0, newer stamp
    assert gate.check(0, 1.3, 3, 2, 0, 1, 1.3)[0] == "malformed"
    assert gate.check(0, 1.3, 4, 2, 2, 1, 1.3)[0] == "malformed"  # cell flags: empty or one per cell
    assert gate.check(5, 1.3, 4, 2, 0, 1, 1.3)[0] == "unknown_module"
    kind, text = gate.check(1, 1.3 - 1.5 * STAMP_BEHIND_TOLERANCE_S, 4, 2, 4, 1, 1.3)
    assert kind == "stamp" and "behind" in text and "module 1" in text
