"""Fixtures for the bag and introspection tests: one live sample publisher and one recorded bag
shared by the whole session, so the slow parts (process start, recording) happen once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bms_common.testing import NodeProcess

HELPERS = Path(__file__).parent / "helpers"
sys.path.insert(0, str(HELPERS))

RECORD_S = 3.0


@pytest.fixture(scope="session")
def publisher(tmp_path_factory: pytest.TempPathFactory) -> NodeProcess:
    log = tmp_path_factory.mktemp("publisher") / "publisher.log"
    process = NodeProcess([sys.executable, str(HELPERS / "sample_publisher.py")], log)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def recorded_bag(publisher: NodeProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MCAP bag of every /bms topic, recorded through the command line for RECORD_S seconds."""
    bag = tmp_path_factory.mktemp("bags") / "live"
    result = subprocess.run(["bms", "bag", "record", "-o", str(bag), "--duration", str(RECORD_S)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    return bag
