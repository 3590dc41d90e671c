"""Simulated time waits for lagging nodes, but not for stopped ones (bms_slave.pacing)."""

from __future__ import annotations

import pytest
from rclpy.serialization import serialize_message

from bms_common.stamps import header_frame_id_of_raw, header_stamp_of_raw
from bms_interfaces.msg import CellMeasurements, PowerLimits
from bms_slave.pacing import Pacer


def test_nodes_not_yet_heard_hold_nothing() -> None:
    pacer = Pacer(max_lag_s=0.3, max_hold_s=2.0)
    assert pacer.may_advance(10.0, 0.0) == (True, [])


def test_a_node_more_than_max_lag_behind_holds_simulated_time_until_it_catches_up() -> None:
    pacer = Pacer(max_lag_s=0.3, max_hold_s=2.0)
    pacer.heard("power_limits", 9.8)
    assert pacer.may_advance(10.0, 0.0)[0]
    pacer.heard("safety_status", 9.6)
    go, events = pacer.may_advance(10.0, 0.1)
    assert not go and events == [] and pacer.lagging() == "safety_status"
    assert pacer.waiting_for(10.0) == "safety_status (0.40 s behind, allowed 0.3 s)"
    pacer.heard("safety_status", 9.9)
    assert pacer.may_advance(10.0, 0.6)[0]
    assert pacer.held_wall_s == pytest.approx(0.5)
    assert pacer.summary() == "safety_status 0.5 s"


def test_a_stopped_node_is_given_up_after_max_hold_and_followed_again_when_it_returns() -> None:
    pacer = Pacer(max_lag_s=0.3, max_hold_s=2.0)
    pacer.heard("pack_state", 5.0)
    assert not pacer.may_advance(6.0, 100.0)[0]
    assert not pacer.may_advance(6.0, 101.9)[0]
    go, events = pacer.may_advance(6.0, 102.1)
    assert go and [(e.name, e.kind) for e in events] == [("pack_state", "given_up")]
    assert pacer.may_advance(30.0, 110.0) == (True, [])  # its silence is the system's to detect
    pacer.heard("pack_state", 29.9)
    go, events = pacer.may_advance(30.0, 111.0)
    assert go and [(e.name, e.kind) for e in events] == [("pack_state", "caught_up")]
    pacer.heard("pack_state", 30.0)
    assert not pacer.may_advance(31.0, 112.0)[0]  # followed again


def test_a_slow_node_that_makes_progress_is_waited_for_as_long_as_it_takes() -> None:
    pacer = Pacer(max_lag_s=0.3, max_hold_s=2.0)
    for second in range(10):
        pacer.heard("power_limits", 5.0 + second * 0.01)
        assert not pacer.may_advance(6.0, 100.0 + second)[0]


def test_a_node_slower_than_max_lag_allows_is_followed_by_its_period() -> None:
    pacer = Pacer(max_lag_s=0.3, max_hold_s=2.0)
    pacer.heard("module_2", 10.0, period_s=0.5)
    assert pacer.may_advance(10.75, 0.0)[0]  # its next sample is due at 10.5 and may lag 0.3
    assert not pacer.may_advance(10.85, 0.1)[0]


def test_a_board_fed_by_the_plant_is_waited_for_sample_by_sample() -> None:
    # Module 2 on a board of its own: its sample of 2.2867 s must be out before simulated time
    # moves on, however small the lag, so every node sees it at the same simulated instant.
    pacer = Pacer(max_lag_s=0.3, max_hold_s=2.0)
    pacer.expect("module_2", 2.2867, period_s=0.1)
    go, events = pacer.may_advance(2.3, 0.0)
    assert not go and events == [] and pacer.waiting_for(2.3) == "module_2 (its sample of 2.287 s)"
    pacer.heard("module_2", 2.2867, period_s=0.1)
    assert pacer.may_advance(2.3, 0.01) == (True, [])
    pacer.expect("module_2", 2.3867, period_s=0.1)
    assert not pacer.may_advance(2.4, 0.02)[0]  # within max_lag, but expected


def test_a_board_that_misses_an_expected_sample_is_followed_by_its_lag_from_then_on() -> None:
    pacer = Pacer(max_lag_s=0.3, max_hold_s=2.0)
    pacer.heard("module_2", 4.9867, period_s=0.1)
    pacer.expect("module_2", 5.0867, period_s=0.1)
    assert not pacer.may_advance(5.1, 100.0)[0]
    go, events = pacer.may_advance(5.1, 102.1)
    assert go and [(e.name, e.kind) for e in events] == [("module_2", "given_up")]
    pacer.heard("module_2", 6.0867)
    go, events = pacer.may_advance(6.2, 103.0)
    assert go and [(e.name, e.kind) for e in events] == [("module_2", "caught_up")]
    pacer.expect("module_2", 6.1867, period_s=0.1)
    assert pacer.may_advance(6.25, 103.1)[0]  # no longer in lockstep: 0.16 s behind is within max_lag
    assert not pacer.may_advance(6.6, 103.2)[0]  # but its lag still holds simulated time


def test_zero_max_lag_turns_pacing_off_and_negative_values_are_refused() -> None:
    pacer = Pacer(max_lag_s=0.0, max_hold_s=2.0)
    pacer.heard("power_limits", 0.0)
    assert not pacer.enabled and pacer.may_advance(100.0, 0.0)[0]
    with pytest.raises(ValueError, match="max_lag_s and max_hold_s must be >= 0"):
        Pacer(max_lag_s=-1.0, max_hold_s=2.0)


def test_header_stamp_is_read_from_serialized_bytes() -> None:
    msg = PowerLimits()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1234, 500_000_000
    assert header_stamp_of_raw(serialize_message(msg)) == pytest.approx(1234.5)
    with pytest.raises(ValueError, match="no header stamp"):
        header_stamp_of_raw(b"\x00\x01\x00\x00")


def test_header_frame_id_is_read_from_serialized_bytes() -> None:
    # The plant follows the samples of modules hosted elsewhere by their frame_id.
    msg = CellMeasurements(module_id=3)
    msg.header.frame_id = "module_3"
    assert header_frame_id_of_raw(serialize_message(msg)) == "module_3"
    with pytest.raises(ValueError, match="frame_id"):
        header_frame_id_of_raw(serialize_message(msg)[:18])
