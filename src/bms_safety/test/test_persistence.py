"""Latched faults and the fault log survive a restart; writes are atomic."""

import json
import os

import pytest
from safety_harness import Harness, supervised

from bms_safety.codes import Level
from bms_safety.diagnostics import DIAG_ERROR, DIAG_OK, DIAG_STALE, DIAG_WARN, group_summary
from bms_safety.persistence import load_state, save_state, state_file
from bms_safety.supervisor import SafetySupervisor


def test_latched_fault_survives_restart_and_resets_only_when_cause_gone(tmp_path):
    h, sup = supervised(tmp_path)
    h.run(1.0)
    h.volts[1, 2] = 4.3
    h.run(0.5)
    assert state_file(tmp_path).exists()

    restarted = Harness()  # fresh process: healthy data only
    sup2 = SafetySupervisor(restarted.ev, tmp_path)
    restarted.evaluate = sup2.evaluate
    assert any("restored latched CELL_OV module 1 cell 2" in n for n in sup2.notes)
    assert not sup2.reset(0.0).success, "reset before any evaluation must not trust unknown causes"
    restarted.run(0.5)
    result = restarted.step()
    assert result.level == Level.FAULT and not result.contactors_allowed
    assert sup2.reset(restarted.t).success
    assert restarted.step().level == Level.OK
    state, problem = load_state(state_file(tmp_path))
    assert problem is None and state.latched == []


def test_fault_log_counts_occurrences_with_freeze_frames(tmp_path):
    h, sup = supervised(tmp_path)
    h.run(1.0)
    for _ in range(2):
        h.volts[0, 1] = 3.05
        h.run(1.5)
        h.volts[0, 1] = 3.7
        h.run(0.5)
    sup.save(h.t)
    entry = load_state(state_file(tmp_path))[0].log["CELL_UV/0/1"]
    assert entry.count == 2 and entry.max_level == Level.WARNING and entry.first_s < entry.last_s
    assert abs(entry.first_snapshot["cell_voltages_v"][1] - 3.05) < 0.003
    assert entry.first_snapshot["pack_current_a"] == -10.0
    text = sup.format_log()
    assert "CELL_UV module 0 cell 1: 2x" in text and "at first:" in text


def test_write_is_atomic_and_failed_write_keeps_old_state(tmp_path, monkeypatch):
    h, sup = supervised(tmp_path)
    h.run(1.0)
    h.volts[1, 2] = 4.3
    h.run(0.5)
    path = state_file(tmp_path)
    before = path.read_text()
    assert json.loads(before)["latched"][0]["code"] == "CELL_OV"

    def fail(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    assert not sup.save(h.t) and "disk full" in sup.persist_error
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name], "temporary file left behind"


def test_unreadable_state_latches_a_fault_until_reset(tmp_path):
    state_file(tmp_path).write_text("{ torn")
    h = Harness()
    sup = SafetySupervisor(h.ev, tmp_path)
    assert any("unreadable" in n for n in sup.notes)
    result = h.run(0.3)
    assert [f.code for f in result.faults if f.latched] == ["STATE_UNREADABLE"]
    assert sup.reset(h.t).success and h.step().level == Level.OK


def test_latch_for_a_module_the_pack_no_longer_has_is_dropped_with_a_note(tmp_path):
    from bms_safety.persistence import LatchedRecord, SafetyState

    save_state(state_file(tmp_path), SafetyState([LatchedRecord("CELL_OV", 9, 0, 1.0, "old")], {}))
    sup = SafetySupervisor(Harness().ev, tmp_path)
    assert any("does not exist" in n for n in sup.notes)


@pytest.mark.parametrize("setup,seconds,group,expected", [
    (lambda h: None, 1.0, "voltage", DIAG_OK),
    (lambda h: h.volts.__setitem__((1, 2), 4.3), 1.0, "voltage", DIAG_ERROR),
    (lambda h: h.volts.__setitem__((1, 2), 3.05), 1.5, "voltage", DIAG_WARN),
    (lambda h: h.silent_modules.add(0), 1.5, "temperature", DIAG_STALE),
    (lambda h: h.silent_modules.add(0), 1.5, "communication", DIAG_ERROR),
    (lambda h: setattr(h, "estimator_silent", True), 6.0, "estimator", DIAG_STALE),
])
def test_diagnostics_group_levels(harness, setup, seconds, group, expected):
    setup(harness)
    statuses = {s.group: s for s in group_summary(harness.run(seconds))}
    assert len(statuses) == 8 and statuses[group].level == expected
