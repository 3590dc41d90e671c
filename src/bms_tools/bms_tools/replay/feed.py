"""What a replay feeds and what it expects, read from a bag: the measurements as raw bytes in the
bag's order with their header stamps, the clock steps, and the recorded outputs (decoded)."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rclpy.serialization import deserialize_message

from bms_tools.bags.reading import open_raw
from bms_tools.rosgraph import message_class

INPUT_TOPICS = ("/bms/cell_measurements", "/bms/pack_measurement", "/bms/contactor_state")
OUTPUT_TOPICS = ("/bms/cell_states", "/bms/power_limits", "/bms/safety_status")
CLOCK_TOPIC = "/clock"


def header_stamp_ns(data: bytes) -> int:
    """The stamp of a message whose first field is a std_msgs/Header (or of a Clock), read from
    the CDR bytes without decoding the rest: 4 bytes encapsulation, then int32 sec, uint32 nsec."""
    order = "<" if data[1] & 1 else ">"
    sec, nanosec = struct.unpack_from(f"{order}iI", data, 4)
    return sec * 1_000_000_000 + nanosec


@dataclass
class Input:
    stamp_ns: int
    topic: str
    type_name: str
    data: bytes


@dataclass
class Feed:
    inputs: list[Input] = field(default_factory=list)  # the bag's order
    clock_ns: list[int] = field(default_factory=list)  # increasing
    recorded: dict[str, list[tuple[int, Any]]] = field(default_factory=dict)  # sorted by stamp
    types: dict[str, str] = field(default_factory=dict)  # input topic -> type name


def read_feed(path: Path, clock_step_s: float) -> Feed:
    """Clock steps are the recorded /clock if the bag has it, otherwise a grid of
    ``clock_step_s`` (aligned to multiples of it, as the simulation's clock is) over the inputs."""
    feed = Feed(recorded={topic: [] for topic in OUTPUT_TOPICS})
    recorded_clock: list[int] = []
    reader = open_raw(path)
    try:
        for connection, _, data in reader.messages():
            topic, type_name = connection.topic, connection.msgtype
            if topic in INPUT_TOPICS:
                feed.inputs.append(Input(header_stamp_ns(data), topic, type_name, bytes(data)))
                feed.types[topic] = type_name
            elif topic in OUTPUT_TOPICS:
                msg = deserialize_message(bytes(data), message_class(type_name))
                feed.recorded[topic].append((header_stamp_ns(data), msg))
            elif topic == CLOCK_TOPIC:
                recorded_clock.append(header_stamp_ns(data))
    finally:
        reader.close()
    for messages in feed.recorded.values():
        messages.sort(key=lambda item: item[0])
    if recorded_clock:
        feed.clock_ns = sorted(set(recorded_clock))
    elif feed.inputs:
        step_ns = round(clock_step_s * 1e9)
        stamps = [i.stamp_ns for i in feed.inputs if i.stamp_ns > 0]
        first, last = min(stamps), max(stamps)
        start = -(-first // step_ns) * step_ns
        feed.clock_ns = list(range(start, last + step_ns, step_ns))
    return feed
