"""The pack as the GUI shows it, built from contract messages; no ROS imports.

The live node and the recorded-run viewer feed the same :class:`PackView` (rclpy messages and
rosbags-decoded messages have the same fields), so both pages draw from one format:
``status()`` is a small JSON-able dict, ``grid()`` the per-cell arrays as one binary frame.
Times (``received``, ``now``) are seconds on one clock chosen by the caller: the wall clock
live, the run's own clock in a recording.
"""

from __future__ import annotations

import math
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

STATES = ("STANDBY", "PRECHARGE", "DRIVE", "CHARGE", "ERROR")
LEVELS = ("OK", "WARNING", "ALARM", "FAULT")
LIMIT_REASONS = ("configured maximum", "state of power", "safety derating", "no estimator",
                 "not allowed in this state")
OPEN_REASONS = ("", "safety fault", "supervisor silent", "closing not allowed")
GRID_MAGIC = b"BMSG"
MAX_MODULES, MAX_CELLS = 1000, 64  # a larger id or array is a broken sender, not a pack to draw
# Cell flag bits of the binary grid frame (app.js reads the same bits).
FLAG_BALANCING, FLAG_STALE, FLAG_MISSING, FLAG_AFE = 1, 2, 4, 8
# Which topic tells the health of which component.
SOURCES = ("master", "current_sensor", "safety_supervisor", "contactor", "estimator", "slaves")
SERIES_FIELDS = ("t", "pack_v", "pack_a", "min_cell_v", "max_cell_v", "max_temp", "soc",
                 "charge_limit_a", "discharge_limit_a")


def _num(value: Any) -> float | None:
    """JSON has no NaN: unknown is null."""
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else round(value, 6)


def _stamp(stamp: Any) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def _fault(f: Any) -> dict:
    return {"code": f.code, "level": LEVELS[min(f.level, 3)], "module": f.module_id, "cell": f.cell,
            "value": _num(f.value), "limit": _num(f.limit), "since": _stamp(f.since),
            "latched": bool(f.latched), "description": f.description}


def _frame(frame: Any) -> dict:
    return {"pack_current_a": _num(frame.pack_current_a), "pack_voltage_v": _num(frame.pack_voltage_v),
            "dc_link_voltage_v": _num(frame.dc_link_voltage_v),
            "insulation_resistance_ohm": _num(frame.insulation_resistance_ohm),
            "hvil_closed": bool(frame.hvil_closed), "pack_stamp": _stamp(frame.pack_stamp),
            "module": frame.module_id, "module_stamp": _stamp(frame.module_stamp),
            "cell_voltages_v": [_num(v) for v in frame.cell_voltages_v],
            "temperatures_degc": [_num(v) for v in frame.temperatures_degc]}


def fault_log_dict(msg: Any) -> dict:
    return {"sequence": msg.sequence, "stamp": _stamp(msg.header.stamp),
            "latched": [_fault(f) for f in msg.latched],
            "entries": [{"key": e.key, "code": e.code, "level": LEVELS[min(e.max_level, 3)],
                         "module": e.module_id, "cell": e.cell, "first": _stamp(e.first),
                         "last": _stamp(e.last), "count": e.count, "description": e.description,
                         "first_frame": _frame(e.first_frame), "last_frame": _frame(e.last_frame)}
                        for e in msg.entries]}


@dataclass
class Module:
    voltages: np.ndarray
    temperatures: np.ndarray
    balancing: np.ndarray
    afe_flags: np.ndarray
    received: float
    stamp: float


