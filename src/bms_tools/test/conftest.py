"""Fixtures for the bag and introspection tests: one live sample publisher and one recorded bag
shared by the whole session, so the slow parts (process start, recording) happen once."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from bms_common import topics
from bms_common.testing import NodeProcess, RosHarness, wait_for
from bms_interfaces.msg import CellMeasurements

HELPERS = Path(__file__).parent / "helpers"
sys.path.insert(0, str(HELPERS))

RECORDED_CELL_MESSAGES = 300  # 1.5 s of the sample publisher's two modules at 50 Hz


@pytest.fixture(scope="session")
def publisher(tmp_path_factory: pytest.TempPathFactory) -> NodeProcess:
    log = tmp_path_factory.mktemp("publisher") / "publisher.log"
    process = NodeProcess([sys.executable, str(HELPERS / "sample_publisher.py")], log)
    yield process
    process.stop()


@pytest.fixture(scope="session")
def recorded_bag(publisher: NodeProcess, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MCAP bag of every /bms topic, recorded through the command line and ended by SIGINT once
    the recorder has subscribed and RECORDED_CELL_MESSAGES more went over the wire."""
    bag = tmp_path_factory.mktemp("bags") / "live"
    harness = RosHarness("bag_fixture")
    try:
        recorder = NodeProcess(["bms", "bag", "record", "-o", str(bag)], bag.with_suffix(".log"))
        wait_for(lambda: any(i.node_name == "bms_bag_record" for i in harness.node.get_subscriptions_info_by_topic(
            "/bms/cell_measurements")), 20, "bms bag record to subscribe")
        seen = harness.collect(CellMeasurements, "cell_measurements", topics.RELIABLE)
        wait_for(lambda: len(seen) >= RECORDED_CELL_MESSAGES, 20, "messages while recording")
        assert recorder.stop(signal.SIGINT) == 0, recorder.output()
    finally:
        harness.close()
    return bag
