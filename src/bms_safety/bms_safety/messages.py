"""ROS messages of the supervisor's verdicts: active faults and the fault log with freeze frames.

The fault log on /bms/fault_log is the persisted log (:mod:`bms_safety.persistence`) as a message,
so a GUI or a cloud bridge on any host sees what the state file holds. It is latched and sent only
when the log or the latched set changes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from builtin_interfaces.msg import Time

from bms_common.stamps import to_stamp
from bms_interfaces.msg import Fault, FaultLog, FaultLogEntry, FreezeFrame

from .persistence import FaultLogEntry as LogRecord
from .persistence import SafetyState
from .results import ActiveFault

NAN = float("nan")


def fault_message(fault: ActiveFault) -> Fault:
    return Fault(code=fault.code, level=int(fault.level), module_id=fault.module_id, cell=fault.cell,
                 value=float(fault.value), limit=float(fault.limit), since=_stamp(fault.since_s),
                 latched=fault.latched, description=fault.description)


def fault_log_message(state: SafetyState, latched: Iterable[ActiveFault], now_s: float, sequence: int,
                      frame_id: str) -> FaultLog:
    """The log as persisted: entries most severe first, then the most recent."""
    msg = FaultLog(sequence=sequence, latched=[fault_message(f) for f in latched])
    msg.header.stamp = _stamp(now_s)
    msg.header.frame_id = frame_id
    records = sorted(state.log.values(), key=lambda e: (-e.max_level, -_finite_or(e.last_s, -math.inf)))
    msg.entries = [_entry(record) for record in records]
    return msg


def _entry(record: LogRecord) -> FaultLogEntry:
    return FaultLogEntry(
        key=record.key, code=record.code, max_level=int(record.max_level), module_id=record.module_id,
        cell=record.cell, first=_stamp(record.first_s), last=_stamp(record.last_s),
        count=int(record.count), description=record.description,
        first_frame=freeze_frame(record.first_snapshot), last_frame=freeze_frame(record.last_snapshot))


def freeze_frame(snapshot: Mapping[str, Any]) -> FreezeFrame:
    """A freeze frame from the JSON-ready snapshot the evaluator takes (None: unknown, NaN here)."""
    module_id = snapshot.get("module_id")
    frame = FreezeFrame(
        pack_current_a=_number(snapshot.get("pack_current_a")),
        pack_voltage_v=_number(snapshot.get("pack_voltage_v")),
        dc_link_voltage_v=_number(snapshot.get("dc_link_voltage_v")),
        insulation_resistance_ohm=_number(snapshot.get("insulation_ohm")),
        hvil_closed=bool(snapshot.get("hvil_closed", False)),
        pack_stamp=_stamp(_number(snapshot.get("pack_stamp_s"))),
        module_id=int(module_id) if module_id is not None else -1,
    )
    if module_id is not None:
        frame.module_stamp = _stamp(_number(snapshot.get("module_stamp_s")))
        frame.cell_voltages_v = [_number(v) for v in snapshot.get("cell_voltages_v", [])]
        frame.temperatures_degc = [_number(t) for t in snapshot.get("temperatures_degc", [])]
    return frame


def _number(value: Any) -> float:
    return NAN if value is None else float(value)


def _finite_or(value: float, default: float) -> float:
    return value if math.isfinite(value) else default


def _stamp(seconds: float) -> Time:
    """A stamp for a time that may be unknown (NaN in an old state file): unknown is time 0."""
    return to_stamp(seconds) if math.isfinite(seconds) else Time()
