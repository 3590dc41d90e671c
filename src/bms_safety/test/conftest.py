"""Lets the unit tests import bms_safety and bms_common from the source tree without a colcon build."""

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2]
for package in ("bms_safety", "bms_common"):
    path = str(SRC / package)
    if path not in sys.path:
        sys.path.insert(0, path)
