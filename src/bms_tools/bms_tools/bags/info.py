"""``bms bag info``: what a bag holds, without decoding a message."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from ruamel.yaml import YAML

from bms_tools.bags.progress import human_bytes
from bms_tools.bags.reading import BagError, open_raw


def _stamp(ns: int) -> str:
    moment = datetime.fromtimestamp(ns / 1e9, tz=timezone.utc)
    return f"{moment.isoformat(timespec='milliseconds')} ({ns / 1e9:.3f})"


def describe(path: Path) -> str:
    reader = open_raw(path)
    try:
        metadata = YAML(typ="safe").load((path / "metadata.yaml").read_text())
        info = metadata["rosbag2_bagfile_information"]
        files = [path / name for name in info["relative_file_paths"]]
        size = sum(f.stat().st_size for f in files)
        lines = [
            f"bag:        {path}",
            f"storage:    {info['storage_identifier']} (rosbag2 metadata version {info['version']})",
            f"files:      {len(files)} ({', '.join(f.name for f in files)})",
            f"size:       {human_bytes(size)}",
            f"duration:   {reader.duration / 1e9:.3f} s",
            f"start:      {_stamp(reader.start_time)}",
            f"end:        {_stamp(reader.end_time)}",
            f"messages:   {reader.message_count}",
            "topics:",
        ]
        width = max((len(c.topic) for c in reader.connections), default=0)
        for connection in sorted(reader.connections, key=lambda c: c.topic):
            lines.append(f"  {connection.topic:<{width}}  {connection.msgcount:>8}  {connection.msgtype}")
        return "\n".join(lines)
    finally:
        reader.close()


def print_info(path: Path) -> int:
    try:
        print(describe(path))
    except BagError as error:
        print(f"bms bag info: {error}")
        return 2
    return 0
