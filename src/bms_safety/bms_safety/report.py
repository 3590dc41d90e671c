"""Turns the evaluator's per-slot check state into fault records with locations and descriptions.

Only active slots are visited, so the cost follows the number of faults, not of cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from bms_common.plausibility import CELL_ADC_MISMATCH, MODULE_AFE_SELF_TEST, MODULE_THERMISTOR_FAULT

from .codes import FAULT_CODES, Level
from .inputs import MeasurementStore
from .limits import LimitTable
from .results import ActiveFault, fault_key

if TYPE_CHECKING:
    from .checks import DebouncedCheck

# Unit of each check's value and limit, for descriptions; absent: a dimensionless flag.
UNITS = {
    "CELL_OV": "V", "CELL_UV": "V", "CELL_SPREAD": "V", "PLAUS_VOLTAGE_NAN": "V", "PLAUS_VOLTAGE_RANGE": "V",
    "PLAUS_PACK_VOLTAGE": "V", "TEMP_HIGH_CHARGE": "degC", "TEMP_LOW_CHARGE": "degC",
    "TEMP_HIGH_DISCHARGE": "degC", "TEMP_LOW_DISCHARGE": "degC", "PLAUS_TEMP_NAN": "degC",
    "PLAUS_TEMP_RANGE": "degC", "OVERCURRENT_CHARGE": "A", "OVERCURRENT_DISCHARGE": "A", "PLAUS_CURRENT": "A",
    "INSULATION_LOW": "ohm", "PLAUS_VOLTAGE_STUCK": "s unchanged", "PLAUS_TEMP_STUCK": "s unchanged",
    "STALE_MODULE": "s old", "STALE_CURRENT_SENSOR": "s old", "ESTIMATOR_LOSS": "s old",
}


class FaultReporter:
    def __init__(self, limits: LimitTable, store: MeasurementStore,
                 sensor_cells: Sequence[Sequence[int]] | None) -> None:
        self.limits = limits
        self.store = store
        self.sensor_cells = [list(cells) for cells in sensor_cells] if sensor_cells else None
        self.pack_voltage_tolerance_v = limits.plausibility.pack_voltage_tolerance_v
        self._per_module = {"cell": store.cells, "sensor": store.sensors}

    # --- locations ----------------------------------------------------------------------------
    def location(self, code: str, slot: int) -> tuple[int, int]:
        kind = FAULT_CODES[code].slot
        if kind in self._per_module:
            return divmod(slot, self._per_module[kind])
        if kind == "module":
            return slot, -1
        return -1, -1

    def slot_of(self, code: str, module_id: int, cell: int) -> int | None:
        kind = FAULT_CODES[code].slot
        if kind == "pack":
            return 0 if (module_id, cell) == (-1, -1) else None
        if not 0 <= module_id < self.store.modules:
            return None
        if kind == "module":
            return module_id if cell == -1 else None
        per = self._per_module[kind]
        return module_id * per + cell if 0 <= cell < per else None

    def key_of(self, code: str, slot: int) -> str:
        return fault_key(code, *self.location(code, slot))

    def where(self, code: str, module_id: int, cell: int) -> str:
        kind = FAULT_CODES[code].slot
        if kind == "cell":
            return f"module {module_id} cell {cell}"
        if kind == "sensor":
            near = ""
            if self.sensor_cells and cell < len(self.sensor_cells):
                near = f" (next to cells {', '.join(map(str, self.sensor_cells[cell]))})"
            return f"module {module_id} temperature sensor {cell}{near}"
        if kind == "module":
            return f"module {module_id}"
        return "pack"

    # --- fault records ------------------------------------------------------------------------
    def faults(self, checks: dict[str, DebouncedCheck]) -> tuple[ActiveFault, ...]:
        records = []
        for code, check in checks.items():
            if not check.any_active():
                continue
            slots, top = check.top_level_index()
            for slot, row in zip(slots.tolist(), top.tolist(), strict=True):
                records.append(self._record(code, check, slot, row))
        records.sort(key=lambda f: (-f.level, f.code, f.module_id, f.cell))
        return tuple(records)

    def raised_keys(self, checks: dict[str, DebouncedCheck], newly: dict[str, np.ndarray]) -> set[str]:
        keys = set()
        for code, mask in newly.items():
            if mask is not checks[code].none_raised and mask.any():
                keys.update(self.key_of(code, int(s)) for s in np.flatnonzero(mask.any(axis=0)))
        return keys

    def _record(self, code: str, check: DebouncedCheck, slot: int, row: int) -> ActiveFault:
        module_id, cell = self.location(code, slot)
        level = Level(int(check.levels[row]))
        value = float(check.values[slot])
        limit = self._limit(code, float(check.limits[row]), value)
        return ActiveFault(
            code=code,
            level=level,
            module_id=module_id,
            cell=cell,
            value=value,
            limit=limit,
            since_s=float(check.since_s[row, slot]),
            latched=bool(check.latching[row, 0]),
            description=self._describe(code, level, module_id, cell, value, limit),
        )

    def _limit(self, code: str, table_limit: float, value: float) -> float:
        p = self.limits.plausibility
        if code == "PLAUS_VOLTAGE_RANGE":
            return p.cell_voltage_max_v if value > p.cell_voltage_max_v else p.cell_voltage_min_v
        if code == "PLAUS_TEMP_RANGE":
            return p.temperature_max_degc if value > p.temperature_max_degc else p.temperature_min_degc
        if code == "PLAUS_PACK_VOLTAGE":
            return self.pack_voltage_tolerance_v
        return table_limit

    def _describe(self, code: str, level: Level, module_id: int, cell: int, value: float, limit: float) -> str:
        st = self.store
        if code == "PLAUS_MALFORMED":
            return st.malformed_note[module_id]
        if code == "PLAUS_SEQUENCE":
            return st.bad_sequence_note[module_id]
        if code == "PLAUS_UNKNOWN_MODULE":
            return st.unknown_module.description
        if code == "PLAUS_STAMP":
            return st.bad_stamp_note[module_id]
        if code == "PLAUS_PACK_STAMP":
            return st.bad_pack_stamp.description
        if code == "PLAUS_AFE_DIAG":
            return f"{FAULT_CODES[code].meaning} at module {module_id}: {afe_flag_names(st, module_id)}"
        meaning = FAULT_CODES[code].meaning
        where = self.where(code, module_id, cell)
        unit = UNITS.get(code)
        if unit is None or math.isnan(value):
            return f"{meaning} at {where}"
        if math.isnan(limit):
            return f"{meaning} at {where}: {value:.6g} {unit}"
        return f"{meaning} at {where}: {value:.6g} {unit}, {level.name} limit {limit:.6g} {unit}"

    # --- freeze frames ------------------------------------------------------------------------
    def snapshot(self, module_id: int) -> dict[str, Any]:
        st, pack = self.store, self.store.pack
        frame: dict[str, Any] = {
            "pack_current_a": _json_float(pack.current_a),
            "pack_voltage_v": _json_float(pack.pack_voltage_v),
            "dc_link_voltage_v": _json_float(pack.dc_link_voltage_v),
            "insulation_ohm": _json_float(pack.insulation_ohm),
            "hvil_closed": pack.hvil_closed,
            "pack_stamp_s": _json_float(pack.stamp_s),
        }
        if 0 <= module_id < st.modules:
            frame.update(
                module_id=module_id,
                module_stamp_s=_json_float(st.stamp_s[module_id]),
                cell_voltages_v=[_json_float(v) for v in st.voltages_v[module_id].tolist()],
                temperatures_degc=[_json_float(t) for t in st.temperatures_degc[module_id].tolist()],
            )
        return frame


def _json_float(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def afe_flag_names(store: MeasurementStore, module_id: int) -> str:
    """The diagnostic flags behind PLAUS_AFE_DIAG, by their CellMeasurements names."""
    names = [name for bit, name in ((MODULE_AFE_SELF_TEST, "MODULE_AFE_SELF_TEST"),
                                    (MODULE_THERMISTOR_FAULT, "MODULE_THERMISTOR_FAULT"))
             if int(store.module_flags[module_id]) & bit]
    mismatch = np.flatnonzero(store.cell_flags[module_id] & CELL_ADC_MISMATCH)
    if mismatch.size:
        names.append(f"CELL_ADC_MISMATCH on cells {', '.join(map(str, mismatch.tolist()))}")
    return "; ".join(names) or "flags cleared"
