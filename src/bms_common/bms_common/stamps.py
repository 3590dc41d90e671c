"""Conversions between ROS time messages and float seconds, in one place."""

from __future__ import annotations

from builtin_interfaces.msg import Time


def to_seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def to_stamp(seconds: float) -> Time:
    """A Time message for ``seconds`` (negative values clamp to 0: ROS time starts there)."""
    nanoseconds = max(int(round(seconds * 1e9)), 0)
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)
