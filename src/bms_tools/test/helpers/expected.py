"""Rebuilds the message the sample publisher sent, from the received one's sequence number."""

from __future__ import annotations

import array
from typing import Any

import numpy as np
import sample_publisher as sample

from bms_tools.bags.flatten import message_fields


def expected(topic: str, msg: Any) -> Any:
    if topic == "/bms/cell_measurements":
        return sample.cell_measurements(msg.sequence, msg.module_id)
    if topic == "/bms/pack_measurement":
        return sample.pack_measurement(msg.sequence)
    if topic == "/bms/safety_status":
        return sample.safety_status(msg.sequence)
    if topic == "/diagnostics":
        return sample.diagnostics(int(msg.status[0].values[0].value))
    return None


def plain(value: Any) -> Any:
    """rclpy and rosbags messages as comparable nested dicts and lists (float32 rounded alike)."""
    if hasattr(value, "get_fields_and_field_types"):
        return {f: plain(getattr(value, f)) for f in value.get_fields_and_field_types()}
    if hasattr(value, "__msgtype__"):
        return {name: plain(getattr(value, name)) for name in message_fields(value)}
    if isinstance(value, np.ndarray | list | tuple | array.array):
        return [plain(v) for v in value]
    if isinstance(value, bytes) and len(value) == 1:
        return value[0]  # a `byte` field: rclpy gives b"\x00", rosbags gives 0
    if isinstance(value, np.generic):
        return value.item()
    return value
