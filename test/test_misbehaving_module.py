"""No blind spots (issue 12): module 2 of the simulated pack is replaced by a misbehaving slave node
and every row of the issue's table ends in the documented fault with the contactors open.

sim_host leaves module 2 out (`external_modules:=2`); a helper measures the plant's cells of
module 2 through the project's AFE model (/sim/cell_truth) and publishes them with the chosen
defect, with a cell above its MSL inside the defective samples where the row says so. A sample
rejected for any reason is no sample, so the module goes stale as if silent: STALE_MODULE FAULT
within the stale timeout (on both clocks, docs/safety.md "Time") plus the debounce plus two
periods. Flags and millivolts are plausibility faults, and the estimator ignores the millivolts:
its SOC stays and nothing poisoned is persisted.

Detection times are printed (``-s`` shows them).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from rosgraph_msgs.msg import Clock

from bms_common import topics
from bms_common.pack_config import load_pack_config
from bms_common.plausibility import CELL_ADC_MISMATCH, MODULE_AFE_SELF_TEST
from bms_common.testing import RosHarness, params, start_node, wait_for
from bms_interfaces.msg import CellMeasurements, CellStates, ContactorState, PackState, SafetyStatus
from bms_slave.sim_afe import SimulatedAfe
from bms_slave.sim_config import load_sim_config
from bms_slave.sim_link import inputs_of

sys.path.insert(0, str(Path(__file__).parent))  # the safety matrix's helpers
from test_safety_system import (  # noqa: E402
    DELIVERY_WALL_S,
    LIMITS,
    SAMPLE_PERIOD_S,
    debounce,
    first_status_with,
    in_state,
    newest,
    recover_to_drive,
    stamp_s,
)
from test_swapped_module import Replayed  # noqa: E402

SPEED = 5.0
MODULE, CELLS, OVER_CELL, OVER_V = 2, 12, 5, 4.40
FAULT = SafetyStatus.LEVEL_FAULT
# A defect edits a sample (None: nothing is published), given the sim clock at publication.
Defect = Callable[[CellMeasurements, float], CellMeasurements | None]
DETECTIONS: dict[str, float] = {}  # row -> sim seconds from the first defective sample to the fault


class MisbehavingModule:
    """Module 2's slave node as a second supplier might get it wrong: the project's AFE model on
    the plant's cells, published with ``defect`` applied to each sample (None: well behaved)."""

    def __init__(self, ros: RosHarness) -> None:
        pack = load_pack_config("demo")
        self.source = Replayed()
        self.afe = SimulatedAfe.create(self.source, pack, load_sim_config(pack), MODULE)
        self.defect: Defect | None = None
        self.over_msl = False  # a cell above MSL inside the samples
        self.defect_since_s = np.nan  # sim time at which the first defective sample was published
        self.sequence = 0
        self.pub = ros.node.create_publisher(CellMeasurements, topics.CELL_MEASUREMENTS.name,
                                             topics.CELL_MEASUREMENTS.qos)
        ros.node.create_subscription(CellMeasurements, topics.SIM_CELL_TRUTH, self.on_truth, topics.PER_MODULE)
        self.clock_s = np.nan
        ros.node.create_subscription(Clock, "/clock", self.on_clock, qos_profile_sensor_data)

    def on_clock(self, msg: Clock) -> None:
        self.clock_s = stamp_s(msg.clock)

    def misbehave(self, defect: Defect, over_msl: bool) -> None:
        # In this order: the publishing thread never sends the cell above MSL without the defect.
        self.defect_since_s = np.nan
        self.defect = defect
        self.over_msl = over_msl

    def behave(self) -> None:
        self.over_msl = False
        self.defect = None

    def on_truth(self, truth: CellMeasurements) -> None:
        if truth.module_id != MODULE:
            return
        self.source.inputs = inputs_of(truth)
        reading = self.afe.read()
        volts = reading.cell_voltage_v.astype(np.float32)
        if self.over_msl:
            volts[OVER_CELL] = OVER_V
        msg = CellMeasurements(module_id=MODULE, sequence=self.sequence, cell_voltages_v=volts,
                               temperatures_degc=reading.temperature_degc.astype(np.float32),
                               balancing=[False] * CELLS)
        msg.header.stamp = truth.header.stamp
        msg.header.frame_id = f"module_{MODULE}"
        self.sequence += 1
        defect = self.defect
        if defect is not None:
            msg = defect(msg, self.clock_s)
            if np.isnan(self.defect_since_s):
                # Timed from when it is sent, as the matrix times from the injection's answer:
                # this process may handle the plant's sample late.
                self.defect_since_s = max(self.clock_s, stamp_s(truth.header.stamp))
        if msg is not None:
            self.pub.publish(msg)


