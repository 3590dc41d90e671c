"""Conversions between ROS time messages and float seconds, in one place."""

from __future__ import annotations

import struct

from builtin_interfaces.msg import Time


def to_seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def to_stamp(seconds: float) -> Time:
    """A Time message for ``seconds`` (negative values clamp to 0: ROS time starts there)."""
    nanoseconds = max(int(round(seconds * 1e9)), 0)
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def header_stamp_of_raw(data: bytes) -> float:
    """The ``header.stamp`` of a serialized message whose first field is a std_msgs/Header, in
    seconds, read without deserializing: a 4-byte CDR encapsulation (byte 1 odd = little-endian),
    then ``sec`` (int32) and ``nanosec`` (uint32)."""
    if len(data) < 12:
        raise ValueError(f"serialized message of {len(data)} bytes has no header stamp")
    order = "<" if data[1] & 1 else ">"
    sec, nanosec = struct.unpack_from(f"{order}iI", data, 4)
    return sec + nanosec * 1e-9


def header_frame_id_of_raw(data: bytes) -> str:
    """The ``header.frame_id`` of a serialized message whose first field is a std_msgs/Header,
    read without deserializing: after the stamp, a uint32 length (with the NUL) and the bytes."""
    if len(data) < 16:
        raise ValueError(f"serialized message of {len(data)} bytes has no header frame_id")
    order = "<" if data[1] & 1 else ">"
    (length,) = struct.unpack_from(f"{order}I", data, 12)
    if length == 0 or 16 + length > len(data):
        raise ValueError(f"serialized message of {len(data)} bytes: frame_id of {length} bytes does not fit")
    return data[16:16 + length - 1].decode("utf-8", errors="replace")
