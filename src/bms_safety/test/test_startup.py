"""At bring-up, inputs never heard from are missing (no closing), not stale (no latched FAULT)."""

from __future__ import annotations

import numpy as np

from bms_common.pack_config import load_pack_config
from bms_safety.codes import Level
from bms_safety.evaluator import SafetyEvaluator


def test_missing_inputs_block_closing_without_faults():
    pack = load_pack_config("demo")
    evaluator = SafetyEvaluator.from_pack(pack, start_s=0.0)
    result = evaluator.evaluate(60.0)
    assert not any(f.code.startswith("STALE") for f in result.faults)
    assert not result.contactors_allowed
    assert result.waiting_for[0] == "module 0" and "pack measurement" in result.waiting_for

    for module in range(pack.modules):
        evaluator.update_module(module, 60.0, np.full(12, 3.7), np.full(4, 25.0), 0, received_s=60.0)
    evaluator.update_pack(60.0, 0.0, 3.7 * 48, 0.0, 5e6, True, received_s=60.0)
    result = evaluator.evaluate(60.05)
    assert result.waiting_for == () and result.contactors_allowed and result.level <= Level.WARNING

    # Once heard, silence is stale as usual (after its debounce).
    evaluator.evaluate(65.0)
    result = evaluator.evaluate(66.0)
    assert {f.code for f in result.faults} >= {"STALE_MODULE", "STALE_CURRENT_SENSOR"}
    assert not result.contactors_allowed


def test_data_fresh_on_the_wall_clock_is_not_stale():
    pack = load_pack_config("demo")
    evaluator = SafetyEvaluator.from_pack(pack, start_s=0.0)
    for module in range(pack.modules):
        evaluator.update_module(module, 1.0, np.full(12, 3.7), np.full(4, 25.0), 0, received_s=1.0)
    evaluator.update_pack(1.0, 0.0, 3.7 * 48, 0.0, 5e6, True, received_s=1.0)
    fresh = np.ones(pack.modules, dtype=bool)
    fresh[3] = False  # module 3 is old on both clocks
    for now_s in (5.0, 6.0):  # a sped-up simulation: 5 s of sim time, a blink of wall time
        evaluator.count_as_received(now_s, fresh, pack=True, estimator=False)
        result = evaluator.evaluate(now_s)
    stale = [(f.code, f.module_id) for f in result.faults if f.code.startswith("STALE")]
    assert stale == [("STALE_MODULE", 3)]


def test_readings_that_agree_across_a_gap_are_not_stuck():
    # A module silent for 10.5 s (late delivery in a sped-up simulation) whose first sample after
    # the gap repeats an old value by chance (0.1 mV quantisation) is not a frozen sensor.
    pack = load_pack_config("demo")
    evaluator = SafetyEvaluator.from_pack(pack, start_s=0.0)
    volts = np.full(12, 3.9)
    evaluator.update_module(0, 1.0, volts, np.full(4, 25.0), 0, received_s=1.0)
    evaluator.update_module(0, 11.5, volts, np.full(4, 25.0), 1, received_s=11.5)
    for now_s in (11.5, 11.6):
        result = evaluator.evaluate(now_s)
    assert not [f for f in result.faults if f.code == "PLAUS_VOLTAGE_STUCK"]