def shifted(seconds: float) -> Defect:
    """Stamps ``seconds`` off the clock (the sim clock as this process sees it when it publishes)."""
    def shift(msg: CellMeasurements, clock_s: float) -> CellMeasurements:
        msg.header.stamp.sec, ns = divmod(round((clock_s + seconds) * 1e9), 1_000_000_000)
        msg.header.stamp.nanosec = ns
        return msg
    return shift


def eleven_cells(msg: CellMeasurements, clock_s: float) -> CellMeasurements:
    msg.cell_voltages_v = msg.cell_voltages_v[:-1]
    return msg


class StuckCounter:
    """The sequence counter stops: every sample after the first repeats its number."""

    def __init__(self) -> None:
        self.number: int | None = None

    def __call__(self, msg: CellMeasurements, clock_s: float) -> CellMeasurements:
        if self.number is None:
            self.number = msg.sequence - 1  # the last number sent before the fault
        msg.sequence = self.number
        return msg


def millivolts(msg: CellMeasurements, clock_s: float) -> CellMeasurements:
    msg.cell_voltages_v = (np.asarray(msg.cell_voltages_v) * 1000.0).astype(np.float32)
    return msg


def self_test_failed(msg: CellMeasurements, clock_s: float) -> CellMeasurements:
    msg.module_flags = MODULE_AFE_SELF_TEST
    return msg


def adc_mismatch(msg: CellMeasurements, clock_s: float) -> CellMeasurements:
    flags = np.zeros(CELLS, dtype=np.uint8)
    flags[3] = CELL_ADC_MISMATCH
    msg.cell_flags = flags.tobytes()
    return msg


@dataclass
class Row:
    id: str
    defect: Callable[[], Defect]
    code: str
    stale: bool  # rejected samples: the fault comes through staleness
    over_msl: bool = True


ROWS = [
    Row("eleven_cells", lambda: eleven_cells, "STALE_MODULE", stale=True),
    Row("stuck_sequence", StuckCounter, "STALE_MODULE", stale=True),
    # The 0.5 s ahead and 2 s behind, in wall seconds: at speed S the tolerances are up to
    # S times longer on the sim clock, as the stale timeout is (docs/interfaces.md, "Using a
    # sample"); src/bms_safety/test/test_blind_spots.py rejects them at 1x exactly.
    Row("stamps_ahead", lambda: shifted(0.5 * SPEED), "STALE_MODULE", stale=True),
    Row("stamps_behind", lambda: shifted(-2.0 * SPEED), "STALE_MODULE", stale=True),
    Row("silent", lambda: lambda msg, clock_s: None, "STALE_MODULE", stale=True),
    Row("self_test_flag", lambda: self_test_failed, "PLAUS_AFE_DIAG", stale=False, over_msl=False),
    Row("adc_mismatch_flag", lambda: adc_mismatch, "PLAUS_AFE_DIAG", stale=False, over_msl=False),
    Row("millivolts", lambda: millivolts, "PLAUS_VOLTAGE_RANGE", stale=False, over_msl=False),
]


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("misbehaving")
    state = tmp / "state"
    ros = RosHarness("misbehaving_test")
    ros.module = MisbehavingModule(ros)
    ros.state = state
    procs = {
        "sim": start_node(tmp, "bms_slave", "sim_host", *params(speed=SPEED, profile="constant",
                                                                   profile_current_a=-10.0, external_modules="2")),
        "supervisor": start_node(tmp, "bms_safety", "supervisor",
                                 *params(autostart=True, use_sim_time=True, state_dir=str(state))),
        "contactor": start_node(tmp, "bms_master", "contactor", *params(autostart=True, use_sim_time=True)),
        "master": start_node(tmp, "bms_master", "master", *params(use_sim_time=True, startup_request="DRIVE")),
        "estimator": start_node(tmp, "bms_estimation", "estimator",
                                *params(use_sim_time=True, state_dir=str(state), cell_states_period_s=0.5,
                                        save_period_s=2.0)),
        "manager": start_node(tmp, "bms_common", "lifecycle_manager", *params(pack="demo"), "-p",
                              "node_names:=[module_0, module_1, module_3, current_sensor, master, estimator]"),
    }
    ros.procs = procs
    try:
        ros.collect(PackState, topics.PACK_STATE.name, topics.RELIABLE)
        ros.collect(ContactorState, topics.CONTACTOR_STATE.name, topics.LATCHED)
        ros.collect(SafetyStatus, topics.SAFETY_STATUS.name, topics.LATCHED)
        ros.collect(CellStates, topics.CELL_STATES.name, topics.RELIABLE)
        ros.collect(Clock, "/clock", qos_profile_sensor_data)
        wait_for(lambda: ros.snapshot(topics.PACK_STATE.name) and ros.snapshot(topics.CELL_STATES.name), 90,
                 "simulation, master, estimator and supervisor running")
        in_state(ros, PackState.STATE_DRIVE, 60)
        yield ros
    finally:
        ros.close()
        for proc in procs.values():
            proc.stop()
        if DETECTIONS:
            print("\ndetection times (sim s):", ", ".join(f"{k} {v:.3f}" for k, v in DETECTIONS.items()))


