"""Make the packages importable from a plain checkout (before colcon or pip installed them)."""

import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parents[2]
for package in ("bms_slave", "bms_common"):
    path = str(_SRC / package)
    if path not in sys.path:
        sys.path.insert(0, path)
