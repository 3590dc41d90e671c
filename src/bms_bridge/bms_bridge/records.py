"""Records on the wire (docs/cloud.md, Payloads): JSON envelopes, compact per-cell frames.

Every record is one MQTT message, a UTF-8 JSON object::

    {"v": 1, "site": "lab", "pack": "demo", "seq": 812, "kind": "cells",
     "stamp": 1234.5, "wall": "2026-11-30T16:07:42.123456Z", "body": {...}}

``seq`` is the bridge's sequence number (continues across restarts), ``stamp`` the measurement
time in seconds on the BMS clock (simulated time in simulation), ``wall`` the bridge's wall clock
in UTC when the record was made. Cell frames quantise to integers: voltages in 0.1 mV, and
temperatures in 0.01 degC, ``null`` for NaN (unknown). Plain Python, no ROS: the sink imports it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

FORMAT_VERSION = 1
TOPIC_ROOT = "bms/v1"
EVENT = "event"
TELEMETRY_KINDS = ("summary", "cells", "estimates", "limits")
RECORD_KINDS = (*TELEMETRY_KINDS, EVENT, "birth")
VOLTAGE_LSB_V = 1e-4
TEMPERATURE_LSB_DEGC = 1e-2


class RecordError(ValueError):
    """A payload that is not a valid record; the message says what is wrong."""


def pack_topic(site: str, pack: str, leaf: str) -> str:
    for name, value in (("site", site), ("pack", pack)):
        if not value or any(c in value for c in "/+#") or value != value.strip():
            raise ValueError(f"{name} id {value!r} is not a valid MQTT topic level (no '/', '+', '#', blanks)")
    return f"{TOPIC_ROOT}/{site}/{pack}/{leaf}"


def wall_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def finite(value: float, digits: int = 6) -> float | None:
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None


def floats(values: Iterable[float], digits: int = 6) -> list[float | None]:
    return [finite(v, digits) for v in values]


def quantise(values: Iterable[float], lsb: float) -> list[int | None]:
    return [round(float(v) / lsb) if math.isfinite(v) else None for v in values]


def dequantise(values: Sequence[int | None], lsb: float) -> list[float]:
    return [math.nan if v is None else v * lsb for v in values]


def envelope(site: str, pack: str, seq: int, kind: str, stamp_s: float, body: dict) -> bytes:
    record = {"v": FORMAT_VERSION, "site": site, "pack": pack, "seq": seq, "kind": kind,
              "stamp": finite(stamp_s, 9), "wall": wall_now(), "body": body}
    return json.dumps(record, separators=(",", ":"), allow_nan=False).encode()


def parse(payload: bytes) -> dict:
    """Decode and check one record's envelope; RecordError says what is wrong."""
    try:
        record = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise RecordError("not a JSON object")
    if record.get("v") != FORMAT_VERSION:
        raise RecordError(f"format version {record.get('v')!r}, this reader knows {FORMAT_VERSION}")
    for key, kind in (("site", str), ("pack", str), ("seq", int), ("kind", str), ("wall", str), ("body", dict)):
        if not isinstance(record.get(key), kind):
            raise RecordError(f"field {key!r} missing or not {kind.__name__}")
    if record["kind"] not in RECORD_KINDS:
        raise RecordError(f"unknown kind {record['kind']!r} (known: {', '.join(RECORD_KINDS)})")
    try:
        record["wall_dt"] = datetime.strptime(record["wall"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError as exc:
        raise RecordError(f"field 'wall' {record['wall']!r} is not UTC ISO 8601 (…T…Z)") from exc
    return record


def cell_frame(samples: dict[int, object], modules: int, cells: int, sensors: int) -> dict:
    """One pack-wide frame from each module's latest CellMeasurements (missing: nulls, seq -1)."""
    volts: list[int | None] = []
    temps: list[int | None] = []
    stamps: list[float | None] = []
    seqs: list[int] = []
    flags: list[int] = []
    for module in range(modules):
        sample = samples.get(module)
        if sample is None:
            volts += [None] * cells
            temps += [None] * sensors
            stamps.append(None)
            seqs.append(-1)
            flags.append(0)
            continue
        volts += quantise(sample.cell_voltages_v, VOLTAGE_LSB_V)
        temps += quantise(sample.temperatures_degc, TEMPERATURE_LSB_DEGC)
        stamp = sample.header.stamp
        stamps.append(stamp.sec + stamp.nanosec * 1e-9)
        seqs.append(int(sample.sequence))
        flags.append(int(sample.module_flags))
    return {"modules": modules, "cells": cells, "sensors": sensors, "module_stamp": stamps,
            "module_seq": seqs, "module_flags": flags, "v_01mv": volts, "t_001c": temps}


def decoded_cell_frame(body: dict) -> tuple[list[float], list[float]]:
    """(voltages in V, temperatures in degC) of a cell frame body, module-major."""
    return dequantise(body["v_01mv"], VOLTAGE_LSB_V), dequantise(body["t_001c"], TEMPERATURE_LSB_DEGC)
