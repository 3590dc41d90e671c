"""Estimator node: every cell of the pack in one batched filter step per sample period.

Subscriptions only store: each module's samples in a short queue (voltages, temperatures, stamp)
and a short history of the pack current. Every ``period_s`` the node steps all cells at once:
modules with a new sample get a measurement update with the current interpolated to *their*
sampling instant (AFEs do not sample together with the current sensor); modules without one
(missing, silent, garbage) get a prediction step only, so they never corrupt the other cells'
estimates. Several samples of a module waiting (a stall) make as many steps, none is skipped.

Outputs: CellStates every ``cell_states_period_s``, PowerLimits every step. SOC, learned capacity
and resistance are saved atomically to ``<state_dir>/estimator.npz`` every ``save_period_s`` and
on deactivate/shutdown, and restored on configure (ARCHITECTURE.md, persistence).

Parameters: pack (demo), state_dir ("" = $BMS_STATE_DIR or ./state, "none" = no persistence),
backend ("" = numpy below 100 000 cells, else the fastest available), period_s (0.1),
cell_states_period_s (1.0), save_period_s (10.0), current_wait_s (1.0), first_soc_wait_s (2.0),
initial_soc (unset; one fraction or one per cell), initial_soc_std (0.05), tuning.<field> (any
ekf.FilterTuning field not derived from the pack), autostart (false). A wrong value fails
configure with a message that names it (docs/estimation.md, "Node").
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor

from bms_common import topics
from bms_common.atomic_file import replace_atomically
from bms_common.component_info import Identity
from bms_common.lifecycle import (
    BmsLifecycleNode,
    LifecycleState,
    TransitionCallbackReturn,
    declare,
    run_main,
    take_pending,
)
from bms_common.pack_config import ConfigError, load_pack_config
from bms_common.plausibility import SampleGate, StampGate, physical_ranges
from bms_common.stamps import to_seconds, to_stamp
from bms_common.timer_watchdog import TimerWatchdog
from bms_estimation.current_alignment import CurrentHistory, samples_to_use
from bms_estimation.estimator import Estimator, tunable_fields
from bms_estimation.sop import SopLimits
from bms_interfaces.msg import CellMeasurements, CellStates, ComponentInfo, PackMeasurement, PowerLimits
from bms_safety.limits import LimitTable, load_limits

STATE_FILE = "estimator.npz"
MAX_QUEUED_SAMPLES = 20  # per module: 2 s at 10 Hz
FIRST_SOC_HISTORY_S = 1.0  # current seen before a cell's first voltage is used
FUTURE_TOLERANCE_S = 1.0  # a sample stamped further ahead of the node's clock is dropped
BACKENDS = ("numpy", "compiled")  # the names ekf.select_backend takes


def positive(node, name: str, default: float, zero_ok: bool = False) -> float:
    """A finite float parameter above zero (or at least zero); else a ValueError that names it."""
    value = float(declare(node, name, default))
    if not math.isfinite(value) or value < 0.0 or (value == 0.0 and not zero_ok):
        raise ValueError(f"{node.get_fully_qualified_name()}: parameter {name} must be a finite number "
                         f"{'>= 0' if zero_ok else '> 0'}, got {value!r}")
    return value


def sop_limits_from_table(table: LimitTable) -> SopLimits:
    """Operate the SOP inside the warning (MOL) levels of voltage and current, and inside the
    fault (MSL) temperature windows; crossing a warning is the supervisor's business."""
    t = table.thresholds
    mol = {key: limits.levels[0].threshold for key, limits in t.items()}
    msl = {key: limits.levels[2].threshold for key, limits in t.items()}
    return SopLimits(
        cell_voltage_min_v=mol["cell_voltage_low"], cell_voltage_max_v=mol["cell_voltage_high"],
        charge_current_max_a=mol["current_charge_high"], discharge_current_max_a=mol["current_discharge_high"],
        charge_temperature_degc=(msl["temperature_charge_low"], msl["temperature_charge_high"]),
        discharge_temperature_degc=(msl["temperature_discharge_low"], msl["temperature_discharge_high"]),
    )


