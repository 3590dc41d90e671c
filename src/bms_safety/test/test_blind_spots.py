"""No blind spots (docs/safety.md): a module whose every sample is rejected is stale as if silent;
stale data is not evaluated; AFE flags and stamps outside the tolerance have their reactions."""

import numpy as np
import pytest
from safety_harness import Harness, levels

from bms_common.plausibility import CELL_ADC_MISMATCH, CELL_OPEN_WIRE, MODULE_AFE_SELF_TEST
from bms_safety.codes import Level


def wrong_length(sample: dict) -> None:
    sample["voltages_v"] = sample["voltages_v"][:-1]


def stuck_sequence(sample: dict) -> None:
    sample["sequence"] = 20  # the counter stops at the last number sent (1 s at 20 Hz)


def stamped_ahead(sample: dict) -> None:
    sample["stamp_s"] += 0.5


def stamped_behind(sample: dict) -> None:
    sample["stamp_s"] -= 2.0


@pytest.mark.parametrize(("defect", "code", "level"), [
    (wrong_length, "PLAUS_MALFORMED", Level.ALARM),
    (stuck_sequence, "PLAUS_SEQUENCE", Level.WARNING),
    (stamped_ahead, "PLAUS_STAMP", Level.WARNING),
    (stamped_behind, "PLAUS_STAMP", Level.WARNING),
])
def test_a_module_whose_samples_are_all_rejected_goes_stale_and_its_cells_are_unknown(defect, code, level):
    h = Harness()
    h.run(1.0)
    h.defects[1] = defect
    h.volts[1, 2] = 4.40  # above MSL, inside the rejected samples: never evaluated
    timeout_s = h.ev.limits.timeouts.module_stale_s
    before = levels(h.run(timeout_s - 0.1))
    assert before.get((code, 1, -1)) == level and ("STALE_MODULE", 1, -1) not in before
    after = levels(h.run(0.3))
    assert after[("STALE_MODULE", 1, -1)] == Level.FAULT
    assert ("CELL_OV", 1, 2) not in after


def test_cell_spread_uses_fresh_modules_only():
    h = Harness()
    h.volts[1, :] = 3.2  # module 1 far below module 0 once it has gone silent
    h.run(0.5)
    h.silent_modules.add(1)
    h.volts[1, :] = 3.7
    h.volts[0, :] = 4.0
    result = levels(h.run(3.0))
    assert result[("STALE_MODULE", 1, -1)] == Level.FAULT
    assert not any(code == "CELL_SPREAD" for code, _, _ in result)


def test_afe_flags_are_plausibility_faults_where_they_point():
    h = Harness()
    flags = np.zeros(4, dtype=np.uint8)
    flags[3] = CELL_OPEN_WIRE

    def flagged(sample: dict) -> None:
        sample.update(cell_flags=flags.tobytes(), module_flags=MODULE_AFE_SELF_TEST)
    h.defects[0] = flagged
    result = h.run(0.5)
    assert levels(result)[("PLAUS_OPEN_WIRE", 0, 3)] == Level.FAULT
    fault = next(f for f in result.faults if f.code == "PLAUS_AFE_DIAG")
    assert (fault.module_id, fault.level) == (0, Level.FAULT) and "MODULE_AFE_SELF_TEST" in fault.description
    flags[:] = 0
    flags[1] = CELL_ADC_MISMATCH

    def mismatch(sample: dict) -> None:
        sample.update(cell_flags=flags.tobytes())
    h.defects = {1: mismatch}
    fault = next(f for f in h.run(0.5).faults if f.code == "PLAUS_AFE_DIAG" and f.module_id == 1)
    assert "CELL_ADC_MISMATCH on cells 1" in fault.description


def test_cell_flags_of_the_wrong_length_are_malformed():
    h = Harness()
    h.defects[0] = lambda sample: sample.update(cell_flags=b"\0\0")
    assert levels(h.run(0.3))[("PLAUS_MALFORMED", 0, -1)] == Level.ALARM


@pytest.mark.parametrize("offset_s", [0.5, -2.0, float("nan")])
def test_a_current_sensor_whose_samples_are_all_rejected_goes_stale(offset_s):
    # A pack measurement stamped outside the tolerance is no sample, as a module's is: an hour
    # ahead it would otherwise count as fresh for ever.
    h = Harness()
    h.run(1.0)
    h.pack_stamp_offset_s = offset_s
    h.current_a = 900.0  # far above every limit, inside the rejected samples: never evaluated
    timeout_s = h.ev.limits.timeouts.current_sensor_stale_s
    before = h.run(timeout_s - 0.1)
    fault = next(f for f in before.faults if f.code == "PLAUS_PACK_STAMP")
    assert fault.level == Level.WARNING and "current sensor sample" in fault.description and "dropped" in fault.description
    assert ("STALE_CURRENT_SENSOR", -1, -1) not in levels(before)
    after = levels(h.run(0.3))
    assert after[("STALE_CURRENT_SENSOR", -1, -1)] == Level.FAULT
    assert not any(code.startswith(("OVERCURRENT_", "PLAUS_CURRENT")) for code, _, _ in after)
    h.pack_stamp_offset_s = 0.0  # the same samples stamped right: seen at once
    assert ("OVERCURRENT_CHARGE", -1, -1) in levels(h.run(1.0))
