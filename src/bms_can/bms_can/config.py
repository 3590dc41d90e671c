"""CAN configuration (``config/can/<name>.yaml``): the bus, every CAN id, timeouts, error
tolerance and where each PackMeasurement field comes from. Drivers are created by factories that
get only the pack, so the file is named by the environment: ``BMS_CAN_CONFIG`` (a name from
config/can/ or a path; default ``default``). Errors name the file, the key and the value.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bms_common.pack_config import ConfigError, read_yaml_mapping, resolve_config

ENV = "BMS_CAN_CONFIG"
DEFAULT_IDS = {
    "cell_voltages": 0x270, "cell_temperatures": 0x280, "board_status": 0x2C0,
    "balancing_command": 0x2E0, "contactor_command": 0x2F0, "contactor_feedback": 0x2F1,
    "limits": 0x351, "insulation_info": 0x37, "ivt_result_i": 0x521, "lem_cab500": 0x3C2,
}
# Frames sent at a range of ids from the configured one: BoardStatus at + module id (0..31), the
# IVT-S results U1 .. Wh at + 1 .. + 7. No id of one frame may fall in another's range.
ID_SPANS = {"board_status": 32, "ivt_result_i": 8}
# PackMeasurement field -> allowed sources. IVT-S channels: U1, U2, U3 (docs/can.md, Wiring).
SOURCES = {
    "current": ("ivt_i", "lem_cab500"),
    "pack_voltage": ("ivt_u1", "ivt_u2", "ivt_u3"),
    "dc_link_voltage": ("ivt_u1", "ivt_u2", "ivt_u3"),
    "insulation_resistance": ("iso165c",),
    "hvil": ("contactor_feedback",),
}
TIMEOUT_KEYS = ("cell_voltages", "cell_temperatures", "board_status", "ivt", "lem_cab500", "insulation",
                "contactor_feedback", "contactor_command", "limits")
DEFAULT_TIMEOUTS_S = {"cell_voltages": 0.5, "cell_temperatures": 1.0, "board_status": 0.5, "ivt": 0.5, "lem_cab500": 0.5,
                      "insulation": 3.0, "contactor_feedback": 0.5, "contactor_command": 0.5, "limits": 0.5}


@dataclass(frozen=True)
class CanConfig:
    source: Path
    bus: dict[str, Any]                  # python-can Bus arguments; empty = python-can's own config
    ids: dict[str, int]
    timeouts_s: dict[str, float]
    board_status: bool = True            # boards send the BoardStatus extension frame
    max_consecutive_errors: int = 3      # counter / CRC errors tolerated in a row before a fault
    ivt_byte_order: str = "big"
    sources: dict[str, str] = field(default_factory=dict)


def load_can_config(name_or_path: str | None = None) -> CanConfig:
    path = resolve_config("can", name_or_path or os.environ.get(ENV, "default"))
    return parse_can_config(read_yaml_mapping(path), path)


def parse_can_config(data: dict[str, Any], path: Path) -> CanConfig:
    def fail(key: str, message: str) -> ConfigError:
        return ConfigError(f"{path}: {key} {message}")

    known = {"bus", "ids", "timeouts_s", "board_status", "max_consecutive_errors", "ivt_byte_order", "sources"}
    for key in data:
        if key not in known:
            raise fail(str(key), f"is not a known key (known: {', '.join(sorted(known))})")
    bus = data.get("bus") or {}
    if not isinstance(bus, dict):
        raise fail("bus", f"must be a mapping of python-can Bus arguments, got {bus!r}")
    ids = dict(DEFAULT_IDS)
    for name, value in (data.get("ids") or {}).items():
        if name not in DEFAULT_IDS:
            raise fail(f"ids.{name}", f"is not a known frame (known: {', '.join(DEFAULT_IDS)})")
        if not isinstance(value, int) or not 0 <= value <= 0x7FF:
            raise fail(f"ids.{name}", f"must be an 11-bit CAN id 0..0x7FF, got {value!r}")
        ids[name] = value
    _check_id_ranges(ids, fail)
    timeouts = dict(DEFAULT_TIMEOUTS_S)
    for name, value in (data.get("timeouts_s") or {}).items():
        if name not in TIMEOUT_KEYS:
            raise fail(f"timeouts_s.{name}", f"is not a known timeout (known: {', '.join(TIMEOUT_KEYS)})")
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            raise fail(f"timeouts_s.{name}", f"must be a number > 0, got {value!r}")
        timeouts[name] = float(value)
    errors = data.get("max_consecutive_errors", 3)
    if not isinstance(errors, int) or isinstance(errors, bool) or not 0 <= errors <= 100:
        raise fail("max_consecutive_errors", f"must be an integer 0..100, got {errors!r}")
    order = data.get("ivt_byte_order", "big")
    if order not in ("big", "little"):
        raise fail("ivt_byte_order", f"must be big or little (an IVT-S device setting), got {order!r}")
    status = data.get("board_status", True)
    if not isinstance(status, bool):
        raise fail("board_status", f"must be true or false, got {status!r}")
    sources = data.get("sources") or {}
    if not isinstance(sources, dict):
        raise fail("sources", f"must map PackMeasurement fields to sources, got {sources!r}")
    for name, value in sources.items():
        if name not in SOURCES:
            raise fail(f"sources.{name}", f"is not a PackMeasurement field with a source (known: {', '.join(SOURCES)})")
        if value not in SOURCES[name]:
            raise fail(f"sources.{name}", f"must be one of {', '.join(SOURCES[name])}, got {value!r}")
    return CanConfig(path, dict(bus), ids, timeouts, status, errors, order, dict(sources))


def _check_id_ranges(ids: dict[str, int], fail: Any) -> None:
    def span(name: str) -> str:
        first, count = ids[name], ID_SPANS.get(name, 1)
        return f"0x{first:X}" if count == 1 else f"0x{first:X}..0x{first + count - 1:X}"

    for name, first in ids.items():
        if first + ID_SPANS.get(name, 1) - 1 > 0x7FF:
            raise fail(f"ids.{name}", f"0x{first:X}: its frames use {span(name)}, beyond the 11-bit range 0..0x7FF")
    names = list(ids)
    for n, a in enumerate(names):
        for b in names[n + 1:]:
            if ids[a] < ids[b] + ID_SPANS.get(b, 1) and ids[b] < ids[a] + ID_SPANS.get(a, 1):
                raise fail(f"ids.{a}", f"({span(a)}) overlaps ids.{b} ({span(b)}): every frame needs ids of its "
                                       "own; move one of them (BoardStatus uses + 0..31, the IVT-S results + 0..7)")


def require_sources(config: CanConfig) -> dict[str, str]:
    """Every PackMeasurement field needs a source: a missing one is a configuration error."""
    missing = [name for name in SOURCES if name not in config.sources]
    if missing:
        raise ConfigError(
            f"{config.source}: sources has no entry for {', '.join(missing)}: every PackMeasurement field "
            f"needs a source (e.g. {', '.join(f'{m}: {SOURCES[m][0]}' for m in missing)}); hvil_closed is never "
            "assumed true")
    return config.sources
