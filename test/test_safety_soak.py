"""No false positives: ten minutes of driving, rest and charging at 20x raises nothing
above WARNING (test/helpers/soak.py; bench/soak.py runs an hour or more)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from soak import SPEED, assert_nothing_above_warning, soak  # noqa: E402

DURATION_S = 600.0  # simulated; the suite's time budget (bench/soak.py runs the hour)


@pytest.mark.timeout(600)
def test_ten_simulated_minutes_raise_nothing_above_warning(tmp_path):
    result = soak(tmp_path, DURATION_S, SPEED)
    print(f"\nsoak: {result.simulated_s:.0f} s simulated at {result.speed:.1f}x real time (asked {SPEED:g}x), "
          f"{result.statuses} SafetyStatus")
    assert_nothing_above_warning(result, DURATION_S)
