"""Flattening decoded messages into named scalar columns for CSV export.

Nested fields join with dots (``header.stamp.sec``); array elements get an index suffix
(``cell_voltages_v_0``, ``faults_1.code``). Variable-length arrays simply leave the columns of
absent elements empty in shorter rows.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


def message_fields(msg: Any) -> list[str]:
    """Data field names of a rosbags message.

    rosbags' message dataclasses also carry the constants and ``__msgtype__`` as fields; ROS
    field names are lower case and constant names upper case, which tells them apart.
    """
    return [f.name for f in dataclasses.fields(msg) if not f.name.startswith("__") and not f.name.isupper()]


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if hasattr(value, "__msgtype__"):
        columns: dict[str, Any] = {}
        for name in message_fields(value):
            columns.update(flatten(getattr(value, name), f"{prefix}.{name}" if prefix else name))
        return columns
    if isinstance(value, np.ndarray | list | tuple):
        columns = {}
        for index, element in enumerate(value):
            columns.update(flatten(element, f"{prefix}_{index}"))
        return columns
    if isinstance(value, np.generic):
        return {prefix: value.item()}
    return {prefix: value}
