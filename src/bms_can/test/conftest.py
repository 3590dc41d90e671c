"""Make the packages importable from a plain checkout (pytest runs with --import-mode=importlib,
which adds no paths), and give each test a short private Unix-socket CAN channel."""

import shutil
import sys
import tempfile
from pathlib import Path

import pytest

_SRC = Path(__file__).resolve().parents[2]
for package in ("bms_can", "bms_slave", "bms_common", "bms_master"):
    if str(_SRC / package) not in sys.path:
        sys.path.insert(0, str(_SRC / package))

SOURCES = {"current": "ivt_i", "pack_voltage": "ivt_u1", "dc_link_voltage": "ivt_u2",
           "insulation_resistance": "iso165c", "hvil": "contactor_feedback"}


@pytest.fixture
def can_dir():
    # Socket paths are limited to 107 bytes: a short directory in /tmp, not pytest's tmp_path.
    path = tempfile.mkdtemp(prefix="bmscan-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def can_config(can_dir):
    from bms_can.config import TIMEOUT_KEYS, parse_can_config

    # Generous timeouts: a loaded machine may pause a test for a while; tests that need a
    # timeout to pass read at a later instant (read(now_s)) instead of waiting.
    return parse_can_config({"bus": {"interface": "unix", "channel": can_dir}, "sources": dict(SOURCES),
                             "max_consecutive_errors": 2, "timeouts_s": dict.fromkeys(TIMEOUT_KEYS, 5.0)},
                            Path("test.yaml"))
