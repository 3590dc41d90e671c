"""The estimator node with the simulated pack: every cell estimated in one batch, missing and NaN
data isolated to their cells, state persisted across a restart."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bms_common import topics
from bms_common.testing import RosHarness, params, start_node, wait_for
from bms_interfaces.msg import CellStates, PowerLimits
from bms_interfaces.srv import InjectFault

CELLS = 48


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("estimator")
    state = tmp / "state"
    sim = start_node(tmp, "bms_slave", "sim_host", *params(speed=5.0, profile="rest"))
    estimator = start_node(tmp, "bms_estimation", "estimator",
                           *params(use_sim_time=True, state_dir=str(state), cell_states_period_s=0.5))
    manager = start_node(tmp, "bms_common", "lifecycle_manager", *params(pack="demo"),
                         "-p", "node_names:=[module_*, current_sensor, estimator]")
    ros = RosHarness("estimator_test")
    ros.procs, ros.tmp, ros.state = {"sim": sim, "estimator": estimator, "manager": manager}, tmp, state
    try:
        ros.collect(CellStates, topics.CELL_STATES.name, topics.RELIABLE)
        ros.collect(PowerLimits, topics.POWER_LIMITS.name, topics.RELIABLE)
        wait_for(lambda: len(ros.snapshot(topics.CELL_STATES.name)) >= 3, 90, "CellStates from the estimator")
        yield ros
    finally:
        ros.close()
        for proc in (ros.procs["manager"], ros.procs["estimator"], ros.procs["sim"]):
            proc.stop()


def latest_states(ros) -> CellStates:
    return ros.snapshot(topics.CELL_STATES.name)[-1]


def states_after(ros, count: int) -> CellStates:
    start = len(ros.snapshot(topics.CELL_STATES.name))
    wait_for(lambda: len(ros.snapshot(topics.CELL_STATES.name)) >= start + count, 60, f"{count} more CellStates")
    return latest_states(ros)


def test_every_cell_is_estimated(system):
    states = states_after(system, 2)
    soc = np.asarray(states.soc)
    assert (states.module_count, states.cells_per_module, len(soc)) == (4, 12, CELLS)
    # The demo pack starts at 60 % SOC with a small cell-to-cell spread; at rest the voltage tells.
    assert np.all(np.abs(soc - 0.6) < 0.05), soc
    assert np.all(np.asarray(states.soc_std) > 0) and np.all(np.asarray(states.capacity_ah) > 40)
    assert 0.5 < states.pack_soc < 0.7 and 0.8 < states.pack_soh <= 1.2
    limits = system.snapshot(topics.POWER_LIMITS.name)[-1]
    assert list(limits.horizons_s) == [2.0, 10.0, 30.0]
    assert all(v > 0 for v in limits.max_discharge_current_a) and all(v > 0 for v in limits.max_charge_power_w)


def inject(ros, node: str, fault: str, module_id: int, cell: int = -1, clear: bool = False) -> None:
    request = InjectFault.Request(fault=fault, module_id=module_id, cell=cell, magnitude=math.nan, clear=clear)
    assert ros.call(InjectFault, f"/bms/{node}/inject_fault", request).success


def test_missing_module_and_nan_cell_do_not_corrupt_the_others(system):
    before = np.asarray(states_after(system, 1).soc)
    inject(system, "module_1", "module_silence", 1)
    inject(system, "module_2", "nan_reading", 2, 4)
    try:
        during = np.asarray(states_after(system, 6).soc)
    finally:
        inject(system, "module_1", "module_silence", 1, clear=True)
        inject(system, "module_2", "nan_reading", 2, 4, clear=True)
    assert np.all(np.isfinite(during))
    # At rest nothing should move: neither the silent module, the NaN cell, nor anyone else.
    assert np.max(np.abs(during - before)) < 0.01
    after = np.asarray(states_after(system, 2).soc)
    assert np.max(np.abs(after - before)) < 0.01


def test_state_survives_a_restart(system):
    manager = system.procs["manager"]
    assert manager.stop() == 0  # deactivates the estimator, which saves its state
    saved = system.state / "estimator.npz"
    wait_for(saved.exists, 10, "estimator.npz")
    with np.load(saved) as data:
        assert data["soc"].shape == (CELLS,)
    system.procs["estimator"].stop()
    estimator = start_node(system.tmp, "bms_estimation", "estimator",
                           *params(use_sim_time=True, state_dir=str(system.state)), log="estimator2")
    system.procs["estimator"] = estimator
    system.procs["manager"] = start_node(system.tmp, "bms_common", "lifecycle_manager", *params(pack="demo"),
                                         "-p", "node_names:=[estimator]", log="manager2")
    wait_for(lambda: "restored SOC, capacity and resistance" in estimator.output(), 60, "the restore message")
