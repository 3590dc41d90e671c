"""``bms bag export``: one CSV file per topic, in wide format.

Each row is one message: ``timestamp_ns`` (the bag's receive time) then the message's fields
flattened (see flatten.py). The column set is the union over the topic's messages, in order of
first appearance, so rows of a topic are kept in memory until its file is written.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from rosbags.highlevel import AnyReader

from bms_tools.bags.flatten import flatten
from bms_tools.bags.progress import Progress
from bms_tools.bags.reading import BagError, open_decoding
from bms_tools.rosgraph import resolve


def csv_name(topic: str) -> str:
    return topic.strip("/").replace("/", "__") + ".csv"


def export_bag(path: Path, output: Path, topics: list[str]) -> int:
    try:
        reader = open_decoding(path)
    except BagError as error:
        print(f"bms bag export: {error}")
        return 2
    with reader:
        return _export(reader, path, output, topics)


def _export(reader: AnyReader, path: Path, output: Path, topics: list[str]) -> int:
    wanted = {resolve(t) for t in topics}
    connections = [c for c in reader.connections if not wanted or c.topic in wanted]
    missing = wanted - {c.topic for c in connections}
    if missing:
        print(f"bms bag export: not in {path}: {', '.join(sorted(missing))}")
    rows: dict[str, list[dict[str, Any]]] = {c.topic: [] for c in connections}
    progress = Progress()
    total = sum(c.msgcount for c in connections)
    done = 0
    for connection, timestamp, raw in reader.messages(connections=connections):
        msg = reader.deserialize(raw, connection.msgtype)
        rows[connection.topic].append({"timestamp_ns": timestamp, **flatten(msg)})
        done += 1
        progress.update(f"exporting {path}: {done} / {total} messages")
    output.mkdir(parents=True, exist_ok=True)
    for topic, topic_rows in rows.items():
        columns: dict[str, None] = {}
        for row in topic_rows:
            columns.update(dict.fromkeys(row))
        with open(output / csv_name(topic), "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns))
            writer.writeheader()
            writer.writerows(topic_rows)
    progress.finish(f"exported {done} messages of {len(rows)} topics to {output}")
    return 0
