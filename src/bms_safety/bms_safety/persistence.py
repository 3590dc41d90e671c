"""Latched faults and the fault log, kept in a JSON file that survives a supervisor restart.

Writes are atomic (temporary file, fsync, os.replace, fsync of the directory): after a crash or
power loss the file holds either the old or the new state, never a torn mix, so a respawned
supervisor cannot lose a latch to a half-written file.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bms_common.atomic_file import replace_atomically

from .codes import Level
from .results import ActiveFault

STATE_FILE_NAME = "safety_supervisor.json"
FORMAT_VERSION = 1


@dataclass
class LatchedRecord:
    code: str
    module_id: int
    cell: int
    since_s: float
    description: str


@dataclass
class FaultLogEntry:
    """All occurrences of one fault location, with freeze frames of the first and the latest."""

    key: str
    code: str
    module_id: int
    cell: int
    max_level: int
    first_s: float
    last_s: float
    count: int
    description: str  # as of the latest occurrence
    first_snapshot: dict[str, Any]
    last_snapshot: dict[str, Any]


@dataclass
class SafetyState:
    latched: list[LatchedRecord] = field(default_factory=list)
    log: dict[str, FaultLogEntry] = field(default_factory=dict)

    def record(self, fault: ActiveFault, now_s: float, snapshot: dict[str, Any]) -> None:
        """Count one raise of ``fault`` in the log, keeping its measurements as a freeze frame."""
        entry = self.log.get(fault.key)
        if entry is None:
            self.log[fault.key] = FaultLogEntry(fault.key, fault.code, fault.module_id, fault.cell,
                                                int(fault.level), now_s, now_s, 1, fault.description,
                                                snapshot, snapshot)
            return
        entry.count += 1
        entry.last_s = now_s
        entry.max_level = max(entry.max_level, int(fault.level))
        entry.description = fault.description
        entry.last_snapshot = snapshot

    def set_latched(self, faults: list[ActiveFault]) -> None:
        self.latched = [LatchedRecord(f.code, f.module_id, f.cell, f.since_s, f.description) for f in faults]


def state_file(state_dir: Path) -> Path:
    return Path(state_dir) / STATE_FILE_NAME


def save_state(path: Path, state: SafetyState) -> None:
    """Atomically replace ``path`` with ``state``; raises OSError when the disk refuses."""
    document = {
        "format_version": FORMAT_VERSION,
        "latched": [asdict(r) for r in state.latched],
        "log": [asdict(e) for e in state.log.values()],
    }
    text = json.dumps(_nan_to_none(document), indent=1, allow_nan=False)
    replace_atomically(path, lambda handle: handle.write(text.encode()))


def load_state(path: Path) -> tuple[SafetyState, str | None]:
    """State from ``path``; a missing file is a fresh start. The second item explains a file that
    exists but cannot be read: the caller must then assume a latch may have been lost."""
    if not path.exists():
        return SafetyState(), None
    try:
        document = json.loads(path.read_text())
        if document.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"format_version {document.get('format_version')!r}, expected {FORMAT_VERSION}")
        latched = [LatchedRecord(**_none_to_nan(r)) for r in document["latched"]]
        log = {e["key"]: FaultLogEntry(**{**e, **_none_to_nan({k: e[k] for k in ("first_s", "last_s")})})
               for e in document["log"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return SafetyState(), f"{path}: unreadable fault state ({exc})"
    return SafetyState(latched, log), None


def format_fault_log(state: SafetyState) -> str:
    """Human-readable fault log for ``bms faults``: latched faults first, then every entry."""
    lines = [f"latched faults: {len(state.latched)}"]
    for r in state.latched:
        lines.append(f"  LATCHED {r.code} module {r.module_id} cell {r.cell} since {_time(r.since_s)}: "
                     f"{r.description}")
    lines.append(f"fault log: {len(state.log)} entr{'y' if len(state.log) == 1 else 'ies'}")
    for e in sorted(state.log.values(), key=lambda e: (-e.max_level, -e.last_s)):
        lines.append(f"  {Level(e.max_level).name:<7} {e.code} module {e.module_id} cell {e.cell}: "
                     f"{e.count}x, first {_time(e.first_s)}, last {_time(e.last_s)}")
        lines.append(f"          {e.description}")
        lines.append(f"          at first: {_frame(e.first_snapshot)}")
        if e.count > 1:
            lines.append(f"          at last:  {_frame(e.last_snapshot)}")
    return "\n".join(lines)


def _time(stamp_s: float) -> str:
    if math.isnan(stamp_s):
        return "?"
    if stamp_s > 1e9:  # system clock (epoch seconds) rather than sim time
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp_s)) + f" ({stamp_s:.3f})"
    return f"t={stamp_s:.3f} s"


def _frame(snapshot: dict[str, Any]) -> str:
    parts = [f"I={_num(snapshot.get('pack_current_a'))} A", f"Vpack={_num(snapshot.get('pack_voltage_v'))} V"]
    if "cell_voltages_v" in snapshot:
        cells = " ".join(_num(v, ".4f") for v in snapshot["cell_voltages_v"])
        temps = " ".join(_num(t, ".1f") for t in snapshot["temperatures_degc"])
        parts.append(f"module {snapshot['module_id']} V=[{cells}] T=[{temps}]")
    return ", ".join(parts)


def _num(value: float | None, fmt: str = ".2f") -> str:
    return "nan" if value is None else format(value, fmt)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return value


def _none_to_nan(record: dict[str, Any]) -> dict[str, Any]:
    return {k: math.nan if v is None else v for k, v in record.items()}
