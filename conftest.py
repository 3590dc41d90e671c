"""Session-wide test set-up: every test session gets loopback-only DDS and its own domain."""

from __future__ import annotations

from pathlib import Path

import pytest

from bms_common.testing import RosHarness, isolate_dds, stop_all

DOMAIN_ID = isolate_dds()
ROOT = Path(__file__).resolve().parent


def pytest_report_header(config: pytest.Config) -> str:
    return f"ROS_DOMAIN_ID={DOMAIN_ID} (claimed for this session), discovery LOCALHOST, UDPv4"


@pytest.fixture
def ros() -> RosHarness:
    harness = RosHarness()
    yield harness
    harness.close()


@pytest.fixture(scope="session", autouse=True)
def _no_process_left_behind():
    """A fixture that fails half-way must not leave nodes running into later tests."""
    yield
    stop_all()
