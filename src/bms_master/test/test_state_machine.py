"""Operating state machine, transition by transition (no ROS)."""

from __future__ import annotations

import math

import pytest

from bms_master.enums import OperatingState as S
from bms_master.enums import SafetyLevel
from bms_master.state_machine import (
    ALL_OPEN,
    MAINS_CLOSED,
    PRECHARGE_OVERLAP,
    PRECHARGING,
    ContactorFeedback,
    OperatingStateMachine,
    SafetyInput,
    StateMachineConfig,
)

PACK_V = 400.0
OK = SafetyInput(SafetyLevel.OK, contactors_allowed=True, latched_faults=False)
ALARM = SafetyInput(SafetyLevel.ALARM, contactors_allowed=False, latched_faults=False)
FAULT = SafetyInput(SafetyLevel.FAULT, contactors_allowed=False, latched_faults=True)


class Rig:
    """A state machine with a clock and an ideal contactor whose feedback follows the command."""

    def __init__(self, config: StateMachineConfig | None = None) -> None:
        self.sm = OperatingStateMachine(config)
        self.now_s = 0.0
        self.current_a = 0.0
        self.dc_link_v = 0.0
        self.safety = OK
        self.follow_feedback = True

    def tick(self, dt_s: float = 0.01):
        self.now_s += dt_s
        self.sm.set_safety(self.safety, self.now_s)
        self.sm.set_pack(PACK_V, self.dc_link_v, self.current_a)
        out = self.sm.step(self.now_s)
        if self.follow_feedback:
            c = out.command
            self.sm.set_contactor_feedback(ContactorFeedback(c.main_plus, c.main_minus, c.precharge))
        return out

    def request(self, state: S):
        self.sm.set_safety(self.safety, self.now_s)
        self.sm.set_pack(PACK_V, self.dc_link_v, self.current_a)
        return self.sm.request(state, self.now_s)

    def drive(self, state: S = S.DRIVE):
        assert self.request(state).accepted
        self.tick()
        self.dc_link_v = PACK_V
        for _ in range(20):
            self.tick()
        assert self.sm.state is state
        return self


def test_starts_in_standby_with_contactors_open():
    out = Rig().tick()
    assert out.state is S.STANDBY and out.command == ALL_OPEN


def test_standby_to_drive_closes_in_order_and_back():
    rig = Rig()
    result = rig.request(S.DRIVE)
    assert result.accepted and result.state is S.PRECHARGE
    commands = [rig.tick().command]
    assert commands[0] == PRECHARGING
    rig.dc_link_v = 0.96 * PACK_V
    while rig.sm.state is S.PRECHARGE:
        commands.append(rig.tick().command)
    assert rig.sm.state is S.DRIVE and rig.sm.reason == "precharge complete"
    distinct = [c for i, c in enumerate(commands) if i == 0 or c != commands[i - 1]]
    assert distinct == [PRECHARGING, PRECHARGE_OVERLAP, MAINS_CLOSED]
    assert rig.request(S.STANDBY).accepted
    assert rig.tick().command == ALL_OPEN and rig.sm.state is S.STANDBY


def test_standby_to_charge():
    assert Rig().drive(S.CHARGE).sm.command == MAINS_CLOSED


def test_main_plus_waits_for_dc_link_and_precharge_times_out_to_error():
    rig = Rig(StateMachineConfig(precharge_timeout_s=1.0))
    rig.request(S.DRIVE)
    rig.dc_link_v = 0.94 * PACK_V
    seen_main_plus = False
    for _ in range(150):
        seen_main_plus |= rig.tick().command.main_plus
    assert not seen_main_plus
    assert rig.sm.state is S.ERROR and "precharge timeout" in rig.sm.reason
    assert rig.sm.command == ALL_OPEN


