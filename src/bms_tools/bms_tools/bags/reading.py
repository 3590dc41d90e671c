"""Opening bags for reading, with messages that say what is wrong with a path."""

from __future__ import annotations

from pathlib import Path

from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore


class BagError(Exception):
    pass


def _check(path: Path) -> None:
    if not (path / "metadata.yaml").is_file():
        raise BagError(f"{path}: not a rosbag2 directory (no metadata.yaml); "
                       "pass the directory that `bms bag record -o` created")


def open_raw(path: Path) -> Reader:
    """A reader that yields serialized messages (for play and info)."""
    _check(path)
    reader = Reader(path)
    reader.open()
    return reader


def open_decoding(path: Path) -> AnyReader:
    """A reader (use as a context manager) that decodes with the definitions stored in the bag,
    not the installed ones."""
    _check(path)
    return AnyReader([path], default_typestore=get_typestore(Stores.EMPTY))


class RunClock:
    """Time on the run's own clock: the messages' header stamps (simulated seconds in a sped-up
    run), from the first stamp seen. The recorder's receive time is wall time: a 240 s run at
    speed 4 spans 60 s of it. A message without a stamp falls back to the receive time, offset
    so that it continues the header clock."""

    def __init__(self) -> None:
        self._origin_ns: int | None = None
        self._receive_offset_ns: int | None = None

    def seconds(self, message: object, receive_ns: int) -> float:
        header = getattr(message, "header", None)
        stamp_ns = (header.stamp.sec * 1_000_000_000 + header.stamp.nanosec) if header else 0
        if stamp_ns <= 0:
            if self._receive_offset_ns is None:
                self._receive_offset_ns = (self._origin_ns or receive_ns) - receive_ns
            stamp_ns = receive_ns + self._receive_offset_ns
        elif self._receive_offset_ns is None:
            self._receive_offset_ns = stamp_ns - receive_ns
        if self._origin_ns is None:
            self._origin_ns = stamp_ns
        return (stamp_ns - self._origin_ns) / 1e9

    def seconds_of_origin(self) -> float:
        """The first stamp seen, in seconds (0 before any)."""
        return (self._origin_ns or 0) / 1e9
