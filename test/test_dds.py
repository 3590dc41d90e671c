"""Messages cross process boundaries over real DDS, and discovery stays on loopback."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from bms_common import topics
from bms_common.testing import NodeProcess, wait_for
from bms_interfaces.msg import CellMeasurements, ComponentInfo

TALKER = Path(__file__).parent / "helpers" / "talker.py"
DDS_MULTICAST_GROUP = "0100FFEF"  # 239.255.0.1 as /proc/net/igmp prints it


@pytest.fixture
def talker(tmp_path):
    started: list[NodeProcess] = []

    def start(module_id: int, interface_version: str | None = None) -> NodeProcess:
        argv = [sys.executable, str(TALKER), str(module_id)] + ([interface_version] if interface_version else [])
        proc = NodeProcess(argv, tmp_path / f"talker_{module_id}.log")
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def test_message_from_another_process_arrives(ros, talker):
    received = ros.collect(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.RELIABLE)
    talker(7)
    wait_for(lambda: len(ros.snapshot(topics.CELL_MEASUREMENTS.name)) >= 5, 20, "5 CellMeasurements")
    first = received[0]
    assert first.module_id == 7 and first.header.frame_id == "module_7"
    assert first.cell_voltages_v[11] == pytest.approx(3.611, abs=1e-6)
    sequences = [m.sequence for m in ros.snapshot(topics.CELL_MEASUREMENTS.name)]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)


def test_component_info_is_latched_for_late_subscribers(ros, talker):
    measurements = ros.collect(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.RELIABLE)
    talker(3)
    # The talker announces itself before its first sample: once samples flow, the one
    # ComponentInfo it will ever publish is already out. Only now subscribe to it.
    wait_for(lambda: list(measurements), 20, "the talker's first sample")
    infos = ros.collect(ComponentInfo, topics.COMPONENTS.name, topics.LATCHED_MANY)
    info = wait_for(lambda: [i for i in list(infos) if i.node_name == "/bms/talker_3"], 20,
                    "latched ComponentInfo of /bms/talker_3")[0]
    assert info.kind == "slave" and info.interface_version == ComponentInfo.INTERFACE_VERSION


def test_incompatible_interface_major_is_logged(talker):
    good = talker(1)
    other = f"{int(ComponentInfo.INTERFACE_VERSION.split('.')[0]) + 1}.0.0"
    bad = talker(2, interface_version=other)
    wait_for(lambda: f"speaks bms_interfaces '{other}'" in good.output(), 20,
             "the compatible node to report its incompatible peer")
    assert "talker_2" in good.output()
    assert bad.alive()


def test_discovery_stays_on_loopback(ros, talker):
    proc = talker(5)
    received = ros.collect(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.RELIABLE)
    wait_for(lambda: list(received), 20, "traffic between the test and the talker")
    environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
    assert b"ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST" in environ
    assert f"ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}".encode() in environ
    # Fast DDS joins its discovery multicast group on every interface it may use: none but lo here.
    joined: list[str] = []
    device = ""
    for line in Path("/proc/net/igmp").read_text().splitlines()[1:]:
        if not line.startswith("\t"):
            device = line.split()[1]
        elif line.split()[0] == DDS_MULTICAST_GROUP:
            joined.append(device)
    assert [d for d in joined if d != "lo"] == [], f"DDS multicast joined on {joined}"
