"""Contactor node safety path: closing only while allowed, opening on FAULT/silence, mismatch."""

from __future__ import annotations

from bms_master.contactor_logic import ContactorLogic, ContactorLogicConfig
from bms_master.enums import OpenReason, SafetyLevel
from bms_master.state_machine import ALL_OPEN, MAINS_CLOSED, PRECHARGING, ContactorSet

CFG = ContactorLogicConfig(safety_timeout_s=0.5, mismatch_debounce_s=0.1)


def closed_logic(now_s: float = 0.0) -> ContactorLogic:
    logic = ContactorLogic(CFG)
    logic.set_safety(SafetyLevel.OK, True, now_s)
    logic.set_command(MAINS_CLOSED)
    assert logic.step(now_s, None).coils == MAINS_CLOSED
    return logic


def test_follows_command_while_fresh_status_allows():
    logic = ContactorLogic(CFG)
    logic.set_safety(SafetyLevel.WARNING, True, 0.0)
    logic.set_command(PRECHARGING)
    out = logic.step(0.1, None)
    assert out.coils == PRECHARGING and out.open_reason is OpenReason.NONE and not out.opened_by_safety


def test_no_close_without_any_status():
    logic = ContactorLogic(CFG)
    logic.set_command(PRECHARGING)
    out = logic.step(0.0, None)
    assert out.coils == ALL_OPEN and out.open_reason is OpenReason.SAFETY_SILENT and out.opened_by_safety


def test_close_refused_when_not_allowed():
    logic = ContactorLogic(CFG)
    logic.set_safety(SafetyLevel.ALARM, False, 0.0)
    logic.set_command(PRECHARGING)
    out = logic.step(0.0, None)
    assert out.coils == ALL_OPEN and out.open_reason is OpenReason.NOT_ALLOWED and out.opened_by_safety


def test_alarm_holds_closed_contactors():
    logic = closed_logic()
    logic.set_safety(SafetyLevel.ALARM, False, 0.1)
    out = logic.step(0.1, None)
    assert out.coils == MAINS_CLOSED and out.open_reason is OpenReason.NONE


def test_alarm_refuses_closing_an_additional_contactor():
    logic = closed_logic()
    logic.set_safety(SafetyLevel.ALARM, False, 0.1)
    logic.set_command(ContactorSet(True, True, True))
    out = logic.step(0.1, None)
    assert out.coils == MAINS_CLOSED and out.open_reason is OpenReason.NOT_ALLOWED


def test_fault_opens_everything_at_once():
    logic = closed_logic()
    logic.set_safety(SafetyLevel.FAULT, False, 0.1)
    out = logic.step(0.1, None)
    assert out.coils == ALL_OPEN and out.open_reason is OpenReason.SAFETY_FAULT and out.opened_by_safety


def test_silent_supervisor_opens_after_timeout():
    logic = closed_logic(0.0)
    assert logic.step(0.5, None).coils == MAINS_CLOSED
    out = logic.step(0.51, None)
    assert out.coils == ALL_OPEN and out.open_reason is OpenReason.SAFETY_SILENT


def test_status_silent_on_the_wall_clock_opens_although_the_node_clock_stands_still():
    # A node on simulated time cut off from the supervisor is cut off from /clock too.
    logic = closed_logic(0.0)
    out = logic.step(0.0, None, silent=True)
    assert out.coils == ALL_OPEN and out.open_reason is OpenReason.SAFETY_SILENT


def test_no_reclose_after_safety_opening_until_command_drops():
    logic = closed_logic(0.0)
    logic.step(1.0, None)  # silent: opened
    logic.set_safety(SafetyLevel.OK, True, 1.0)
    out = logic.step(1.0, None)
    # The command still says closed: main+ stays open (no reclosing without a precharge); main-
    # alone may close again.
    assert not out.coils.main_plus and out.opened_by_safety
    logic.set_command(ALL_OPEN)
    out = logic.step(1.1, None)
    assert out.coils == ALL_OPEN and out.open_reason is OpenReason.NONE
    logic.set_command(PRECHARGING)
    assert logic.step(1.2, None).coils == PRECHARGING


def test_refused_precharge_starts_once_allowed():
    logic = ContactorLogic(CFG)
    logic.set_safety(SafetyLevel.ALARM, False, 0.0)
    logic.set_command(PRECHARGING)
    assert logic.step(0.0, None).coils == ALL_OPEN
    logic.set_safety(SafetyLevel.OK, True, 0.1)
    assert logic.step(0.1, None).coils == PRECHARGING


def test_refused_main_plus_needs_a_new_command_after_allowed_again():
    logic = ContactorLogic(CFG)
    logic.set_safety(SafetyLevel.ALARM, False, 0.0)
    logic.set_command(MAINS_CLOSED)
    logic.step(0.0, None)
    logic.set_safety(SafetyLevel.OK, True, 0.1)
    assert not logic.step(0.1, None).coils.main_plus
    logic.set_command(ALL_OPEN)
    logic.step(0.2, None)
    logic.set_command(MAINS_CLOSED)
    assert logic.step(0.3, None).coils == MAINS_CLOSED


def test_welded_contactor_detected_after_debounce():
    logic = closed_logic(0.0)
    logic.set_command(ALL_OPEN)
    welded = ContactorSet(main_plus=True)
    assert not logic.step(0.0, welded).feedback_mismatch
    assert not logic.step(0.1, welded).feedback_mismatch
    out = logic.step(0.11, welded)
    assert out.feedback_mismatch and out.mismatched == ContactorSet(main_plus=True)
    assert out.coils == ALL_OPEN


def test_slow_but_normal_contactor_is_no_mismatch():
    logic = ContactorLogic(CFG)
    logic.set_safety(SafetyLevel.OK, True, 0.0)
    logic.set_command(PRECHARGING)
    assert not logic.step(0.0, ALL_OPEN).feedback_mismatch
    assert not logic.step(0.05, ALL_OPEN).feedback_mismatch
    assert not logic.step(0.08, PRECHARGING).feedback_mismatch
    assert not logic.step(0.5, PRECHARGING).feedback_mismatch


def test_feedback_counts_only_once_the_hardware_applied_the_coil():
    # The simulated plant applies a coil when its command arrives over DDS; on a loaded machine
    # simulated time can pass first. Until the plant reports the coil, its feedback is no weld.
    logic = ContactorLogic(CFG)
    logic.set_safety(SafetyLevel.OK, True, 0.0)
    logic.set_command(PRECHARGING)
    pending = PRECHARGING  # main- and precharge written, not applied yet
    for now_s in (0.0, 0.1, 0.3, 0.6):
        logic.set_safety(SafetyLevel.OK, True, now_s)
        assert not logic.step(now_s, ALL_OPEN, not_yet_applied=pending).feedback_mismatch
    # Applied at 0.6 s but the contacts stay open (welded open): a mismatch after the debounce.
    assert not logic.step(0.65, ALL_OPEN, not_yet_applied=ALL_OPEN).feedback_mismatch
    out = logic.step(0.8, ALL_OPEN, not_yet_applied=ALL_OPEN)
    assert out.feedback_mismatch and out.mismatched == PRECHARGING
