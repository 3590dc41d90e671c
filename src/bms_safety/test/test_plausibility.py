"""Plausibility, stale data, bad input, HVIL, contactor mismatch and estimator loss."""

import math

import numpy as np
from safety_harness import Harness, levels

from bms_safety.codes import Level


def test_nan_cell_voltage_is_a_fault_at_that_cell(harness):
    harness.volts[0, 3] = math.nan
    result = harness.run(0.7)
    assert levels(result)[("PLAUS_VOLTAGE_NAN", 0, 3)] == Level.FAULT


def test_nan_temperature_is_a_fault_at_that_sensor(harness):
    harness.temps[1, 0] = math.nan
    assert levels(harness.run(1.2))[("PLAUS_TEMP_NAN", 1, 0)] == Level.FAULT


def test_reading_outside_physical_range(harness):
    harness.temps[1, 1] = 180.0
    fault = next(f for f in harness.run(1.2).faults if f.code == "PLAUS_TEMP_RANGE")
    assert (fault.module_id, fault.cell, fault.limit) == (1, 1, 125.0)


def test_noisy_resting_cell_is_not_stuck():
    h = Harness(dt_s=0.1)
    h.current_a = 0.0
    result = h.run(120.0)  # twelve times the stuck time, at rest
    assert not any(f.code.endswith("_STUCK") for f in result.faults)


def test_frozen_reading_is_stuck_after_stuck_time(harness):
    harness.frozen[(1, 3)] = 3.7012
    stuck_s = harness.ev.limits.plausibility.voltage_stuck_time_s
    before = harness.run(stuck_s - 0.5)
    assert ("PLAUS_VOLTAGE_STUCK", 1, 3) not in levels(before)
    after = harness.run(1.0)
    assert levels(after)[("PLAUS_VOLTAGE_STUCK", 1, 3)] == Level.ALARM
    del harness.frozen[(1, 3)]
    assert ("PLAUS_VOLTAGE_STUCK", 1, 3) not in levels(harness.run(0.2))


def test_silent_module_is_stale_not_stuck(harness):
    harness.silent_modules.add(1)
    result = harness.run(15.0)
    codes = {f.code for f in result.faults}
    assert "STALE_MODULE" in codes and "PLAUS_VOLTAGE_STUCK" not in codes


def test_pack_voltage_against_sum_of_cells(harness):
    harness.pack_offset_v = 10.0  # 29.6 V of cells: tolerance 2 V + 2 %
    result = harness.run(2.5)
    fault = next(f for f in result.faults if f.code == "PLAUS_PACK_VOLTAGE")
    assert fault.level == Level.ALARM and math.isclose(fault.value, 10.0, abs_tol=0.01)
    harness.pack_offset_v = 1.0
    assert harness.run(0.2).level == Level.OK


def test_nan_current_is_a_fault(harness):
    harness.current_a = math.nan
    assert levels(harness.run(0.5))[("PLAUS_CURRENT", -1, -1)] == Level.FAULT


def test_module_stale_after_timeout_plus_debounce(harness):
    timeout_s = harness.ev.limits.timeouts.module_stale_s
    harness.silent_modules.add(1)
    assert ("STALE_MODULE", 1, -1) not in levels(harness.run(timeout_s))
    result = harness.run(0.2)
    assert levels(result)[("STALE_MODULE", 1, -1)] == Level.FAULT
    assert ("STALE_MODULE", 0, -1) not in levels(result)


def test_current_sensor_stale(harness):
    harness.pack_silent = True
    assert levels(harness.run(0.8))[("STALE_CURRENT_SENSOR", -1, -1)] == Level.FAULT


def test_estimator_loss_is_only_a_warning(harness):
    harness.estimator_silent = True
    result = harness.run(6.0)
    assert result.level == Level.WARNING and result.contactors_allowed
    assert levels(result)[("ESTIMATOR_LOSS", -1, -1)] == Level.WARNING
    harness.estimator_silent = False
    assert harness.run(0.2).level == Level.OK


