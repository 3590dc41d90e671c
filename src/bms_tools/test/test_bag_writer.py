"""Splitting and the total size cap of the bag writer (no ROS graph needed)."""

from __future__ import annotations

from pathlib import Path

from rclpy.serialization import serialize_message

from bms_common import topics
from bms_interfaces.msg import PackMeasurement
from bms_tools.bags.qos import to_bag_qos
from bms_tools.bags.reading import open_decoding
from bms_tools.bags.typestore import TypeLibrary
from bms_tools.bags.writer import SplitLimits, SplitWriter, TopicSpec

TOPIC = "/bms/pack_measurement"


def write(path: Path, limits: SplitLimits, count: int) -> SplitWriter:
    writer = SplitWriter(path, "mcap", limits)
    msgdef, rihs01 = TypeLibrary().definition(topics.PACK_MEASUREMENT.type_name)
    writer.add_topic(TopicSpec(TOPIC, topics.PACK_MEASUREMENT.type_name, msgdef, rihs01,
                               [to_bag_qos(topics.PACK_MEASUREMENT.qos)]))
    for k in range(count):
        writer.write(TOPIC, 1_000_000_000 + k * 10_000_000, serialize_message(PackMeasurement(sequence=k)))
    writer.close()
    return writer


def test_total_size_cap_keeps_the_newest_splits(tmp_path: Path) -> None:
    writer = write(tmp_path / "capped", SplitLimits(max_total_size=100_000), 2000)
    files = sorted((tmp_path / "capped").glob("*.mcap"))
    assert writer.dropped_files > 0
    assert sum(f.stat().st_size for f in files) <= 100_000
    with open_decoding(tmp_path / "capped") as reader:
        sequences = [reader.deserialize(raw, c.msgtype).sequence for c, _, raw in reader.messages()]
    assert sequences[-1] == 1999
    assert sequences == list(range(sequences[0], 2000))


def test_split_by_size_names_files_like_rosbag2(tmp_path: Path) -> None:
    write(tmp_path / "run", SplitLimits(max_bag_size=10_000), 1000)
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert "metadata.yaml" in names and "run_0.mcap" in names and "run_3.mcap" in names
    assert not [p for p in (tmp_path / "run").iterdir() if p.is_dir()]
