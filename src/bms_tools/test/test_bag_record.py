"""Recording from live nodes: every message reads back equal, with its definition and QoS."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from expected import expected, plain
from rclpy.serialization import deserialize_message
from ruamel.yaml import YAML

from bms_common.testing import NodeProcess, RosHarness, wait_for
from bms_tools.bags.reading import open_decoding
from bms_tools.bags.record import Recorder, RecordOptions
from bms_tools.bags.writer import SplitLimits
from bms_tools.rosgraph import message_class

EXPECTED_TOPICS = {
    "/bms/cell_measurements": "bms_interfaces/msg/CellMeasurements",
    "/bms/pack_measurement": "bms_interfaces/msg/PackMeasurement",
    "/bms/safety_status": "bms_interfaces/msg/SafetyStatus",
    "/bms/components": "bms_interfaces/msg/ComponentInfo",
    "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
}


def installed_hash(type_name: str) -> str:
    package, _, name = type_name.split("/")
    description = json.loads((Path(get_package_share_directory(package)) / "msg" / f"{name}.json").read_text())
    return next(h["hash_string"] for h in description["type_hashes"] if h["type_name"] == type_name)


def check_bag(bag: Path, topics: dict[str, str]) -> int:
    """Both decoders agree with what was published; returns the number of messages checked."""
    checked = 0
    with open_decoding(bag) as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == topics
        for connection in reader.connections:
            assert connection.msgcount > 0, connection.topic
            assert connection.digest == installed_hash(connection.msgtype)
            assert connection.msgdef.data, connection.topic
        for connection, _, raw in reader.messages():
            from_rosbags = reader.deserialize(raw, connection.msgtype)
            from_rclpy = deserialize_message(bytes(raw), message_class(connection.msgtype))
            assert plain(from_rosbags) == plain(from_rclpy)
            want = expected(connection.topic, from_rclpy)
            if want is not None:
                assert plain(from_rclpy) == plain(want), connection.topic
                checked += 1
    return checked


def test_recorded_bag_reads_back_equal(recorded_bag: Path) -> None:
    metadata = YAML(typ="safe").load((recorded_bag / "metadata.yaml").read_text())
    info = metadata["rosbag2_bagfile_information"]
    assert info["version"] == 9 and info["storage_identifier"] == "mcap"
    assert [p.suffix for p in map(Path, info["relative_file_paths"])] == [".mcap"]
    assert check_bag(recorded_bag, EXPECTED_TOPICS) > 100
    qos = {t["topic_metadata"]["name"]: t["topic_metadata"]["offered_qos_profiles"]
           for t in info["topics_with_message_count"]}
    assert qos["/bms/safety_status"][0]["durability"] == "transient_local"
    assert qos["/bms/cell_measurements"][0]["reliability"] == "reliable"
    assert qos["/bms/cell_measurements"][0]["durability"] == "volatile"
    # The definition stored for readers without our packages includes the nested types.
    with open_decoding(recorded_bag) as reader:
        definition = next(c.msgdef.data for c in reader.connections if c.topic == "/bms/safety_status")
    assert "MSG: bms_interfaces/Fault" in definition and "MSG: std_msgs/Header" in definition


def test_no_message_lost_while_recording(recorded_bag: Path) -> None:
    sequences: dict[tuple[str, int], list[int]] = {}
    with open_decoding(recorded_bag) as reader:
        for connection, _, raw in reader.messages():
            if connection.topic in ("/bms/cell_measurements", "/bms/pack_measurement"):
                msg = reader.deserialize(raw, connection.msgtype)
                sequences.setdefault((connection.topic, getattr(msg, "module_id", 0)), []).append(msg.sequence)
    assert len(sequences) == 3
    for key, seen in sequences.items():
        assert seen == list(range(seen[0], seen[0] + len(seen))), key


def test_sqlite3_split_by_size(publisher: NodeProcess, tmp_path: Path) -> None:
    bag = tmp_path / "split"
    recorder = Recorder(RecordOptions(output=bag, storage="sqlite3", topics=["cell_measurements", "safety_status"],
                                      limits=SplitLimits(max_bag_size=20_000)))
    recorder.start()
    wait_for(lambda: recorder.writer.bytes > 70_000, 15, "70 kB recorded")
    recorder.stop()
    files = sorted(p.name for p in bag.glob("*.db3"))
    assert len(files) >= 3 and files[0] == "split_0.db3"
    check_bag(bag, {k: v for k, v in EXPECTED_TOPICS.items() if k in ("/bms/cell_measurements", "/bms/safety_status")})


def test_recorder_node_stops_cleanly_on_sigterm(publisher: NodeProcess, ros: RosHarness, tmp_path: Path) -> None:
    bag = tmp_path / "node"
    recorder = NodeProcess([sys.executable, "-m", "bms_tools.bags.recorder_node", "--ros-args",
                            "-p", f"output:={bag}", "-p", "topics:=[pack_measurement]"], tmp_path / "rec.log")

    def recorder_subscribed() -> bool:
        return any(info.node_name == "recorder"
                   for info in ros.node.get_subscriptions_info_by_topic("/bms/pack_measurement"))

    wait_for(recorder_subscribed, 15, "the recorder node to subscribe")
    from bms_common import topics
    from bms_interfaces.msg import PackMeasurement

    seen = ros.collect(PackMeasurement, "pack_measurement", topics.RELIABLE)
    wait_for(lambda: len(seen) >= 10, 10, "10 messages on the wire while recording")
    assert recorder.stop(signal_number()) == 0, recorder.output()
    assert (bag / "metadata.yaml").exists()
    check_bag(bag, {"/bms/pack_measurement": EXPECTED_TOPICS["/bms/pack_measurement"]})


def signal_number() -> int:
    import signal

    return signal.SIGTERM