def test_starved_supervisor_does_not_declare_stale_before_draining_its_queue(harness):
    """A sped-up simulation may run the supervisor's timer late, before queued messages are
    handled: one late evaluation only arms the debounce, the next (after the queue) disarms it."""
    ev = harness.ev
    late_s = harness.t + 3.0
    assert ev.evaluate(late_s).level == Level.OK
    for m in range(2):
        harness.seq[m] += 1
        ev.update_module(m, late_s, np.full(4, 3.7) + np.arange(4) * 1e-3, [25.0, 25.1], harness.seq[m])
    ev.update_pack(late_s, -10.0, 29.6, 29.6, 5e6, True)
    ev.update_estimator(late_s)
    assert ev.evaluate(late_s + 0.05).level == Level.OK


def test_hvil_open_is_a_latched_fault(harness):
    harness.hvil_closed = False
    result = harness.run(0.3)
    assert levels(result)[("HVIL_OPEN", -1, -1)] == Level.FAULT and not result.contactors_allowed
    harness.hvil_closed = True
    harness.run(0.2)
    assert harness.ev.reset(harness.t).success


def test_welded_contactor_feedback_mismatch(harness):
    ev = harness.ev
    ev.update_contactors(harness.t, commanded=[False, False, False], closed=[True, False, False])
    assert ("CONTACTOR_MISMATCH", -1, -1) not in levels(harness.run(0.3))
    assert levels(harness.run(0.4))[("CONTACTOR_MISMATCH", -1, -1)] == Level.FAULT


def test_a_mismatch_in_a_sped_up_simulation_must_last_its_debounce_on_the_wall_clock_too(harness):
    # At 10x a feedback round trip that a loaded machine slows to 0.1 s of wall time is 1 s of
    # simulated time: not a weld. The debounce (0.5 s) must pass on both clocks.
    wall = {"s": 100.0}
    harness.evaluate = lambda t: harness.ev.evaluate(t, wall["s"] + t / 10.0)
    harness.ev.update_contactors(harness.t, commanded=[False, False, False], closed=[True, False, False])
    assert ("CONTACTOR_MISMATCH", -1, -1) not in levels(harness.run(4.0))  # 0.4 s of wall time
    assert levels(harness.run(1.5))[("CONTACTOR_MISMATCH", -1, -1)] == Level.FAULT  # 0.55 s


def test_feedback_gets_a_fresh_debounce_for_each_new_command(harness):
    # DRIVE -> STANDBY -> PRECHARGE in quick succession (the soak's switch to CHARGE at 16x):
    # the coils lag each command by 0.3 s, so the feedback disagrees for 0.6 s in a row, but it
    # follows every single command within the 0.5 s debounce.
    ev = harness.ev
    ev.update_contactors(harness.t, commanded=[True, True, False], closed=[True, True, False])
    harness.run(0.2)
    ev.update_contactors(harness.t, commanded=[False, False, False], closed=[True, True, False])
    harness.run(0.3)
    ev.update_contactors(harness.t, commanded=[False, True, True], closed=[False, False, False])
    assert ("CONTACTOR_MISMATCH", -1, -1) not in levels(harness.run(0.3))
    ev.update_contactors(harness.t, commanded=[False, True, True], closed=[False, True, True])
    assert ("CONTACTOR_MISMATCH", -1, -1) not in levels(harness.run(0.5))
    # A coil that does not follow its command is still a fault after the debounce.
    ev.update_contactors(harness.t, commanded=[False, False, False], closed=[False, True, True])
    assert ("CONTACTOR_MISMATCH", -1, -1) not in levels(harness.run(0.3))
    ev.update_contactors(harness.t, commanded=[False, False, False], closed=[False, True, True])
    assert levels(harness.run(0.4))[("CONTACTOR_MISMATCH", -1, -1)] == Level.FAULT


