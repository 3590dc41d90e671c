"""The safety evaluator: every check of the fault model, vectorized over all cells.

Feed it measurements (``update_*``) and call :meth:`SafetyEvaluator.evaluate` with the
supervisor's clock time; it never reads a clock itself and never raises on bad input. Time-outs
compare arrival times with ``now_s`` on the same clock (sim time in simulation), so a simulation
sped up or paused moves both together; see docs/safety.md, "Time", for why that keeps stale
detection free of false positives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from bms_common.pack_config import PackConfig
from bms_common.plausibility import (
    CELL_ADC_MISMATCH,
    CELL_OPEN_WIRE,
    CELL_OUT_OF_RANGE,
    MODULE_AFE_COMM_ERROR,
    MODULE_AFE_SELF_TEST,
    MODULE_THERMISTOR_FAULT,
)

from .checks import DebouncedCheck, LevelSpec
from .codes import FAULT_CODES, Level
from .inputs import MeasurementStore
from .limits import LimitTable, load_limits
from .report import FaultReporter
from .results import ActiveFault, EvaluationResult, ResetResult

# Keeps a capped age strictly below its timeout despite float rounding (see count_as_received).
_AGE_MARGIN_S = 1e-6
MAX_REASONS_SHOWN = 5  # a reset answer names this many refused faults; `refused` lists them all


class SafetyEvaluator:
    def __init__(self, limits: LimitTable, modules: int, cells_per_module: int, sensors_per_module: int,
                 sensor_cells: Sequence[Sequence[int]] | None = None, start_s: float | None = None) -> None:
        self.limits = limits
        self.modules, self.cells, self.sensors = modules, cells_per_module, sensors_per_module
        self.store = MeasurementStore(modules, cells_per_module, sensors_per_module,
                                      continuity_gap_s=limits.timeouts.module_stale_s)
        # Freshness of inputs never received counts from here (the first evaluate if not given).
        self.start_s = start_s
        self._last_commanded: tuple[bool, ...] = ()
        self._wall_s: float | None = None  # evaluate()'s wall clock, for the contactor check
        self._fresh = np.zeros(modules, dtype=bool)  # modules whose data counts at this evaluation
        slot_counts = {"cell": modules * cells_per_module, "sensor": modules * sensors_per_module,
                       "module": modules, "pack": 1}
        self.checks: dict[str, DebouncedCheck] = {}
        self._hysteresis: dict[str, np.ndarray] = {}
        for key, table in limits.thresholds.items():
            specs = [LevelSpec(lv.level, lv.threshold, lv.debounce_s, lv.charge_derating, lv.discharge_derating)
                     for lv in table.levels]
            self.checks[table.code] = DebouncedCheck(table.code, slot_counts[FAULT_CODES[table.code].slot], specs)
            self._hysteresis[key] = np.array([lv.hysteresis for lv in table.levels])[:, None]
        event_limits = self._event_limits()
        for code, ev in limits.events.items():
            spec = LevelSpec(ev.level, event_limits.get(code, math.nan), ev.debounce_s, ev.charge_derating,
                             ev.discharge_derating)
            self.checks[code] = DebouncedCheck(code, slot_counts[FAULT_CODES[code].slot], [spec])
        self.checks["STATE_UNREADABLE"] = DebouncedCheck(
            "STATE_UNREADABLE", 1, [LevelSpec(Level.FAULT, math.nan, 0.0, 0.0, 0.0)])
        self.reporter = FaultReporter(limits, self.store, sensor_cells)

    @classmethod
    def from_pack(cls, pack: PackConfig, limits: LimitTable | None = None,
                  start_s: float | None = None) -> SafetyEvaluator:
        """Evaluator for a pack configuration, with the limit table it names unless one is given."""
        table = limits if limits is not None else load_limits(pack.limits)
        return cls(table, pack.modules, pack.cells_per_module, pack.sensors_per_module,
                   pack.temperature_sensors, start_s)

    def _event_limits(self) -> dict[str, float]:
        p, t = self.limits.plausibility, self.limits.timeouts
        return {
            "PLAUS_VOLTAGE_STUCK": p.voltage_stuck_time_s,
            "PLAUS_TEMP_STUCK": p.temperature_stuck_time_s,
            "PLAUS_CURRENT": p.current_max_abs_a,
            "PLAUS_MALFORMED": p.input_fault_hold_s,
            "PLAUS_SEQUENCE": p.input_fault_hold_s,
            "PLAUS_UNKNOWN_MODULE": p.input_fault_hold_s,
            "PLAUS_STAMP": p.input_fault_hold_s,
            "PLAUS_PACK_STAMP": p.input_fault_hold_s,
            "STALE_MODULE": t.module_stale_s,
            "STALE_CURRENT_SENSOR": t.current_sensor_stale_s,
            "ESTIMATOR_LOSS": t.estimator_loss_s,
        }

    # --- inputs -------------------------------------------------------------------------------
    def update_module(self, module_id: int, stamp_s: float, voltages_v: Sequence[float] | np.ndarray,
                      temperatures_degc: Sequence[float] | np.ndarray, sequence: int,
                      received_s: float | None = None, cell_flags: Sequence[int] | bytes = b"",
                      module_flags: int = 0, received_wall_s: float | None = None) -> bool:
        """One CellMeasurements sample; False when rejected (it then shows as a PLAUS_* fault)."""
        return self.store.update_module(module_id, stamp_s, voltages_v, temperatures_degc, sequence, received_s,
                                        cell_flags, module_flags, received_wall_s)

    def update_pack(self, stamp_s: float, current_a: float, pack_voltage_v: float, dc_link_voltage_v: float,
                    insulation_ohm: float, hvil_closed: bool, received_s: float | None = None,
                    received_wall_s: float | None = None) -> bool:
        """False when the sample's stamp is unusable (inputs.MeasurementStore.update_pack)."""
        return self.store.update_pack(stamp_s, current_a, pack_voltage_v, dc_link_voltage_v, insulation_ohm,
                                      hvil_closed, received_s, received_wall_s)

    def update_contactors(self, stamp_s: float, commanded: Sequence[bool], closed: Sequence[bool],
                          reported_mismatch: bool = False, received_s: float | None = None) -> None:
        """Contactor coil commands and auxiliary-contact feedback, same order in both."""
        self.store.update_contactors(stamp_s, commanded, closed, reported_mismatch, received_s)

    def update_estimator(self, stamp_s: float, received_s: float | None = None) -> None:
        """Any estimator output counts as its heartbeat."""
        self.store.update_estimator(stamp_s, received_s)

    # --- evaluation ---------------------------------------------------------------------------
    def evaluate(self, now_s: float, wall_s: float | None = None) -> EvaluationResult:
        """``wall_s`` (monotonic, from a node): the contactor mismatch debounce must also pass on
        the wall clock (a feedback round trip that a loaded machine slows down is not a weld)."""
        self._wall_s = wall_s
        if self.start_s is None:
            self.start_s = now_s
        self.store.clock_s = now_s
        newly: dict[str, np.ndarray] = {}
        self._cell_checks(now_s, newly)
        self._pack_checks(now_s, newly)
        self._input_checks(now_s, newly)
        faults = self.reporter.faults(self.checks)
        raised_keys = self.reporter.raised_keys(self.checks, newly)
        level = max((f.level for f in faults), default=Level.OK)
        charge, discharge = 1.0, 1.0
        for check in self.checks.values():
            c, d = check.deratings()
            charge, discharge = min(charge, c), min(discharge, d)
        if level >= Level.FAULT:
            charge = discharge = 0.0
        waiting_for = self.missing_inputs()
        return EvaluationResult(
            now_s=now_s,
            level=Level(level),
            faults=faults,
            contactors_allowed=level <= Level.WARNING and not waiting_for,
            waiting_for=waiting_for,
            stay_closed_allowed=level <= Level.ALARM,
            charge_derating=charge,
            discharge_derating=discharge,
            raised=tuple(f for f in faults if f.key in raised_keys),
        )

    def count_as_received(self, now_s: float, modules: np.ndarray, pack: bool, estimator: bool) -> None:
        """Inputs known to be fresh by another clock count as received at ``now_s``.

        The node calls this with what arrived within the stale timeouts on the *wall* clock. A
        simulation running faster than real time magnifies every delivery delay (a reliable
        retransmission, a starved process) by its speed factor; only data that is old on both
        clocks is stale. On hardware both clocks advance together and this changes nothing.
        Inputs never heard from stay missing.

        A wall-fresh input's sim age is capped just below its timeout, not reset to zero: the
        sim clock's own timeout then runs concurrently with the wall clock's, so stale comes
        after the longer of the two (not their sum, which doubled the timeout on hardware).
        """
        st, t = self.store, self.limits.timeouts
        heard = np.asarray(modules, dtype=bool) & ~np.isnan(st.received_s)
        st.received_s[heard] = np.maximum(st.received_s[heard], now_s - t.module_stale_s + _AGE_MARGIN_S)
        if pack and not math.isnan(st.pack.received_s):
            st.pack.received_s = max(st.pack.received_s, now_s - t.current_sensor_stale_s + _AGE_MARGIN_S)
        if estimator and not math.isnan(st.estimator_received_s):
            st.estimator_received_s = max(st.estimator_received_s, now_s - t.estimator_loss_s + _AGE_MARGIN_S)

    def missing_inputs(self) -> tuple[str, ...]:
        """Inputs never heard from since start: closing waits for them all."""
        missing = [f"module {m}" for m in np.flatnonzero(np.isnan(self.store.received_s))]
        if math.isnan(self.store.pack.received_s):
            missing.append("pack measurement")
        return tuple(missing)

    def _threshold(self, now_s: float, key: str, values: np.ndarray | float, newly: dict[str, np.ndarray],
                   window_active: bool = True) -> None:
        table = self.limits.thresholds[key]
        check = self.checks[table.code]
        v = np.atleast_1d(np.asarray(values, dtype=np.float64))[None, :]
        threshold, hysteresis = check.limits[:, None], self._hysteresis[key]
        if table.direction == "high":
            raised, cleared = v > threshold, v < threshold - hysteresis
        else:
            raised, cleared = v < threshold, v > threshold + hysteresis
        if window_active:
            newly[table.code] = check.step(now_s, v[0], raised, cleared)
        else:
            # Outside its window a check is inactive; for reset its cause is gone once the value
            # is back inside the window, whatever the current does.
            newly[table.code] = check.step(now_s, v[0], False, True, cause_gone=cleared)

    def _event(self, now_s: float, code: str, condition: np.ndarray | bool, values: np.ndarray | float,
               newly: dict[str, np.ndarray], known: np.ndarray | bool = True) -> None:
        """A check without threshold: raised while ``condition``; unknown slots keep their state."""
        cleared = ~np.asarray(condition) & known
        newly[code] = self.checks[code].step(now_s, np.asarray(values, dtype=np.float64), condition, cleared)

    def _contactor_check(self, now_s: float, newly: dict[str, np.ndarray]) -> None:
        """Each coil's feedback must follow its command within the debounce, however quickly
        commands follow one another (a quick STANDBY-then-CHARGE disagrees for longer than the
        debounce, legitimately). A coil whose command just changed starts its debounce afresh;
        the others keep counting, so switching one coil cannot hide another that is welded."""
        c = self.store.contactors
        previous, self._last_commanded = self._last_commanded, c.commanded
        if len(c.commanded) != len(c.closed) or len(previous) != len(c.commanded):
            # First sample, or a malformed one: the flag as it is.
            fresh_command, settled = False, c.mismatch
        else:
            changed = [now != before for now, before in zip(c.commanded, previous, strict=True)]
            fresh_command = any(changed)
            settled = any(cmd != fb and not ch for cmd, fb, ch in zip(c.commanded, c.closed, changed, strict=True))
            # The contactor node's own mismatch flag counts while no command is settling.
            settled = settled or (c.mismatch and not fresh_command)
        # A restart is not "the cause is gone": a latched mismatch cannot be reset in that tick.
        known = not (fresh_command and c.mismatch)
        cleared = ~np.asarray(settled) & known
        newly["CONTACTOR_MISMATCH"] = self.checks["CONTACTOR_MISMATCH"].step(
            now_s, np.asarray(float(c.mismatch)), settled, cleared, wall_s=self._wall_s)

    def _cell_checks(self, now_s: float, newly: dict[str, np.ndarray]) -> None:
        st, p = self.store, self.limits.plausibility
        has = ~np.isnan(st.stamp_s)
        # Stale data is never evaluated as current: a stale module's cells and sensors are unknown
        # (NaN: its checks keep their state, and a latch cannot be reset) until it is fresh again.
        age_s = np.where(has, now_s - st.received_s, 0.0)
        stale = age_s > self.limits.timeouts.module_stale_s
        fresh = self._fresh = has & ~stale
        fresh_cell, fresh_sensor = np.repeat(fresh, self.cells), np.repeat(fresh, self.sensors)
        volts = np.where(fresh[:, None], st.voltages_v, np.nan).ravel()
        temps = np.where(fresh[:, None], st.temperatures_degc, np.nan).ravel()
        self._threshold(now_s, "cell_voltage_high", volts, newly)
        self._threshold(now_s, "cell_voltage_low", volts, newly)
        spread = float(np.nanmax(volts) - np.nanmin(volts)) if np.isfinite(volts).any() else math.nan
        self._threshold(now_s, "cell_voltage_spread_high", spread, newly)
        # Unknown current (NaN) selects the charge window: it lies inside the discharge window.
        charging = not st.pack.current_a <= p.charge_window_current_a
        for window, active in (("charge", charging), ("discharge", not charging)):
            self._threshold(now_s, f"temperature_{window}_high", temps, newly, active)
            self._threshold(now_s, f"temperature_{window}_low", temps, newly, active)

        finite_v, finite_t = np.isfinite(volts), np.isfinite(temps)
        cell_flags = st.cell_flags.ravel()
        self._event(now_s, "PLAUS_VOLTAGE_NAN", fresh_cell & ~finite_v, volts, newly, known=fresh_cell)
        out_of_range = (finite_v & ((volts < p.cell_voltage_min_v) | (volts > p.cell_voltage_max_v))) \
            | (fresh_cell & (cell_flags & CELL_OUT_OF_RANGE).astype(bool))
        self._event(now_s, "PLAUS_VOLTAGE_RANGE", out_of_range, volts, newly, known=fresh_cell)
        self._event(now_s, "PLAUS_TEMP_NAN", fresh_sensor & ~finite_t, temps, newly, known=fresh_sensor)
        self._event(now_s, "PLAUS_TEMP_RANGE",
                    finite_t & ((temps < p.temperature_min_degc) | (temps > p.temperature_max_degc)), temps, newly,
                    known=fresh_sensor)
        # Unchanged time runs on the module's own stamps: a module that stops sending is stale, not stuck.
        unchanged_v = (st.stamp_s[:, None] - st.voltage_changed_s).ravel()
        unchanged_t = (st.stamp_s[:, None] - st.temperature_changed_s).ravel()
        self._event(now_s, "PLAUS_VOLTAGE_STUCK", finite_v & (unchanged_v > p.voltage_stuck_time_s),
                    unchanged_v, newly, known=fresh_cell)
        self._event(now_s, "PLAUS_TEMP_STUCK", finite_t & (unchanged_t > p.temperature_stuck_time_s),
                    unchanged_t, newly, known=fresh_sensor)
        # AFE diagnostic flags of the latest sample (docs/interfaces.md, "AFE flags").
        module_flags = st.module_flags
        self._event(now_s, "PLAUS_OPEN_WIRE", fresh_cell & (cell_flags & CELL_OPEN_WIRE).astype(bool),
                    cell_flags.astype(np.float64), newly, known=fresh_cell)
        diagnosed = ((module_flags & (MODULE_AFE_SELF_TEST | MODULE_THERMISTOR_FAULT)) != 0) \
            | (st.cell_flags & CELL_ADC_MISMATCH).any(axis=1)
        self._event(now_s, "PLAUS_AFE_DIAG", fresh & diagnosed, module_flags.astype(np.float64), newly, known=fresh)
        self._event(now_s, "PLAUS_AFE_COMM", fresh & ((module_flags & MODULE_AFE_COMM_ERROR) != 0),
                    module_flags.astype(np.float64), newly, known=fresh)

        # A module never heard from is not stale but missing: it keeps contactors_allowed false
        # (see evaluate) without raising a latched FAULT at every bring-up.
        self._event(now_s, "STALE_MODULE", stale, age_s, newly)

    def _pack_checks(self, now_s: float, newly: dict[str, np.ndarray]) -> None:
        st, p, t = self.store, self.limits.plausibility, self.limits.timeouts
        pack = st.pack
        has_pack = not math.isnan(pack.received_s)
        current = pack.current_a
        self._threshold(now_s, "current_charge_high", current, newly)
        self._threshold(now_s, "current_discharge_high", -current, newly)
        self._threshold(now_s, "insulation_low", pack.insulation_ohm, newly)
        self._event(now_s, "HVIL_OPEN", has_pack and not pack.hvil_closed, 0.0 if has_pack else math.nan, newly)
        self._event(now_s, "PLAUS_CURRENT",
                    has_pack and not abs(current) <= p.current_max_abs_a, current, newly)

        cell_sum_v = float(np.where(self._fresh[:, None], st.voltages_v, np.nan).sum())
        mismatch_v = abs(pack.pack_voltage_v - cell_sum_v)
        comparable = math.isfinite(mismatch_v) and not self.checks["STALE_MODULE"].active.any()
        tolerance_v = p.pack_voltage_tolerance_v + p.pack_voltage_tolerance_fraction * abs(cell_sum_v)
        self.reporter.pack_voltage_tolerance_v = tolerance_v
        self._event(now_s, "PLAUS_PACK_VOLTAGE", comparable and mismatch_v > tolerance_v, mismatch_v, newly,
                    known=comparable)

        pack_age_s = now_s - pack.received_s if has_pack else 0.0  # never heard: missing, see evaluate
        self._event(now_s, "STALE_CURRENT_SENSOR", pack_age_s > t.current_sensor_stale_s, pack_age_s, newly)
        est_rx = st.estimator_received_s
        est_age_s = now_s - (self.start_s if math.isnan(est_rx) else est_rx)
        self._event(now_s, "ESTIMATOR_LOSS", est_age_s > t.estimator_loss_s, est_age_s, newly)
        self._contactor_check(now_s, newly)
        self._event(now_s, "STATE_UNREADABLE", False, math.nan, newly)

    def _input_checks(self, now_s: float, newly: dict[str, np.ndarray]) -> None:
        st, hold_s = self.store, self.limits.plausibility.input_fault_hold_s
        for code, at_s in (("PLAUS_MALFORMED", st.malformed_at_s), ("PLAUS_SEQUENCE", st.bad_sequence_at_s),
                           ("PLAUS_STAMP", st.bad_stamp_at_s)):
            age_s = now_s - at_s
            self._event(now_s, code, age_s <= hold_s, age_s, newly)
        unknown_age_s = now_s - st.unknown_module.at_s
        self._event(now_s, "PLAUS_UNKNOWN_MODULE", unknown_age_s <= hold_s, st.unknown_module.value, newly)
        self._event(now_s, "PLAUS_PACK_STAMP", now_s - st.bad_pack_stamp.at_s <= hold_s, st.bad_pack_stamp.value,
                    newly)

    # --- latches ------------------------------------------------------------------------------
    def reset(self, now_s: float) -> ResetResult:
        """Clear latched faults whose cause was gone at the latest evaluate(); refuse the rest."""
        cleared: list[str] = []
        refused: list[str] = []
        reasons: list[str] = []
        before = {f.key: f for f in self.reporter.faults(self.checks) if f.latched}
        for code, check in self.checks.items():
            gone, kept = check.reset()
            cleared += [self.reporter.key_of(code, int(s)) for s in gone]
            for s in kept:
                key = self.reporter.key_of(code, int(s))
                refused.append(key)
                reasons.append(f"{key}: cause persists ({before[key].description})")
        if refused:
            shown = "; ".join(reasons[:MAX_REASONS_SHOWN])
            more = f"; and {len(reasons) - MAX_REASONS_SHOWN} more" if len(reasons) > MAX_REASONS_SHOWN else ""
            reason = f"at t={now_s:.3f} s, {len(refused)} fault(s) stay latched: {shown}{more}"
        else:
            reason = f"at t={now_s:.3f} s, cleared {len(cleared)} latched fault(s)"
        return ResetResult(not refused, reason, tuple(cleared), tuple(refused))

    def latched_faults(self) -> list[ActiveFault]:
        return [f for f in self.reporter.faults(self.checks) if f.latched]

    def restore_latched(self, code: str, module_id: int, cell: int, since_s: float) -> bool:
        """Re-latch a fault persisted before a restart. False if it no longer fits this pack."""
        check = self.checks.get(code)
        slot = self.reporter.slot_of(code, module_id, cell) if check is not None else None
        return check is not None and slot is not None and check.restore_latch(slot, since_s)

    def snapshot(self, module_id: int) -> dict[str, Any]:
        """Freeze frame of the measurements behind a fault (JSON-ready; NaN becomes None)."""
        return self.reporter.snapshot(module_id)
