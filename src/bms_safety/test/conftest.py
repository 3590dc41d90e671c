"""Lets the unit tests import bms_safety (and the shared harness next to them) from the source tree
without a colcon build, and provides the ``harness`` fixture."""

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2]
for path in (str(SRC / "bms_safety"), str(SRC / "bms_common"), str(Path(__file__).resolve().parent)):
    if path not in sys.path:
        sys.path.insert(0, path)

import pytest  # noqa: E402
from safety_harness import Harness  # noqa: E402


@pytest.fixture
def harness() -> Harness:
    """Two modules of four cells, one second of healthy samples already fed."""
    h = Harness()
    h.run(1.0)
    return h