class EstimatorNode(BmsLifecycleNode):
    def __init__(self, **kwargs) -> None:
        super().__init__("estimator", Identity(kind=ComponentInfo.KIND_ESTIMATOR,
                                               implementation="bms_estimation.estimator_node"), **kwargs)
        # A wrong value is a configuration error that configure reports (with autostart too),
        # never a traceback: the node stays up and says what to fix.
        self.config_error = ""
        try:
            self.read_parameters()
        except ValueError as exc:
            self.config_error = str(exc)
        self.active = False

    def read_parameters(self) -> None:
        name = self.get_fully_qualified_name()
        self.pack_name = str(declare(self, "pack", "demo"))
        state_dir = str(declare(self, "state_dir", ""))
        self.state_path = None if state_dir == "none" else \
            Path(state_dir or os.environ.get("BMS_STATE_DIR", "state")).expanduser() / STATE_FILE
        self.backend = str(declare(self, "backend", "")) or None
        if self.backend not in (None, *BACKENDS):
            raise ValueError(f"{name}: parameter backend must be one of {', '.join(BACKENDS)} or empty "
                             f"(automatic), got {self.backend!r}")
        self.period_s = positive(self, "period_s", 0.1)
        # 0: at every step (bms replay-check wants a CellStates next to each recorded one).
        self.cell_states_period_s = positive(self, "cell_states_period_s", 1.0, zero_ok=True)
        self.save_period_s = positive(self, "save_period_s", 10.0, zero_ok=True)
        self.current_wait_s = positive(self, "current_wait_s", 1.0, zero_ok=True)
        self.first_soc_wait_s = positive(self, "first_soc_wait_s", 2.0, zero_ok=True)
        # The current seen before a first voltage, within the wait (and the current history).
        self.first_soc_history_s = min(FIRST_SOC_HISTORY_S, self.first_soc_wait_s / 2)
        # A known starting SOC (a researcher's run on recorded data): one for every cell or one
        # per cell; it replaces a restored SOC (capacity and resistance are still restored).
        value = self.declare_parameter("initial_soc", None, ParameterDescriptor(dynamic_typing=True)).value
        soc = np.atleast_1d(np.asarray([] if value is None or value == "" else value))
        if soc.size and (soc.dtype.kind not in "if" or not np.all((soc >= 0.0) & (soc <= 1.0))):
            raise ValueError(f"{name}: parameter initial_soc must be a fraction 0..1 or a list of them "
                             f"(one per cell), got {value!r}")
        self.initial_soc = soc.astype(float) if soc.size else None
        self.initial_soc_std = positive(self, "initial_soc_std", 0.05)
        # Filter tuning (ekf.FilterTuning): parameters tuning.<field>, set ones override the default.
        self.tuning_overrides = {}
        for field in tunable_fields():
            value = self.declare_parameter(f"tuning.{field}", None, ParameterDescriptor(dynamic_typing=True)).value
            if value is not None:
                self.tuning_overrides[field] = value

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self.config_error:
            self.get_logger().error(f"configuration error: {self.config_error}")
            return TransitionCallbackReturn.FAILURE
        try:
            self.pack = load_pack_config(self.pack_name)
            self.sop_limits = sop_limits_from_table(load_limits(self.pack.limits))
            self.ranges = physical_ranges(self.pack)
        except ConfigError as exc:
            self.get_logger().error(str(exc))
            return TransitionCallbackReturn.FAILURE
        pack = self.pack
        try:
            self.estimator = Estimator(pack, backend=self.backend, tuning_overrides=self.tuning_overrides)
        except ValueError as exc:
            self.get_logger().error(f"configuration error: {self.get_fully_qualified_name()}: {exc}")
            return TransitionCallbackReturn.FAILURE
        if self.initial_soc is not None and self.initial_soc.size not in (1, pack.cell_count):
            self.get_logger().error(
                f"configuration error: {self.get_fully_qualified_name()}: parameter initial_soc has "
                f"{self.initial_soc.size} values; give one, or one per cell ({pack.cell_count}, module-major)")
            return TransitionCallbackReturn.FAILURE
        self.restore()
        if self.initial_soc is not None:
            self.estimator.set_soc(self.initial_soc, self.initial_soc_std)
            self.get_logger().info(f"initial SOC from the parameter (std {self.initial_soc_std:g})")
        cells, modules = pack.cells_per_module, pack.modules
        # Every sample is used, in order, even when several of a module arrive between two ticks
        # (a stalled process, a fast simulation): (stamp, voltages, temperature per cell).
        self.queued: list[deque[tuple[float, np.ndarray, np.ndarray]]] = [
            deque(maxlen=MAX_QUEUED_SAMPLES) for _ in range(modules)]
        self.temperature_degc = np.full((modules, cells), np.nan)
        self.gate = SampleGate(modules, cells, pack.sensors_per_module)
        self.pack_gate = StampGate()
        self.sensor_of_cell = np.asarray(pack.sensor_of_cell())
        self.current = CurrentHistory(horizon_s=max(2.0, 5 * self.period_s))
        self.last_step_s = math.nan
        self.first_current_s = math.inf
        self.last_states_s = self.last_save_s = -math.inf
        self.states_pub = self.create_lifecycle_publisher(CellStates, topics.CELL_STATES.name, topics.RELIABLE)
        self.power_pub = self.create_lifecycle_publisher(PowerLimits, topics.POWER_LIMITS.name, topics.RELIABLE)
        self.cells_sub = self.create_subscription(
            CellMeasurements, topics.CELL_MEASUREMENTS.name, self.on_cells, topics.CELL_MEASUREMENTS.qos)
        self.pack_sub = self.create_subscription(
            PackMeasurement, topics.PACK_MEASUREMENT.name, self.on_pack, topics.RELIABLE)
        self.get_logger().info(
            f"{pack.cell_count} cells ({pack.modules} x {pack.cells_per_module} {pack.chemistry}), "
            f"backend {self.estimator.backend_name}")
        return TransitionCallbackReturn.SUCCESS

    def restore(self) -> None:
        if self.state_path is None or not self.state_path.exists():
            return
        try:
            with np.load(self.state_path) as saved:
                self.estimator.load_state(saved)
            self.get_logger().info(f"restored SOC, capacity and resistance from {self.state_path}")
        except (ValueError, OSError, KeyError) as exc:
            self.get_logger().error(f"{self.state_path}: not restored ({exc}); starting from measurements")

    def save(self) -> None:
        if self.state_path is None:
            return
        try:
            replace_atomically(self.state_path, lambda out: np.savez(out, **self.estimator.state_dict()))
        except OSError as exc:
            self.get_logger().error(f"cannot save estimator state to {self.state_path}: {exc}",
                                    throttle_duration_sec=30.0)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = True
        self.timer = self.create_timer(self.period_s, self.tick)
        self.watchdog = TimerWatchdog(self, self.period_s, "the estimator's step (CellStates, PowerLimits)")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.active = False
        self.destroy_timer(self.timer)
        self.save()
        return super().on_deactivate(state)

    def before_exit(self) -> None:
        if hasattr(self, "estimator"):
            self.save()

    # -- inputs -------------------------------------------------------------------------------
    def on_cells(self, msg: CellMeasurements) -> None:
        if self.active:
            self.watchdog.input_arrived()
        # The contract's rule (bms_common.plausibility): a rejected sample is no sample, so its
        # module's cells are not measured (they only predict) until a usable one comes.
        stamp_s = to_seconds(msg.header.stamp)
        rejected = self.gate.check(msg.module_id, stamp_s, len(msg.cell_voltages_v), len(msg.temperatures_degc),
                                   len(msg.cell_flags), msg.sequence, self.now_s(), time.monotonic())
        if rejected is not None:
            self.get_logger().error(f"cell_measurements from {msg.header.frame_id!r} dropped: {rejected[1]}",
                                    throttle_duration_sec=5.0)
            return
        m = msg.module_id
        voltages = np.asarray(msg.cell_voltages_v, dtype=float)
        temperatures = np.asarray(msg.temperatures_degc, dtype=float)
        # Values outside the physical ranges (millivolts for volts) are not measurements: those
        # cells only predict, so nothing is learned from them and nothing of them is persisted.
        bad_v, bad_t = self.ranges.bad_voltages(voltages), self.ranges.bad_temperatures(temperatures)
        if bad_v.any() or bad_t.any():
            self.get_logger().error(
                f"cell_measurements from {msg.header.frame_id!r}: {int(bad_v.sum())} cell voltages outside "
                f"{self.ranges.cell_voltage_min_v:g}..{self.ranges.cell_voltage_max_v:g} V and {int(bad_t.sum())} "
                "temperatures outside the physical range ignored as unmeasured", throttle_duration_sec=5.0)
            voltages[bad_v], temperatures[bad_t] = np.nan, np.nan
        if len(self.queued[m]) == MAX_QUEUED_SAMPLES:
            self.get_logger().warning(f"module {m}: {MAX_QUEUED_SAMPLES} samples waiting, oldest dropped "
                                      "(the estimator is falling behind)", throttle_duration_sec=5.0)
        # NaN readings stay NaN: those cells only predict.
        self.queued[m].append((stamp_s, voltages, temperatures[self.sensor_of_cell]))

    def on_pack(self, msg: PackMeasurement) -> None:
        # The contract's stamp rule (docs/interfaces.md): a current stamped an hour ahead would
        # end the history at the next good one (stamps going backwards read as a clock reset).
        stamp_s = to_seconds(msg.header.stamp)
        problem = self.pack_gate.check(stamp_s, self.now_s(), time.monotonic())
        if problem is not None:
            self.get_logger().error(f"pack_measurement from {msg.header.frame_id!r}: {problem}: dropped",
                                    throttle_duration_sec=5.0)
            return
        if math.isfinite(msg.current_a):
            self.current.add(stamp_s, msg.current_a)

    # -- the batched step ---------------------------------------------------------------------
    def tick(self) -> None:
        self.watchdog.ticked()
        # Everything received up to now counts, however the executor interleaved it with the tick.
        take_pending(self.pack_sub, self.on_pack)
        take_pending(self.cells_sub, self.on_cells)
        # The step's time is the latest point of the node's period grid: a tick that runs late
        # (a busy process) computes what it would have on time, with the samples due by then.
        now_s = math.floor(self.now_s() / self.period_s + 1e-6) * self.period_s
        if math.isnan(self.last_step_s):
            self.last_step_s = self.first_tick_s = now_s
            return
        dt_s = now_s - self.last_step_s
        if dt_s <= 0:
            return
        self.last_step_s = now_s
        cells = self.pack.cells_per_module
        rounds = self.usable_rounds(now_s)
        # One filter step per round (normally one). After a stall (ticks skipped, samples queued)
        # each earlier round stands for one period, as the ticks it replaces would have, and the
        # last one takes the rest; a burst shorter than that shares the time out evenly.
        n = len(rounds)
        steps_s = [self.period_s] * (n - 1) + [dt_s - (n - 1) * self.period_s]
        if steps_s[-1] <= 0:
            steps_s = [dt_s / n] * n
        for (use, stamps_s, voltage_v, temperature_degc), step_s in zip(rounds, steps_s, strict=True):
            # Modules without a sample in this round predict with the newest current.
            at_s = np.where(use, stamps_s, now_s)
            self.warn_without_current(use, stamps_s)
            current_a = np.repeat(self.current.at(at_s, max_extrapolation_s=2 * self.period_s), cells)
            voltage_v = voltage_v.ravel()
            if self.estimator.awaiting_first_soc:
                self.hold_first_voltages(voltage_v, stamps_s)
            self.estimator.step(voltage_v, current_a, step_s, temperature_degc.ravel())
        stamp = to_stamp(now_s)
        if self.estimator.awaiting_first_soc and now_s - self.first_tick_s < self.first_soc_wait_s:
            # Some cell's SOC is still the prior, not an estimate: no CellStates, and power
            # limits of zero (nothing is known to be safe yet), published so that listeners
            # see the estimator alive.
            self.publish_power_limits(stamp, known=False)
            return
        self.publish_power_limits(stamp)
        if now_s - self.last_states_s >= self.cell_states_period_s:
            self.publish_cell_states(stamp)
            self.last_states_s = now_s
        if now_s - self.last_save_s >= self.save_period_s:
            self.save()
            self.last_save_s = now_s

    def hold_first_voltages(self, voltage_v: np.ndarray, stamps_s: np.ndarray) -> None:
        """A cell's first SOC waits for a voltage stamped ``first_soc_history_s`` after the first
        current sample: the steps before it integrate the RC voltages over the current seen, so a
        load that begins meanwhile starts them from rest instead of from a guess
        (docs/estimation.md, "Start-up under load"). Its earlier voltages are left out."""
        early = ~(stamps_s - self.first_current_s >= self.first_soc_history_s)
        hold = np.repeat(early, self.pack.cells_per_module) & self.estimator.needs_first_soc
        voltage_v[hold] = np.nan

    def warn_without_current(self, use: np.ndarray, stamps_s: np.ndarray) -> None:
        """Say so when a module's sample is stepped without a current sample from its time: one
        older than the current history (``CurrentHistory.horizon_s``: samples queued that long, a
        burst of replayed data) or newer than its newest sample (the current came late or not at
        all). It then gets the nearest current, held for up to two periods, or no update."""
        oldest_s, newest_s = self.current.oldest_s(), self.current.newest_s()
        if not math.isfinite(self.first_current_s):
            self.first_current_s = oldest_s
        # Samples from before the first current sample (start-up) are not worth a warning.
        outside = use & (stamps_s >= self.first_current_s) & ((stamps_s < oldest_s) | (stamps_s > newest_s))
        if outside.any():
            modules = np.flatnonzero(outside)
            self.get_logger().warning(
                f"modules {modules.tolist()}: samples stamped {np.round(stamps_s[modules], 3).tolist()} s stepped "
                f"without a current sample from their time (history {oldest_s:.3f}..{newest_s:.3f} s): nearest "
                "current held for up to two periods, else no update. Feed faster than real time only in "
                "lockstep (docs/estimation.md, 'Running the estimator alone')", throttle_duration_sec=5.0)

    def usable_rounds(self, now_s: float) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """The queued samples to use now, as rounds of at most one sample per module, oldest first:
        (modules used, their stamps, voltages with NaN elsewhere, temperatures). At least one
        round, which may use no module (a prediction step).

        A module's sample is used once a current sample at or after its stamp has arrived, so
        that the current at its instant is interpolated, never guessed from before a step: cell
        and pack measurements come on separate topics in no fixed order. A sample whose current
        does not come within ``current_wait_s`` is used anyway: with the newest current if that
        is at most two periods older, else without an update (the current is unknown)."""
        modules, cells = self.pack.modules, self.pack.cells_per_module
        newest_current_s = self.current.newest_s()
        usable = []
        for m, queue in enumerate(self.queued):
            # A sample stamped ahead of the node's clock (an unsynchronised board, a clock reset)
            # would never become usable and block the ones behind it.
            while queue and queue[0][0] > now_s + FUTURE_TOLERANCE_S:
                self.get_logger().error(f"module {m}: sample stamped {queue[0][0]:.3f} s, ahead of the "
                                        f"clock ({now_s:.3f} s): dropped", throttle_duration_sec=5.0)
                queue.popleft()
            stamps_s = np.array([sample[0] for sample in queue])
            ok = samples_to_use(np.ones(len(queue), dtype=bool), stamps_s, newest_current_s, now_s,
                                self.current_wait_s, min_age_s=self.period_s / 2)
            # Stamps increase along a queue, so the usable samples are its first ones.
            usable.append(int(np.argmin(ok)) if not ok.all() else len(queue))
        count = max(max(usable, default=0), 1)
        rounds = []
        for r in range(count):
            # Oldest first, round r takes each module's r-th usable sample: after a stall the
            # modules whose newest sample has not arrived yet are the ones with fewer, so their
            # samples line up with the others' of the same instant. (A module that lost a sample
            # is then a round early: its voltage meets the filter up to a period early.)
            use = np.array([r < n for n in usable])
            stamps_s, voltage_v = np.full(modules, np.nan), np.full((modules, cells), np.nan)
            for m in np.flatnonzero(use):
                stamps_s[m], voltage_v[m], self.temperature_degc[m] = self.queued[m].popleft()
            rounds.append((use, stamps_s, voltage_v, self.temperature_degc.copy()))
        return rounds

    def publish_cell_states(self, stamp) -> None:
        e = self.estimator
        msg = CellStates(module_count=self.pack.modules, cells_per_module=self.pack.cells_per_module)
        msg.header.stamp = stamp
        msg.header.frame_id = self.get_name()
        msg.soc = e.soc.astype(np.float32)
        msg.soc_std = e.soc_std.astype(np.float32)
        msg.capacity_ah = e.capacity_ah.astype(np.float32)
        msg.capacity_std_ah = e.capacity_std_ah.astype(np.float32)
        msg.soh = e.soh.astype(np.float32)
        msg.internal_resistance_ohm = e.resistance_ohm.astype(np.float32)
        msg.pack_soc = float(e.pack_soc())
        msg.pack_soh = float(e.pack_soh())
        self.states_pub.publish(msg)

    def publish_power_limits(self, stamp, known: bool = True) -> None:
        limits = self.estimator.power_limits(self.sop_limits)
        def value(array) -> np.ndarray:  # zero, not NaN * 0, while nothing is known
            array = np.asarray(array, dtype=np.float32)
            return array if known else np.zeros_like(array)

        msg = PowerLimits()
        msg.header.stamp = stamp
        msg.header.frame_id = self.get_name()
        msg.horizons_s = np.asarray(limits.horizons_s, dtype=np.float32)
        msg.max_charge_current_a = value(limits.max_charge_current_a)
        msg.max_discharge_current_a = value(limits.max_discharge_current_a)
        msg.max_charge_power_w = value(limits.max_charge_power_w)
        msg.max_discharge_power_w = value(limits.max_discharge_power_w)
        self.power_pub.publish(msg)


def build(stop: threading.Event, cli_args: list[str] | None = None) -> EstimatorNode:
    """The node, for a composed launch (bms_tools.container): ``cli_args`` are its own
    ``--ros-args``."""
    return EstimatorNode(cli_args=cli_args)


def main(args: list[str] | None = None) -> int:
    return run_main(EstimatorNode, args)


if __name__ == "__main__":
    sys.exit(main())