def test_switching_one_coil_does_not_hide_another_that_is_welded(harness):
    ev = harness.ev
    # main+ welded: commanded open, reads closed; precharge toggles every 0.2 s meanwhile.
    for k in range(4):
        precharge = k % 2 == 0
        ev.update_contactors(harness.t, commanded=[False, False, precharge], closed=[True, False, precharge])
        result = harness.run(0.2)
    assert levels(result)[("CONTACTOR_MISMATCH", -1, -1)] == Level.FAULT


def test_a_new_command_does_not_let_a_latched_mismatch_be_reset(harness):
    ev = harness.ev
    ev.update_contactors(harness.t, commanded=[False, False, False], closed=[True, False, False])
    assert levels(harness.run(0.7))[("CONTACTOR_MISMATCH", -1, -1)] == Level.FAULT
    # A new command for the welded coil, still not followed: the debounce restarts, but the
    # latched fault must not count as gone in that tick.
    ev.update_contactors(harness.t, commanded=[True, False, False], closed=[False, False, False])
    harness.step()
    assert not ev.reset(harness.t).success


def test_wrong_array_length_is_rejected_as_plausibility_fault(harness):
    ev = harness.ev
    assert not ev.update_module(0, harness.t, [3.7] * 3, [25.0, 25.0], 10_000)
    fault = next(f for f in ev.evaluate(harness.t).faults if f.code == "PLAUS_MALFORMED")
    assert fault.module_id == 0 and "expected 4 cell voltages and 2 temperatures, got 3 and 2" in fault.description
    hold_s = ev.limits.plausibility.input_fault_hold_s
    assert "PLAUS_MALFORMED" not in {f.code for f in harness.run(hold_s + 0.2).faults}


def test_unknown_module_id(harness):
    assert not harness.ev.update_module(7, harness.t, [3.7] * 4, [25.0] * 2, 1)
    fault = next(f for f in harness.ev.evaluate(harness.t).faults if f.code == "PLAUS_UNKNOWN_MODULE")
    assert fault.value == 7 and "module_id 7" in fault.description and "0..1" in fault.description


def test_repeated_and_out_of_order_sequence_numbers(harness):
    ev, t = harness.ev, harness.t
    last = harness.seq[0]
    assert not ev.update_module(0, t, [3.7] * 4, [25.0] * 2, last)
    assert "repeated" in next(f for f in ev.evaluate(t).faults if f.code == "PLAUS_SEQUENCE").description
    assert not ev.update_module(0, t - 0.5, [3.7] * 4, [25.0] * 2, last - 3)
    assert "out-of-order" in ev.reporter.store.bad_sequence_note[0]


def test_restarted_slave_with_newer_stamp_is_accepted(harness):
    assert harness.ev.update_module(0, harness.t + 0.01, [3.7] * 4, [25.0] * 2, 0)


def test_garbage_input_never_raises(harness):
    ev, t = harness.ev, harness.t
    assert not ev.update_module(None, t, [3.7] * 4, [25.0] * 2, 1)  # type: ignore[arg-type]
    assert not ev.update_module(0, t + 0.01, "abc", [25.0] * 2, 1)  # type: ignore[arg-type]
    assert not ev.update_module(0, t + 0.01, [[3.7] * 4], [25.0] * 2, 1)
    assert not ev.update_module(1, math.nan, [3.7] * 4, [25.0] * 2, 10_000)
    assert not ev.update_module(1, t + 0.01, [3.7] * 4, [25.0] * 2, "x")  # type: ignore[arg-type]
    ev.update_pack(t, "bad", None, 0.0, math.nan, True)  # type: ignore[arg-type]
    codes = {f.code for f in ev.evaluate(t + 0.01).faults}
    assert {"PLAUS_UNKNOWN_MODULE", "PLAUS_MALFORMED"} <= codes


def test_large_pack_names_the_right_cell():
    h = Harness(modules=200, cells=16, sensors=4)
    h.run(1.0)
    h.volts[150, 9] = 4.3
    faults = [f for f in h.run(0.5).faults if f.code == "CELL_OV"]
    assert [(f.module_id, f.cell, f.level) for f in faults] == [(150, 9, Level.FAULT)]
