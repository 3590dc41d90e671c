"""replay-check's comparison: matching by stamp, tolerances, exact fields with a time window.
The end-to-end run (record, replay three times, changed parameter) is still to come."""

from __future__ import annotations

from types import SimpleNamespace

from bms_tools.replay.compare import TOLERANCES, compare
from bms_tools.replay.feed import header_stamp_ns

MS = 1_000_000


def states(soc: float) -> SimpleNamespace:
    return SimpleNamespace(soc=[soc, soc], pack_soc=soc, capacity_ah=[50.0, 50.0], soh=[1.0, 1.0],
                           internal_resistance_ohm=[0.001, 0.001])


def status(level: int) -> SimpleNamespace:
    return SimpleNamespace(level=level, contactors_allowed=level < 3)


def test_outputs_within_tolerance_pass_and_are_matched_by_stamp() -> None:
    recorded = {"/bms/cell_states": [(1000 * MS, states(0.500))],
                "/bms/safety_status": [(1000 * MS, status(0)), (1050 * MS, status(1))]}
    replayed = {"/bms/cell_states": [(900 * MS, states(0.2)), (1000 * MS, states(0.505))],
                "/bms/safety_status": [(1000 * MS, status(1)), (1050 * MS, status(0))]}
    reports = {r.topic: r for r in compare(recorded, replayed, TOLERANCES)}
    assert reports["/bms/cell_states"].passed
    assert reports["/bms/cell_states"].largest["soc"] < 0.01
    # A level change one supervisor period early or late is not a divergence.
    assert reports["/bms/safety_status"].passed


def test_beyond_tolerance_reports_the_first_divergence() -> None:
    recorded = {"/bms/cell_states": [(1000 * MS, states(0.5)), (2000 * MS, states(0.5))]}
    replayed = {"/bms/cell_states": [(1000 * MS, states(0.5)), (2000 * MS, states(0.52))]}
    report = compare(recorded, replayed, TOLERANCES)[0]
    assert not report.passed
    assert report.first is not None and report.first.stamp_s == 2.0
    assert "soc" in report.first.what


def test_a_recorded_output_without_a_replayed_one_is_missing() -> None:
    report = compare({"/bms/safety_status": [(1000 * MS, status(0))]}, {}, TOLERANCES)[2]
    assert report.missing == 1 and not report.passed


def test_header_stamp_is_read_from_the_cdr_bytes() -> None:
    data = bytes([0, 1, 0, 0]) + (7).to_bytes(4, "little") + (150 * MS).to_bytes(4, "little")
    assert header_stamp_ns(data) == 7150 * MS
