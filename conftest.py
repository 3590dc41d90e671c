"""Session-wide test set-up: every test session gets loopback-only DDS and its own domain."""

from __future__ import annotations

import signal
import warnings
from pathlib import Path

import pytest

from bms_common.testing import NodeProcess, RosHarness, isolate_dds, stop_all

DOMAIN_ID = isolate_dds()
# A suite started from a background job of a non-interactive shell inherits SIGINT ignored, and
# so would every node it starts: the SIGINT that ends a node in order would do nothing and the
# tests of orderly shutdown would fail for the shell's sake. Nodes start with SIGINT as usual.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
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


@pytest.fixture(scope="module", autouse=True)
def _no_process_left_behind_by_a_module():
    """Nor may a test module leave its nodes to the next module: what it started and did not end
    is ended here (with its descendants, NodeProcess.stop), and named in pytest's warnings summary."""
    before = set(map(id, NodeProcess.started))
    yield
    for process in [p for p in NodeProcess.started if id(p) not in before and p.alive()]:
        warnings.warn(f"still running after its test module, stopped: {' '.join(process.argv)[:200]}",
                      stacklevel=1)
        process.stop(timeout_s=5.0)