def test_precharge_times_out_only_when_its_time_has_passed_on_the_wall_clock_too():
    # At 5x a command that needs 0.7 s of wall time to reach the contactor node (DDS matching at
    # start-up) is 3.5 s of simulated time: not a precharge that failed.
    rig = Rig(StateMachineConfig(precharge_timeout_s=3.0))
    rig.sm.set_safety(OK, 0.0)
    rig.sm.set_pack(PACK_V, 0.0, 0.0, stamp_s=0.0)
    assert rig.sm.request(S.DRIVE, 0.0).accepted
    for step in range(1, 41):  # 4 s simulated in 0.8 s wall
        rig.sm.set_safety(OK, 0.1 * step)
        out = rig.sm.step(0.1 * step, wall_s=100.0 + 0.02 * step)
    assert out.state is S.PRECHARGE
    rig.sm.set_safety(OK, 4.1)
    out = rig.sm.step(4.1, wall_s=103.1)
    assert out.state is S.ERROR and "precharge timeout" in out.reason


def test_dc_link_sample_from_before_the_precharge_does_not_complete_it():
    # The DC link read full just before a short emptied it: that old sample must not close main+.
    rig = Rig(StateMachineConfig(precharge_timeout_s=1.0))
    rig.sm.set_safety(OK, 0.0)
    rig.sm.set_pack(PACK_V, PACK_V, 0.0, stamp_s=0.0)
    rig.now_s = 0.05
    assert rig.sm.request(S.DRIVE, rig.now_s).accepted
    out = rig.sm.step(rig.now_s + 0.01)
    assert out.command == PRECHARGING and out.state is S.PRECHARGE
    rig.sm.set_pack(PACK_V, 2.0, 0.0, stamp_s=0.1)  # the first sample since the precharge began
    for step in range(150):
        rig.sm.set_safety(OK, 0.1 + 0.01 * step)
        out = rig.sm.step(0.1 + 0.01 * step)
        assert not out.command.main_plus
    assert out.state is S.ERROR and "precharge timeout" in out.reason


def test_precharge_relay_stays_closed_until_main_plus_confirms():
    rig = Rig(StateMachineConfig(contactor_confirm_timeout_s=0.5))
    rig.request(S.DRIVE)
    rig.follow_feedback = False
    rig.sm.set_contactor_feedback(ContactorFeedback(main_minus=True, precharge=True))
    rig.dc_link_v = PACK_V
    for _ in range(10):
        assert rig.tick().command == PRECHARGE_OVERLAP
    for _ in range(50):
        rig.tick()
    assert rig.sm.state is S.ERROR and "main+" in rig.sm.reason and rig.sm.command == ALL_OPEN


def test_closing_refused_when_not_allowed_or_safety_silent_or_pack_voltage_unknown():
    rig = Rig()
    rig.safety = ALARM
    rig.tick()
    refused = rig.request(S.DRIVE)
    assert not refused.accepted and "ALARM" in refused.reason and refused.state is S.STANDBY

    silent = OperatingStateMachine()
    silent.set_pack(PACK_V, 0.0, 0.0)
    refused = silent.request(S.DRIVE, 0.0)
    assert not refused.accepted and "no fresh safety status" in refused.reason

    rig = Rig()
    rig.tick()
    rig.sm.set_pack(math.nan, 0.0, 0.0)
    assert not rig.sm.request(S.DRIVE, rig.now_s).accepted


def test_alarm_during_precharge_aborts_to_standby():
    rig = Rig()
    rig.request(S.DRIVE)
    rig.tick()
    rig.safety = ALARM
    out = rig.tick()
    assert out.state is S.STANDBY and out.command == ALL_OPEN and "ALARM" in out.reason


def test_alarm_in_drive_stays_closed_but_no_new_close():
    rig = Rig().drive()
    rig.safety = ALARM
    for _ in range(50):
        out = rig.tick()
    assert out.state is S.DRIVE and out.command == MAINS_CLOSED
    rig.request(S.STANDBY)
    for _ in range(5):
        rig.tick()
    assert not rig.request(S.DRIVE).accepted


def test_fault_opens_immediately_even_under_current():
    rig = Rig().drive()
    rig.current_a = -250.0
    rig.safety = FAULT
    out = rig.tick()
    assert out.state is S.ERROR and out.command == ALL_OPEN and out.reason == "safety FAULT"


def test_feedback_mismatch_goes_to_error():
    rig = Rig().drive()
    rig.follow_feedback = False
    rig.sm.set_contactor_feedback(ContactorFeedback(True, True, False, feedback_mismatch=True))
    out = rig.tick()
    assert out.state is S.ERROR and out.command == ALL_OPEN and "mismatch" in out.reason