@dataclass
class PackView:
    stale_after_s: float = 1.0
    history_s: float = 300.0
    series_period_s: float = 0.5
    modules: dict[int, Module] = field(default_factory=dict)
    module_status: list[int] = field(default_factory=list)
    pack_state: dict = field(default_factory=dict)
    pack: dict = field(default_factory=dict)
    limits: dict = field(default_factory=dict)
    power_limits: dict = field(default_factory=dict)
    safety: dict = field(default_factory=dict)
    contactors: dict = field(default_factory=dict)
    command: dict = field(default_factory=dict)
    estimates: dict = field(default_factory=dict)
    estimate_arrays: dict[str, np.ndarray] = field(default_factory=dict)
    fault_log: dict = field(default_factory=dict)
    components: dict[str, dict] = field(default_factory=dict)
    audit: deque = field(default_factory=lambda: deque(maxlen=20))
    received: dict[str, float] = field(default_factory=dict)
    series: deque = field(default_factory=lambda: deque(maxlen=2000))
    cell_history: deque = field(default_factory=lambda: deque(maxlen=300))  # (t, volts[m, c]) at 1 Hz
    run_time: float = math.nan  # latest header stamp seen: the run's clock
    version: int = 0  # +1 per message, so a sender skips unchanged frames

    # --- message intake ------------------------------------------------------------------
    def _seen(self, source: str, received: float, stamp: Any = None) -> None:
        self.received[source] = received
        if stamp is not None:
            t = _stamp(stamp)
            if t > 0 and not (t <= self.run_time):
                self.run_time = t
        self.version += 1

    def on_cells(self, msg: Any, received: float) -> None:
        n = len(msg.cell_voltages_v)
        if msg.module_id >= MAX_MODULES or n > MAX_CELLS or len(msg.temperatures_degc) > MAX_CELLS:
            raise ValueError(f"module_id {msg.module_id} with {n} cells, {len(msg.temperatures_degc)} sensors: "
                             f"the GUI shows module ids below {MAX_MODULES} and at most {MAX_CELLS} cells or sensors")
        flags = np.asarray(msg.cell_flags, dtype=np.uint8) if len(msg.cell_flags) == n else np.zeros(n, np.uint8)
        balancing = np.asarray(msg.balancing, dtype=bool) if len(msg.balancing) == n else np.zeros(n, bool)
        self.modules[int(msg.module_id)] = Module(
            np.asarray(msg.cell_voltages_v, dtype=np.float32),
            np.asarray(msg.temperatures_degc, dtype=np.float32), balancing,
            (flags != 0) | bool(msg.module_flags), received, _stamp(msg.header.stamp))
        self._seen("slaves", received, msg.header.stamp)

    def on_pack_measurement(self, msg: Any, received: float) -> None:
        self.pack = {"current_a": _num(msg.current_a), "pack_voltage_v": _num(msg.pack_voltage_v),
                     "dc_link_voltage_v": _num(msg.dc_link_voltage_v),
                     "insulation_resistance_ohm": _num(msg.insulation_resistance_ohm),
                     "hvil_closed": bool(msg.hvil_closed)}
        power = msg.current_a * msg.pack_voltage_v
        self.pack["power_w"] = _num(power)
        self._seen("current_sensor", received, msg.header.stamp)

    def on_pack_state(self, msg: Any, received: float) -> None:
        self.module_status = list(msg.module_status)
        self.pack_state = {
            "state": STATES[msg.operating_state] if msg.operating_state < len(STATES) else str(msg.operating_state),
            "reason": msg.state_reason,
            "feedback": {"main_plus": msg.main_plus_closed, "main_minus": msg.main_minus_closed,
                         "precharge": msg.precharge_closed},
            "min_cell_v": _num(msg.min_cell_voltage_v),
            "min_cell_at": [msg.min_cell_voltage_module, msg.min_cell_voltage_cell],
            "max_cell_v": _num(msg.max_cell_voltage_v),
            "max_cell_at": [msg.max_cell_voltage_module, msg.max_cell_voltage_cell],
            "mean_cell_v": _num(msg.mean_cell_voltage_v),
            "min_temp": _num(msg.min_temperature_degc), "max_temp": _num(msg.max_temperature_degc),
            "max_temp_at": [msg.max_temperature_module, msg.max_temperature_sensor],
            "sum_of_cells_v": _num(msg.sum_of_cells_v)}
        self._seen("master", received, msg.header.stamp)
        self._sample_series(_stamp(msg.header.stamp))

    def on_current_limits(self, msg: Any, received: float) -> None:
        reason = lambda r: LIMIT_REASONS[r] if r < len(LIMIT_REASONS) else str(r)  # noqa: E731
        self.limits = {"charge_a": _num(msg.max_charge_current_a), "discharge_a": _num(msg.max_discharge_current_a),
                       "charge_reason": reason(msg.charge_reason), "discharge_reason": reason(msg.discharge_reason)}
        self._seen("master", received, msg.header.stamp)

    def on_safety(self, msg: Any, received: float) -> None:
        self.safety = {"level": LEVELS[min(msg.level, 3)], "contactors_allowed": bool(msg.contactors_allowed),
                       "charge_derating": _num(msg.charge_derating),
                       "discharge_derating": _num(msg.discharge_derating),
                       "faults": [_fault(f) for f in msg.faults]}
        self._seen("safety_supervisor", received, msg.header.stamp)

    def on_contactor_state(self, msg: Any, received: float) -> None:
        self.contactors = {
            "commanded": {"main_plus": msg.main_plus_commanded, "main_minus": msg.main_minus_commanded,
                          "precharge": msg.precharge_commanded},
            "closed": {"main_plus": msg.main_plus_closed, "main_minus": msg.main_minus_closed,
                       "precharge": msg.precharge_closed},
            "welded_or_mismatch": bool(msg.feedback_mismatch), "opened_by_safety": bool(msg.opened_by_safety),
            "open_reason": OPEN_REASONS[msg.open_reason] if msg.open_reason < len(OPEN_REASONS) else str(msg.open_reason)}
        self._seen("contactor", received, msg.header.stamp)

    def on_contactor_command(self, msg: Any, received: float) -> None:
        self.command = {"main_plus": msg.main_plus, "main_minus": msg.main_minus, "precharge": msg.precharge}
        self.version += 1

    def on_cell_states(self, msg: Any, received: float) -> None:
        self.estimates = {"pack_soc": _num(msg.pack_soc), "pack_soh": _num(msg.pack_soh),
                          "modules": msg.module_count, "cells": msg.cells_per_module}
        self.estimate_arrays = {name: np.asarray(getattr(msg, name), dtype=np.float32)
                                for name in ("soc", "soh", "internal_resistance_ohm")}
        self._seen("estimator", received, msg.header.stamp)

    def on_fault_log(self, msg: Any, received: float) -> None:
        self.fault_log = fault_log_dict(msg)
        self.version += 1

    def on_component(self, msg: Any, received: float, compatible: bool) -> None:
        self.components[msg.node_name] = {
            "node": msg.node_name, "kind": msg.kind, "vendor": msg.vendor,
            "implementation": msg.implementation, "version": msg.version,
            "interface_version": msg.interface_version, "host": msg.host,
            "hardware_id": msg.hardware_id, "compatible": compatible}
        self.version += 1

    def on_audit(self, msg: Any, received: float) -> None:
        self.audit.appendleft({"t": _stamp(msg.header.stamp), "origin": msg.origin, "user": msg.user,
                               "peer": msg.peer, "command": msg.command, "argument": msg.argument,
                               "success": bool(msg.success), "answer": msg.answer})
        self.version += 1

    def _sample_series(self, t: float) -> None:
        if self.cell_history and t < self.cell_history[-1][0]:
            self.cell_history.clear()
        if self.modules and (not self.cell_history or t - self.cell_history[-1][0] >= 1.0):
            self.cell_history.append((t, self.voltages()))
        if self.series and t - self.series[-1][0] < self.series_period_s:
            return
        while self.series and (t < self.series[-1][0] or t - self.series[0][0] > self.history_s):
            if t < self.series[-1][0]:  # the clock went back (a new run): start over
                self.series.clear()
            else:
                self.series.popleft()
        self.series.append(self.series_point(t))

    def series_point(self, t: float) -> list:
        return [round(t, 3), self.pack.get("pack_voltage_v"), self.pack.get("current_a"),
                self.pack_state.get("min_cell_v"), self.pack_state.get("max_cell_v"),
                self.pack_state.get("max_temp"), self.estimates.get("pack_soc"),
                self.limits.get("charge_a"), self.limits.get("discharge_a")]

    # --- output ----------------------------------------------------------------------------
    def _stale(self, module_id: int, now: float) -> bool:
        module = self.modules.get(module_id)
        master_says = module_id < len(self.module_status) and self.module_status[module_id] == 2
        return module is None or now - module.received > self.stale_after_s or master_says

    def health(self, now: float) -> dict:
        out = {}
        for source in SOURCES:
            if source == "slaves" and self.modules:
                age = max(now - m.received for m in self.modules.values())
            else:
                age = now - self.received[source] if source in self.received else None
            out[source] = {"age_s": None if age is None else round(age, 2),
                           "ok": age is not None and age <= self.stale_after_s}
        return out

    def status(self, now: float) -> dict:
        return {"type": "status", "run_time": _num(self.run_time), "state": self.pack_state,
                "pack": self.pack, "limits": self.limits, "safety": self.safety,
                "contactors": self.contactors, "command": self.command, "estimates": self.estimates,
                "health": self.health(now), "fault_log": self.fault_log,
                "components": sorted(self.components.values(), key=lambda c: c["node"]),
                "audit": list(self.audit),
                "stale_modules": [m for m in range(self.module_count()) if self._stale(m, now)],
                "point": list(self.series[-1]) if self.series else None}

    def module_count(self) -> int:
        return max([len(self.module_status), *(m + 1 for m in self.modules)], default=0)

    def grid(self, now: float) -> bytes:
        """One binary frame: header, then float32 voltage, temperature, SOC, SOH, resistance
        arrays and a uint8 flag array, module-major (docs/gui.md, WebSocket frames)."""
        volts = self.voltages()
        modules, cells = volts.shape
        sensors = max((len(m.temperatures) for m in self.modules.values()), default=0)
        temps = np.full((modules, sensors), np.nan, np.float32)
        flags = np.zeros((modules, cells), np.uint8)
        for module_id in range(modules):
            module = self.modules.get(module_id)
            if module is None:
                flags[module_id] |= FLAG_MISSING | FLAG_STALE
                continue
            temps[module_id, :len(module.temperatures)] = module.temperatures
            flags[module_id, :len(module.balancing)] |= np.where(module.balancing, FLAG_BALANCING, 0).astype(np.uint8)
            flags[module_id, :len(module.afe_flags)] |= np.where(module.afe_flags, FLAG_AFE, 0).astype(np.uint8)
            if self._stale(module_id, now):
                flags[module_id] |= FLAG_STALE
        estimates = []
        for name in ("soc", "soh", "internal_resistance_ohm"):
            values = np.full(modules * cells, np.nan, np.float32)
            source = self.estimate_arrays.get(name)
            if source is not None and self.estimates.get("cells") == cells:
                count = min(len(source), values.size)
                values[:count] = source[:count]
            estimates.append(values)
        header = GRID_MAGIC + struct.pack("<HHHH", modules, cells, sensors, 0)
        return b"".join([header, volts.tobytes(), temps.tobytes(), *(e.tobytes() for e in estimates),
                         flags.tobytes()])

    def voltages(self) -> np.ndarray:
        modules = self.module_count()
        cells = max((len(m.voltages) for m in self.modules.values()), default=0)
        volts = np.full((modules, cells), np.nan, np.float32)
        for module_id, module in self.modules.items():
            volts[module_id, :len(module.voltages)] = module.voltages
        return volts

    def history_of(self, module_id: int, cell: int) -> list:
        """[[t, volts], ...] of one cell over the retained minutes (null where unknown)."""
        return [[round(t, 3), _num(v[module_id, cell]) if module_id < v.shape[0] and cell < v.shape[1] else None]
                for t, v in self.cell_history]
