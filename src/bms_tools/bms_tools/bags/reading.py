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
