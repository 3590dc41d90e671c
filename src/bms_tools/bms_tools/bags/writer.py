"""A rosbag2 writer that splits files by size or duration and caps the total size.

``rosbags.rosbag2.Writer`` writes one storage file per bag. Each split here is written by one
such Writer into a scratch directory named like the split (so the file gets rosbag2's split name
``<bag>_<n>.mcap``), moved into the bag directory when the split closes, and one metadata.yaml
(version 9) listing every split is written at the end, as rosbag2 does.

Total size cap: when the closed splits plus the open one exceed ``max_total_size``, the oldest
splits are deleted (a ring buffer of the most recent data), so an unattended recording keeps
its latest minutes rather than its first ones.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

from rosbags.interfaces import Connection, Qos
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.metadata import dump_qos_v9
from ruamel.yaml import YAML

STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
EXTENSIONS = {"mcap": ".mcap", "sqlite3": ".db3"}
# Storage overhead per message on top of the payload (record headers, index entries), used to
# estimate an open split's size: MCAP buffers chunks in memory, so the file size lags.
MESSAGE_OVERHEAD_BYTES = 40
# When only a total cap is given, split so that dropping the oldest split loses a small share.
SPLITS_PER_TOTAL = 8


@dataclass
class SplitLimits:
    max_bag_size: int = 0  # bytes per storage file; 0 = no size split
    max_bag_duration_s: float = 0.0  # seconds per storage file; 0 = no time split
    max_total_size: int = 0  # bytes over all files; 0 = unlimited (oldest splits are dropped)

    def effective_bag_size(self) -> int:
        if self.max_total_size and not self.max_bag_size and not self.max_bag_duration_s:
            return max(1, self.max_total_size // SPLITS_PER_TOTAL)
        return self.max_bag_size


@dataclass
class TopicSpec:
    name: str
    type_name: str
    msgdef: str
    rihs01: str
    offered_qos: list[Qos] = field(default_factory=list)


@dataclass
class SplitFile:
    path: str
    start_ns: int = 2**63 - 1
    end_ns: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    size: int = 0

    @property
    def message_count(self) -> int:
        return sum(self.counts.values())


class SplitWriter:
    def __init__(self, path: Path, storage: str = "mcap", limits: SplitLimits | None = None) -> None:
        if storage not in STORAGES:
            raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
        if path.exists():
            raise FileExistsError(f"{path} exists already; choose another output directory (-o)")
        self.path = path
        self.storage = storage
        self.limits = limits or SplitLimits()
        self.topics: dict[str, TopicSpec] = {}
        self.closed: list[SplitFile] = []
        self.dropped_files = 0
        self.messages = 0
        self.bytes = 0
        self._index = 0
        self._writer: Writer | None = None
        self._connections: dict[str, Connection] = {}
        self._current = SplitFile("")
        self._current_bytes = 0
        self._opened_at = 0.0
        self._file_overhead = 0
        path.mkdir(parents=True)

    def add_topic(self, spec: TopicSpec) -> None:
        self.topics[spec.name] = spec
        if self._writer is not None:
            self._connect(spec)

    def _connect(self, spec: TopicSpec) -> None:
        assert self._writer is not None
        self._connections[spec.name] = self._writer.add_connection(
            spec.name, spec.type_name, msgdef=spec.msgdef, rihs01=spec.rihs01,
            offered_qos_profiles=spec.offered_qos,
        )

    def _open_split(self) -> None:
        name = f"{self.path.name}_{self._index}"
        self._index += 1
        self._writer = Writer(self.path / name, version=9, storage_plugin=STORAGES[self.storage])
        self._writer.open()
        self._connections = {}
        for spec in self.topics.values():
            self._connect(spec)
        self._current = SplitFile(name + EXTENSIONS[self.storage])
        self._current_bytes = 0
        self._opened_at = time.monotonic()

    def _close_split(self) -> None:
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        writer.close()
        scratch = writer.path
        final = self.path / self._current.path
        (scratch / self._current.path).replace(final)
        shutil.rmtree(scratch)
        self._current.size = final.stat().st_size
        # Per-file costs (schemas, summary, index) are learnt from the splits closed so far.
        self._file_overhead = max(self._file_overhead, self._current.size - self._current_bytes)
        if self._current.message_count:
            self.closed.append(self._current)
        else:
            final.unlink()

    def _split_due(self) -> bool:
        size = self.limits.effective_bag_size()
        if size and self._current_bytes >= size:
            return True
        duration = self.limits.max_bag_duration_s
        return bool(duration) and time.monotonic() - self._opened_at >= duration

    def _enforce_total(self) -> None:
        cap = self.limits.max_total_size
        if not cap:
            return
        current = self._current_bytes + self._file_overhead
        while self.closed and sum(f.size for f in self.closed) + current > cap:
            oldest = self.closed.pop(0)
            (self.path / oldest.path).unlink(missing_ok=True)
            self.dropped_files += 1

    def write(self, topic: str, timestamp_ns: int, data: bytes | memoryview) -> None:
        if self._writer is not None and self._current.message_count and self._split_due():
            self._close_split()
            self._enforce_total()
        if self._writer is None:
            self._open_split()
        assert self._writer is not None
        self._writer.write(self._connections[topic], timestamp_ns, data)
        size = len(data) + MESSAGE_OVERHEAD_BYTES
        current = self._current
        current.counts[topic] = current.counts.get(topic, 0) + 1
        current.start_ns = min(current.start_ns, timestamp_ns)
        current.end_ns = max(current.end_ns, timestamp_ns)
        self._current_bytes += size
        self.messages += 1
        self.bytes += size
        self._enforce_total()

    def close(self) -> Path:
        """Close the open split and write metadata.yaml; returns the metadata path."""
        self._close_split()
        metadata_path = self.path / "metadata.yaml"
        text = _metadata_yaml(self.storage, self.topics, self.closed)
        tmp = metadata_path.with_suffix(".yaml.tmp")
        tmp.write_text(text, "utf8")
        tmp.replace(metadata_path)
        return metadata_path


def _metadata_yaml(storage: str, topics: dict[str, TopicSpec], files: list[SplitFile]) -> str:
    """metadata.yaml in the layout rosbag2 (and rosbags' Writer) writes for version 9."""
    start = min((f.start_ns for f in files), default=0)
    end = max((f.end_ns for f in files), default=0)
    counts = {name: sum(f.counts.get(name, 0) for f in files) for name in topics}
    info = {
        "version": 9,
        "storage_identifier": storage,
        "relative_file_paths": [f.path for f in files],
        "duration": {"nanoseconds": max(0, end - start)},
        "starting_time": {"nanoseconds_since_epoch": start},
        "message_count": sum(counts.values()),
        "topics_with_message_count": [
            {
                "topic_metadata": {
                    "name": spec.name,
                    "type": spec.type_name,
                    "serialization_format": "cdr",
                    "offered_qos_profiles": dump_qos_v9(spec.offered_qos),
                    "type_description_hash": spec.rihs01,
                },
                "message_count": counts[spec.name],
            }
            for spec in topics.values()
        ],
        "compression_format": "",
        "compression_mode": "",
        "files": [
            {
                "path": f.path,
                "starting_time": {"nanoseconds_since_epoch": f.start_ns},
                "duration": {"nanoseconds": max(0, f.end_ns - f.start_ns)},
                "message_count": f.message_count,
            }
            for f in files
        ],
        "custom_data": None,
        "ros_distro": "jazzy",
    }
    yaml = YAML(typ="safe")
    yaml.default_flow_style = False
    stream = StringIO()
    yaml.dump({"rosbag2_bagfile_information": info}, stream)
    return stream.getvalue()