def module_2_soc(ros: RosHarness, since_s: float = -np.inf) -> list[float]:
    """Mean SOC of module 2's cells in each CellStates stamped from ``since_s``."""
    return [float(np.mean(np.asarray(s.soc)[MODULE * CELLS:(MODULE + 1) * CELLS]))
            for s in ros.snapshot(topics.CELL_STATES.name) if stamp_s(s.header.stamp) >= since_s]


def master_sees_module_2(ros: RosHarness, status: int, since_s: float) -> bool:
    return any(stamp_s(p.header.stamp) >= since_s and p.module_status[MODULE] == status
               for p in ros.snapshot(topics.PACK_STATE.name))


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_misbehaving_module_ends_in_its_fault_with_contactors_open(system, row: Row):
    recover_to_drive(system)
    module = system.module
    soc_before = module_2_soc(system)[-1]
    module.misbehave(row.defect(), row.over_msl)
    try:
        status, fault = first_status_with(system, stamp_s(newest(system, "/clock").clock), row.code, FAULT,
                                          MODULE, None, 60)
        t_defect = wait_for(lambda: not np.isnan(module.defect_since_s) and module.defect_since_s, 10,
                            "the first defective sample")
        detection = stamp_s(status.header.stamp) - t_defect
        DETECTIONS[row.id] = detection
        bound = debounce(row.code, FAULT) + 2 * SAMPLE_PERIOD_S + DELIVERY_WALL_S * SPEED
        if row.stale:
            # Stale means old on the sim clock *and* the wall clock (docs/safety.md, "Time").
            bound += max(LIMITS.timeouts.module_stale_s, LIMITS.timeouts.module_stale_s * SPEED)
            # The master's module presence follows the same rule.
            wait_for(lambda: master_sees_module_2(system, 2, t_defect), 20, "the master to mark module 2 STALE")
        assert 0.0 <= detection <= bound, f"{row.id}: {row.code} after {detection:.3f} s sim, bound {bound:.3f} s"
        assert fault.latched and fault.description
        if row.over_msl:  # the cell above MSL sits only in rejected samples: never evaluated
            assert not any(f.code == "CELL_OV" and f.module_id == MODULE for f in status.faults), status.faults
        wait_for(lambda: (c := newest(system, topics.CONTACTOR_STATE.name)) and not c.main_plus_closed
                 and not c.main_minus_closed, 30, "main contactors open (safe state)")
        in_state(system, PackState.STATE_ERROR)
        if row.id == "millivolts":
            # The master and the estimator ignore the millivolts as unmeasured.
            since = t_defect + 1.0
            wait_for(lambda: len(module_2_soc(system, since)) >= 4, 30, "CellStates during the millivolts")
            assert max(module_2_soc(system, since)) < soc_before + 0.02, (soc_before, module_2_soc(system, since))
            maxima = [p.max_cell_voltage_v for p in system.snapshot(topics.PACK_STATE.name)[-10:]]
            assert all(v < 5.0 for v in maxima), maxima
    finally:
        module.behave()
    recover_to_drive(system)
    if row.id == "millivolts":
        # The estimate did not learn from the millivolts and was not persisted with them.
        since = stamp_s(newest(system, "/clock").clock)
        wait_for(lambda: len(module_2_soc(system, since)) >= 2, 30, "CellStates after the episode")
        after = module_2_soc(system)[-1]
        assert abs(after - soc_before) < 0.02, (soc_before, after)
        saved = system.state / "estimator.npz"
        wait_for(saved.exists, 30, "the estimator's saved state")
        with np.load(saved) as data:
            assert np.all(data["soc"][MODULE * CELLS:(MODULE + 1) * CELLS] < soc_before + 0.02), data["soc"]
