"""Events on change, derived from the contract topics (plain Python; the node feeds messages in).

Each watcher keeps what it last saw as a JSON-able dict that the bridge stores in its outbox, so
after a restart the first message (latched: /bms/fault_log, /bms/safety_status) is compared with
what the bridge knew before it went down: faults raised and cleared meanwhile become events
marked ``"recovered": true``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

LEVELS = ("OK", "WARNING", "ALARM", "FAULT")
STATES = ("STANDBY", "PRECHARGE", "DRIVE", "CHARGE", "ERROR")


def level_name(level: int) -> str:
    return LEVELS[level] if 0 <= level < len(LEVELS) else str(level)


def state_name(state: int) -> str:
    return STATES[state] if 0 <= state < len(STATES) else str(state)


def seconds(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def _num(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def freeze_frame(frame) -> dict:
    return {
        "pack_current_a": _num(frame.pack_current_a), "pack_voltage_v": _num(frame.pack_voltage_v),
        "dc_link_voltage_v": _num(frame.dc_link_voltage_v),
        "insulation_resistance_ohm": _num(frame.insulation_resistance_ohm), "hvil_closed": bool(frame.hvil_closed),
        "pack_stamp": seconds(frame.pack_stamp), "module_id": int(frame.module_id),
        "module_stamp": seconds(frame.module_stamp),
        "cell_voltages_v": [_num(v) for v in frame.cell_voltages_v],
        "temperatures_degc": [_num(t) for t in frame.temperatures_degc],
    }


def fault_entry(entry) -> dict:
    return {"key": entry.key, "code": entry.code, "level": level_name(entry.max_level),
            "module_id": int(entry.module_id), "cell": int(entry.cell), "first": seconds(entry.first),
            "last": seconds(entry.last), "count": int(entry.count), "description": entry.description}


class Watchers:
    """What the bridge last saw of the safety level, fault log, operating state and contactors."""

    def __init__(self, known: dict | None = None) -> None:
        known = known or {}
        self.level: int | None = known.get("level")
        self.counts: dict[str, int] = dict(known.get("counts", {}))
        self.latched: set[str] = set(known.get("latched", []))
        self.state: int | None = known.get("state")
        self.contactors: list | None = known.get("contactors")
        self._fresh = {"level", "faults", "state", "contactors"} if known else set()

    def snapshot(self) -> dict:
        return {"level": self.level, "counts": self.counts, "latched": sorted(self.latched),
                "state": self.state, "contactors": self.contactors}

    def _recovered(self, what: str) -> bool:
        if what in self._fresh:
            self._fresh.discard(what)
            return True
        return False

    def safety(self, msg) -> list[dict]:
        recovered = self._recovered("level")
        if msg.level == self.level:
            return []
        previous, self.level = self.level, int(msg.level)
        return [{"type": "safety_level", "level": level_name(msg.level),
                 "previous": None if previous is None else level_name(previous),
                 "contactors_allowed": bool(msg.contactors_allowed), "recovered": recovered,
                 "faults": [{"code": f.code, "level": level_name(f.level), "module_id": int(f.module_id),
                             "cell": int(f.cell), "value": _num(f.value), "limit": _num(f.limit),
                             "description": f.description} for f in msg.faults]}]

    def fault_log(self, msg) -> list[dict]:
        recovered = self._recovered("faults")
        out: list[dict] = []
        for entry in msg.entries:
            before = self.counts.get(entry.key, 0)
            if entry.count > before:
                out.append({"type": "fault_raised", "recovered": recovered, "occurrences": entry.count - before,
                            **fault_entry(entry), "first_frame": freeze_frame(entry.first_frame),
                            "last_frame": freeze_frame(entry.last_frame)})
            self.counts[entry.key] = int(entry.count)
        latched_now = {_latched_key(f) for f in msg.latched}
        for key in sorted(self.latched - latched_now):
            out.append({"type": "fault_cleared", "key": key, "recovered": recovered})
        self.latched = latched_now
        return out

    def pack_state(self, msg) -> list[dict]:
        recovered = self._recovered("state")
        if msg.operating_state == self.state:
            return []
        previous, self.state = self.state, int(msg.operating_state)
        return [{"type": "operating_state", "state": state_name(msg.operating_state),
                 "previous": None if previous is None else state_name(previous), "reason": msg.state_reason,
                 "recovered": recovered}]

    def contactor_state(self, msg) -> list[dict]:
        recovered = self._recovered("contactors")
        now = [bool(msg.main_plus_closed), bool(msg.main_minus_closed), bool(msg.precharge_closed),
               bool(msg.feedback_mismatch), bool(msg.opened_by_safety), int(msg.open_reason)]
        if now == self.contactors:
            return []
        self.contactors = now
        return [{"type": "contactors", "main_plus_closed": now[0], "main_minus_closed": now[1],
                 "precharge_closed": now[2], "feedback_mismatch": now[3], "opened_by_safety": now[4],
                 "open_reason": now[5], "recovered": recovered}]


def _latched_key(fault) -> str:
    """The fault log's key of a latched Fault: code/module/cell, as bms_safety.results.fault_key."""
    return f"{fault.code}/{fault.module_id}/{fault.cell}"


def codes(faults: Sequence) -> list[str]:
    return [f.code for f in faults]
