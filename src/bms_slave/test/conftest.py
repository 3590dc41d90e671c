"""Make the packages and the shared test helpers importable from a plain checkout (before colcon
or pip installed them; pytest runs with --import-mode=importlib, which adds no paths)."""

import sys
from pathlib import Path

_TEST_DIR = Path(__file__).resolve().parent
_SRC = _TEST_DIR.parents[1]
for path in (str(_TEST_DIR), str(_SRC / "bms_slave"), str(_SRC / "bms_common")):
    if path not in sys.path:
        sys.path.insert(0, path)
