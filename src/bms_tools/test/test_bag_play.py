"""Playing a recorded bag to a live subscriber: same messages, original timing scaled by rate."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from expected import plain
from rclpy.serialization import deserialize_message

from bms_common import topics
from bms_common.testing import RosHarness, wait_for
from bms_interfaces.msg import CellMeasurements, SafetyStatus
from bms_tools.bags.reading import open_decoding

RATE = 2.0
PLAYED = {"/bms/cell_measurements": ("/replay/cell_measurements", CellMeasurements),
          "/bms/safety_status": ("/replay/safety_status", SafetyStatus)}


def test_play_publishes_the_recorded_messages_at_rate(recorded_bag: Path, ros: RosHarness,
                                                       record_property: pytest.RecordProperty) -> None:
    with open_decoding(recorded_bag) as reader:
        recorded = {topic: [] for topic in PLAYED}
        times = []
        for connection, timestamp, raw in reader.messages():
            if connection.topic in PLAYED:
                recorded[connection.topic].append(plain(reader.deserialize(raw, connection.msgtype)))
                times.append(timestamp)
    # One subscription per topic: the player waits for one matched subscriber per topic.
    arrivals: list[float] = []
    ros.collect(SafetyStatus, "/replay/safety_status", topics.LATCHED_MANY, raw=True)
    cells = ros.received.setdefault("/replay/cell_measurements", [])

    def on_cells(raw: bytes) -> None:
        arrivals.append(time.monotonic())
        with ros.lock:
            cells.append(raw)

    # The contract's QoS: a reader keeping only 10 samples loses part of a burst when it is late.
    ros.node.create_subscription(CellMeasurements, "/replay/cell_measurements", on_cells,
                                 topics.CELL_MEASUREMENTS.qos, raw=True)
    remaps = [f"{source}:={target}" for source, (target, _) in PLAYED.items()]
    result = subprocess.run(
        ["bms", "bag", "play", str(recorded_bag), "--rate", str(RATE), "--topics", *PLAYED,
         "--remap", *remaps, "--wait-subscribers", "1"],
        capture_output=True, text=True, timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for topic, (target, msg_type) in PLAYED.items():
        count = len(recorded[topic])
        wait_for(lambda t=target, n=count: len(ros.snapshot(t)) >= n, 30, f"{count} messages on {target}")
        got = [plain(deserialize_message(raw, msg_type)) for raw in ros.snapshot(target)]
        assert got == recorded[topic], topic
    bag_span_s = (max(times) - min(times)) / 1e9
    played_span_s = arrivals[-1] - arrivals[0]
    # Arrival is when this process's executor ran the callback: a loaded machine delays the last
    # one a little, never by a tenth of the span.
    assert played_span_s == pytest.approx(bag_span_s / RATE, rel=0.1, abs=0.3)
    summary = re.search(r"timing error .*", result.stdout).group(0)
    print(f"\nplay at rate {RATE:g}: bag span {bag_span_s:.3f} s, played span {played_span_s:.3f} s; {summary}")
    record_property("play_timing_error", summary)