def test_safety_silence_while_closed_goes_to_error():
    rig = Rig(StateMachineConfig(safety_timeout_s=0.5)).drive()
    out = rig.sm.step(rig.now_s + 0.6)
    assert out.state is S.ERROR and "silent" in out.reason and out.command == ALL_OPEN


def test_mains_opening_without_command_goes_to_error():
    rig = Rig(StateMachineConfig(contactor_confirm_timeout_s=0.1)).drive()
    rig.follow_feedback = False
    rig.sm.set_contactor_feedback(ContactorFeedback())
    for _ in range(20):
        rig.tick()
    assert rig.sm.state is S.ERROR and "without command" in rig.sm.reason


def test_opening_under_high_current_waits_for_low_current():
    rig = Rig(StateMachineConfig(open_current_threshold_a=5.0, open_max_delay_s=2.0)).drive()
    rig.current_a = -100.0
    result = rig.request(S.STANDBY)
    assert result.accepted and result.state is S.STANDBY
    for _ in range(50):
        assert rig.tick().command == MAINS_CLOSED
    assert not rig.request(S.DRIVE).accepted  # still opening
    rig.current_a = -3.0
    assert rig.tick().command == ALL_OPEN


def test_opening_under_high_current_gives_up_after_max_delay():
    rig = Rig(StateMachineConfig(open_current_threshold_a=5.0, open_max_delay_s=1.0)).drive()
    rig.current_a = 80.0
    rig.request(S.STANDBY)
    start_s = rig.now_s
    while rig.tick().command != ALL_OPEN:
        assert rig.now_s - start_s < 1.05
    assert rig.now_s - start_s >= 1.0


def test_error_left_only_after_reset_and_standby_request():
    rig = Rig().drive()
    rig.safety = FAULT
    rig.tick()
    assert rig.sm.state is S.ERROR
    refused = rig.request(S.DRIVE)
    assert not refused.accepted and "reset faults" in refused.reason
    refused = rig.request(S.STANDBY)
    assert not refused.accepted and "latched" in refused.reason
    rig.safety = SafetyInput(SafetyLevel.OK, contactors_allowed=True, latched_faults=False)
    rig.tick()
    assert rig.sm.state is S.ERROR  # reset alone does not leave ERROR
    assert rig.request(S.STANDBY).accepted
    assert rig.tick().state is S.STANDBY
    rig.drive()


def test_error_kept_while_level_alarm():
    rig = Rig(StateMachineConfig(precharge_timeout_s=0.1))
    rig.request(S.DRIVE)
    for _ in range(20):
        rig.tick()
    assert rig.sm.state is S.ERROR
    rig.safety = ALARM
    rig.tick()
    refused = rig.request(S.STANDBY)
    assert not refused.accepted and "ALARM" in refused.reason


def test_drive_charge_switch_direct_at_low_current_only():
    rig = Rig(StateMachineConfig(mode_switch_current_a=2.0)).drive()
    rig.current_a = -40.0
    refused = rig.request(S.CHARGE)
    assert not refused.accepted and "via STANDBY" in refused.reason and refused.state is S.DRIVE
    rig.current_a = 0.5
    result = rig.request(S.CHARGE)
    assert result.accepted and result.state is S.CHARGE
    assert rig.tick().command == MAINS_CLOSED


def test_request_during_precharge_changes_target_and_standby_aborts():
    rig = Rig()
    rig.request(S.DRIVE)
    assert rig.request(S.CHARGE).accepted
    rig.drive(S.CHARGE)
    rig = Rig()
    rig.request(S.DRIVE)
    rig.tick()
    assert rig.request(S.STANDBY).accepted
    assert rig.sm.command == ALL_OPEN and rig.sm.state is S.STANDBY


@pytest.mark.parametrize("state", [S.STANDBY, S.DRIVE])
def test_repeated_request_is_accepted_without_change(state):
    rig = Rig()
    if state is S.DRIVE:
        rig.drive()
    result = rig.request(state)
    assert result.accepted and "already" in result.reason and result.state is state


def test_unrequestable_state_refused():
    rig = Rig()
    assert not rig.request(S.PRECHARGE).accepted
    assert not rig.sm.request(7, 0.0).accepted
