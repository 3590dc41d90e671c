"""Malformed input for the consumers of the pack's data (MST-07, EST-05, SUP-07): the kit feeds
garbage on each input topic of the node it started, then checks that the node reported it (a log
line, or the supervisor's plausibility faults), is still running and still publishes valid
outputs. Never done to a live pack: the supervisor latches faults and opens the contactors."""

from __future__ import annotations

import math
import time

from rcl_interfaces.msg import Log

from bms_common import topics
from bms_common.stamps import to_stamp
from bms_interfaces.msg import (
    CellMeasurements,
    CellStates,
    ContactorState,
    PackMeasurement,
    PowerLimits,
    SafetyStatus,
)
from bms_tools.conformance.kinds import Context, Kind
from bms_tools.conformance.probe import Probe, wait_until
from bms_tools.conformance.report import Report

PERIOD_S = 0.1
SAMPLES = 12  # the NaN stream: long enough for the supervisor's NaN debounce (0.5 s)
FAR_S = 3600.0  # "far in the future/past"
REPORT_TIMEOUT_S = 5.0
RESUME_TIMEOUT_S = 5.0
WARN = 30  # rcl_interfaces/msg/Log level
FRAME = "conformance_garbage"
# What the node must report, per kind: topics named in a log line at WARN or above, or the
# supervisor's fault codes (docs/safety.md).
REPORTED_TOPICS = {"master": ("cell_measurements", "cell_states", "power_limits", "pack_measurement"),
                   "estimator": ("cell_measurements", "pack_measurement")}
SUPERVISOR_CODES = ("PLAUS_UNKNOWN_MODULE", "PLAUS_MALFORMED", "PLAUS_STAMP", "PLAUS_VOLTAGE_NAN", "PLAUS_CURRENT",
                    "PLAUS_PACK_STAMP")
NUMBER = {"master": "MST-07", "estimator": "EST-05", "safety": "SUP-07"}


def applies(kind: Kind) -> bool:
    return kind.name in NUMBER


class LogWatch:
    """The node's /rosout lines, subscribed before the node starts."""

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.lines = probe.collect(Log, "/rosout", topics.PER_MODULE)

    def since(self, fqn: str, count: int) -> list[Log]:
        logger = fqn.strip("/").replace("/", ".")
        return [a.msg for a in self.probe.snapshot(self.lines)[count:]
                if a.msg.name == logger or a.msg.name.startswith(logger + ".")]


class Garbage:
    """Publishers of every input a consumer of the pack's data may get, and the messages."""

    def __init__(self, probe: Probe, ctx: Context) -> None:
        self.probe, self.pack = probe, ctx.pack
        node = probe.node
        self.cells = node.create_publisher(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.PER_MODULE)
        self.packs = node.create_publisher(PackMeasurement, topics.PACK_MEASUREMENT.name, topics.RELIABLE)
        self.states = node.create_publisher(CellStates, topics.CELL_STATES.name, topics.RELIABLE)
        self.powers = node.create_publisher(PowerLimits, topics.POWER_LIMITS.name, topics.RELIABLE)
        self.safety = node.create_publisher(SafetyStatus, topics.SAFETY_STATUS.name, topics.LATCHED)
        self.contactors = node.create_publisher(ContactorState, topics.CONTACTOR_STATE.name, topics.LATCHED)

    def close(self) -> None:
        for publisher in (self.cells, self.packs, self.states, self.powers, self.safety, self.contactors):
            self.probe.node.destroy_publisher(publisher)

    def sample(self, sequence: int, module_id: int = 0, cells: int | None = None, ahead_s: float = 0.0
               ) -> CellMeasurements:
        """Module ``module_id``'s sample with one NaN voltage and one NaN temperature (failed
        measurements: usable, but not values)."""
        n = self.pack.cells_per_module if cells is None else cells
        voltages = [3.7] * n
        voltages[0] = math.nan
        temperatures = [25.0] * self.pack.sensors_per_module
        temperatures[0] = math.nan
        msg = CellMeasurements(module_id=module_id, sequence=sequence, cell_voltages_v=voltages,
                               temperatures_degc=temperatures, balancing=[False] * n)
        msg.header.stamp = to_stamp(self.probe.now_s() + ahead_s)
        msg.header.frame_id = FRAME
        return msg

    def feed(self) -> None:
        """About 1.2 s: module 0's NaN samples at 10 Hz with a rejected sample in between (unknown
        module, wrong array length, stamped an hour ahead, an hour behind), pack measurements
        with NaN current (one an hour ahead), cell_states and power_limits of the wrong shape or
        NaN, a SafetyStatus of an undefined level with NaN deratings, ContactorStates (all open)
        stamped an hour ahead and an hour behind."""
        n, modules = self.pack.cells_per_module, self.pack.modules
        rejected = {2: self.sample(100, module_id=modules), 4: self.sample(100, cells=n + 1),
                    6: self.sample(100, ahead_s=FAR_S), 8: self.sample(100, ahead_s=-FAR_S)}
        for i in range(SAMPLES):
            self.cells.publish(self.sample(i))
            if i in rejected:
                self.cells.publish(rejected[i])
            pack = PackMeasurement(sequence=i, current_a=math.nan, pack_voltage_v=math.nan,
                                   dc_link_voltage_v=math.nan, insulation_resistance_ohm=math.nan, hvil_closed=True)
            pack.header.stamp = to_stamp(self.probe.now_s() + (FAR_S if i == 5 else 0.0))
            pack.header.frame_id = FRAME
            self.packs.publish(pack)
            if i == 3:
                self._estimator_garbage()
            if i == 7:
                status = SafetyStatus(sequence=0, level=250, contactors_allowed=True, charge_derating=math.nan,
                                      discharge_derating=math.nan)
                status.header.stamp = to_stamp(self.probe.now_s())
                status.header.frame_id = FRAME
                self.safety.publish(status)
            if i in (9, 10):
                state = ContactorState()
                state.header.stamp = to_stamp(self.probe.now_s() + (FAR_S if i == 9 else -FAR_S))
                state.header.frame_id = FRAME
                self.contactors.publish(state)
            time.sleep(PERIOD_S)

    def _estimator_garbage(self) -> None:
        count = self.pack.cell_count - 1
        states = CellStates(module_count=self.pack.modules, cells_per_module=self.pack.cells_per_module,
                            soc=[0.5] * count, soc_std=[0.1] * count, capacity_ah=[1.0] * count,
                            capacity_std_ah=[0.1] * count, soh=[1.0] * count,
                            internal_resistance_ohm=[0.001] * count, pack_soc=0.5, pack_soh=1.0)
        states.header.stamp = to_stamp(self.probe.now_s())
        states.header.frame_id = FRAME
        self.states.publish(states)
        short = PowerLimits(horizons_s=[2.0, 10.0, 30.0], max_charge_current_a=[1.0, 1.0],
                            max_discharge_current_a=[1.0, 1.0], max_charge_power_w=[1.0, 1.0],
                            max_discharge_power_w=[1.0, 1.0])
        nan = PowerLimits(horizons_s=[2.0, 10.0, 30.0], max_charge_current_a=[math.nan] * 3,
                          max_discharge_current_a=[math.nan] * 3, max_charge_power_w=[math.nan] * 3,
                          max_discharge_power_w=[math.nan] * 3)
        for msg in (short, nan):
            msg.header.stamp = to_stamp(self.probe.now_s())
            msg.header.frame_id = FRAME
            self.powers.publish(msg)


def exercise(report: Report, probe: Probe, watch, logs: LogWatch, kind: Kind, fqn: str, ctx: Context,
             alive) -> None:
    """``alive``: whether the node's process still runs."""
    number = NUMBER[kind.name]
    garbage = Garbage(probe, ctx)
    try:
        wait_until(lambda: all(p.get_subscription_count() > 0 for p in (garbage.cells, garbage.packs)), 5.0)
        log_mark = len(probe.snapshot(logs.lines))
        status_mark = watch.mark()
        garbage.feed()
    finally:
        garbage.close()
    if kind.name == "safety":
        def codes() -> set[str]:
            return {f.code for a in watch.since(topics.SAFETY_STATUS.name, status_mark) for f in a.msg.faults}

        wait_until(lambda: set(SUPERVISOR_CODES) <= codes(), REPORT_TIMEOUT_S)
        missing = sorted(set(SUPERVISOR_CODES) - codes())
        report.record(number, not missing, f"faults never raised within {REPORT_TIMEOUT_S:g} s of the garbage: "
                                           f"{', '.join(missing)}")
    else:
        def unreported() -> list[str]:
            lines = [m.msg for m in logs.since(fqn, log_mark) if m.level >= WARN]
            return [t for t in REPORTED_TOPICS[kind.name] if not any(t in line for line in lines)]

        wait_until(lambda: not unreported(), REPORT_TIMEOUT_S)
        missing = unreported()
        report.record(number, not missing, f"no log line at WARN or above naming {', '.join(missing)} within "
                                           f"{REPORT_TIMEOUT_S:g} s of malformed messages on it")
    if not alive():
        report.record(number, False, "the node's process ended after the malformed input")
        return
    periodic = [out for out in kind.outputs if out.min_hz is not None]
    mark = watch.mark()
    resumed = wait_until(lambda: all(len(watch.since(out.topic.name, mark)) >= 2 for out in periodic),
                         RESUME_TIMEOUT_S)
    silent = [out.topic.absolute for out in periodic if len(watch.since(out.topic.name, mark)) < 2]
    report.record(number, bool(resumed), f"after the malformed input, no output on {', '.join(silent)} within "
                                         f"{RESUME_TIMEOUT_S:g} s")
    for out in periodic:
        if out.checker is None:
            continue
        for arrival in watch.since(out.topic.name, mark):
            problems = out.checker(arrival.msg, ctx)
            if problems:
                report.record(number, False, f"after the malformed input {out.topic.absolute}: {problems[0][1]} "
                                             f"({problems[0][0]})")
                break
    report.record(number, True)
