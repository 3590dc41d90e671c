"""A module moved out of sim_host (docs/launch.md, "Swapping a module"): a `board` process on the
simulated AFE backend measures and balances the plant's cells over /sim, the system drives and
the run replays; a left-out module whose replacement never starts holds the system, named, with
the contactors open."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from rosgraph_msgs.msg import Clock
from std_msgs.msg import String

from bms_common import topics
from bms_common.pack_config import load_pack_config
from bms_common.stamps import to_seconds
from bms_common.testing import NodeProcess, RosHarness, params, start_node, wait_for
from bms_interfaces.msg import BalancingCommand, CellMeasurements, ContactorCommand, PackState, SafetyStatus
from bms_slave.plant import AfeInputs
from bms_slave.sim_afe import SimulatedAfe
from bms_slave.sim_config import load_sim_config
from bms_slave.sim_link import inputs_of

MOVED = 2
# The AFE model's error bound (docs/simulation.md): channel offset 1.2 mV, noise 0.25 mV rms,
# 0.1 mV steps.
AFE_ERROR_V = 0.0025


def bms() -> str:
    return shutil.which("bms") or f"{sys.prefix}/bin/bms"


class Replayed:
    """Feeds recorded AFE inputs to a fresh SimulatedAfe: what sim_host's AFE would have read."""

    inputs: AfeInputs

    def afe_inputs(self, module: int) -> AfeInputs:
        return self.inputs

    def set_module_balancing(self, module: int, mask: np.ndarray) -> None:
        raise AssertionError("not used")


def test_a_module_on_a_board_of_its_own_drives_measures_the_plant_and_replays(ros: RosHarness, tmp_path: Path):
    truth = ros.collect(CellMeasurements, topics.SIM_CELL_TRUTH, topics.PER_MODULE)
    measured = ros.collect(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.CELL_MEASUREMENTS.qos)
    states = ros.collect(PackState, topics.PACK_STATE.name, topics.PACK_STATE.qos)
    launcher = NodeProcess([bms(), "launch", "sim", "gui:=false", "speed:=3", "duration:=20", f"external_modules:={MOVED}",
                            "external_board:=true", f"bag:={tmp_path / 'bag'}", f"state_dir:={tmp_path / 'state'}"],
                           tmp_path / "launch.log")
    try:
        wait_for(lambda: not launcher.alive(), 150, "the run with module 2 on its own board to end")
    finally:
        launcher.stop()
    log = launcher.output()
    assert launcher.proc.returncode == 0, log[-3000:]
    assert "modules 2: simulated AFEs on the plant's cells" in log and "modules 2 hosted elsewhere" in log
    assert PackState.STATE_DRIVE in {s.operating_state for s in list(states)}

    truth_2 = [m for m in list(truth) if m.module_id == MOVED]
    assert {m.module_id for m in list(truth)} == {MOVED}  # the plant sends only what it does not host
    # This test's reader may match the plant's writer a moment after its first samples (discovery
    # under load, CI once lost sequences 1..6): from there on nothing may be missing.
    sequences = [m.sequence for m in truth_2]
    first = sequences[0] if sequences else 0
    assert sequences == list(range(first, first + len(sequences))) and 1 <= first <= 50 and len(truth_2) > 100
    by_stamp = {to_seconds(m.header.stamp): m for m in list(measured) if m.module_id == MOVED}
    # What sim_host's own AFE would have published: the same seeded model on the same inputs.
    pack = load_pack_config("demo")
    source = Replayed()
    replica = SimulatedAfe.create(source, pack, load_sim_config(pack), MOVED)
    source.inputs = inputs_of(truth_2[0])
    for _ in range(first - 1):
        replica.read()  # samples before this reader matched: each draws the same amount of noise
    compared = []
    for index, message in enumerate(truth_2):
        source.inputs = inputs_of(message)
        expected = replica.read()
        sample = by_stamp.get(to_seconds(message.header.stamp))
        if sample is None:
            continue  # before this reader matched the board, or sampled after the board was told to stop
        compared.append(index)
        np.testing.assert_array_equal(np.asarray(sample.cell_voltages_v), expected.cell_voltage_v.astype(np.float32))
        np.testing.assert_array_equal(np.asarray(sample.temperatures_degc),
                                      expected.temperature_degc.astype(np.float32))
        assert np.abs(np.asarray(sample.cell_voltages_v) - np.asarray(message.cell_voltages_v)).max() < AFE_ERROR_V
    # Every sample between the first and the last one seen was published, with the expected values.
    assert len(compared) > 100 and compared == list(range(compared[0], compared[-1] + 1)), \
        f"{len(compared)} of {len(truth_2)} samples of module 2 published, not one block: {compared}"

    check = subprocess.run([bms(), "replay-check", str(tmp_path / "bag")], capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
    assert check.returncode == 0 and "verdict: PASS" in check.stdout, check.stdout + check.stderr


SMALL_PACK = """chemistry: NMC
modules: 2
cells_per_module: 4
nominal_capacity_ah: 2.0
temperature_sensors: [[0, 1], [2, 3]]
balancing: {bleed_resistance_ohm: 10.0}
simulation: {seed: 5, initial_soc: 0.5, initial_soc_spread: 0.0}
"""


def test_an_outside_board_bleeds_the_plant_cell(tmp_path: Path):
    # A small pack with a strong bleed (0.37 A into 2 Ah cells), module 1 on a board of its own.
    pack = tmp_path / "small.yaml"
    pack.write_text(SMALL_PACK)
    sim = start_node(tmp_path, "bms_slave", "sim_host",
                     *params(pack=str(pack), speed=20.0, profile="rest", external_modules="1", wait_for_manager=True))
    board = start_node(tmp_path, "bms_slave", "board",
                       # The fail-safe (switches open after 5 s simulated without a command, 0.25 s of
                       # wall time at 20x) is tested elsewhere; here a stalled test must not trip it.
                       *params(pack=str(pack), modules="1", afe_backend="sim", use_sim_time=True,
                               balancing_timeout_s=1000.0))
    manager = start_node(tmp_path, "bms_common", "lifecycle_manager", *params(pack=str(pack)),
                         "-p", "node_names:=[module_*, current_sensor]")
    ros = RosHarness("swap_balancing_test")
    try:
        truth = ros.collect(CellMeasurements, topics.SIM_CELL_TRUTH, topics.PER_MODULE)
        measured = ros.collect(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.CELL_MEASUREMENTS.qos)
        pub = ros.node.create_publisher(BalancingCommand, topics.BALANCING_COMMAND.name,
                                        topics.BALANCING_COMMAND.qos)
        wait_for(lambda: len(truth) >= 10, 60, "/sim/cell_truth of module 1")
        # Repeated as a master does: the slave opens its switches when commands stop.
        command = BalancingCommand(module_id=1, balance=[True, False, False, False])
        ros.node.create_timer(0.05, lambda: pub.publish(command))
        start = wait_for(lambda: [m for m in list(truth) if m.balancing[0]], 30,
                         "the plant to close cell 0's bleed switch of module 1")[0]
        start_s = to_seconds(start.header.stamp)
        wait_for(lambda: to_seconds(truth[-1].header.stamp) > start_s + 120, 120, "120 s of simulated bleeding")

        def mean_truth(first_s: float, last_s: float) -> np.ndarray:
            return np.mean([m.cell_voltages_v for m in list(truth) if first_s <= to_seconds(m.header.stamp) < last_s],
                           axis=0)

        change = mean_truth(start_s + 100, start_s + 120) - mean_truth(start_s - 5, start_s)
        assert change[0] < -0.005, change  # the plant's cell 0 lost charge through the bleed resistor
        assert np.all(np.abs(change[1:] - change[1:].mean()) < 0.001), change
        reported = [m for m in list(measured) if m.module_id == 1][-10:]
        assert reported and all(m.balancing == [True, False, False, False] for m in reported)
    finally:
        ros.close()
        manager.stop()
        board.stop()
        sim.stop()


def test_a_left_out_module_that_never_starts_is_named_and_the_contactors_stay_open(ros: RosHarness,
                                                                                    tmp_path: Path):
    coils = ros.collect(ContactorCommand, topics.SIM_CONTACTOR_COILS, topics.RELIABLE)
    commands = ros.collect(ContactorCommand, topics.CONTACTOR_COMMAND.name, topics.CONTACTOR_COMMAND.qos)
    statuses = ros.collect(SafetyStatus, topics.SAFETY_STATUS.name, topics.SAFETY_STATUS.qos)
    launcher = NodeProcess([bms(), "launch", "sim", "gui:=false", "speed:=3", f"external_modules:={MOVED}", "record:=false",
                            f"state_dir:={tmp_path / 'state'}"], tmp_path / "launch.log")
    try:
        # The manager gives up after service_wait_timeout_s (30 s) and the launch ends with it.
        wait_for(lambda: not launcher.alive(), 120, "the lifecycle manager to give up on module_2 and end the launch")
    finally:
        launcher.stop()
    log = launcher.output()
    assert launcher.proc.returncode != 0, log[-3000:]
    lines = log.splitlines()

    def said(who: str, level: str) -> bool:
        return any(f"[{level}]" in x and f"[bms.{who}]" in x and "waiting for /bms/module_2" in x for x in lines)

    # Said every few seconds, as information first and as a warning once the wait is long.
    for who in ("lifecycle_manager", "plant"):
        assert said(who, "INFO") and said(who, "WARN"), f"{who} did not name /bms/module_2:\n{log[-3000:]}"
    assert "failed: /bms/module_2: lifecycle services not available after 30 s" in log
    assert "simulated time starts" not in log
    closed = [m for m in list(coils) + list(commands) if m.main_plus or m.main_minus or m.precharge]
    assert not closed, closed[:3]
    assert not any(s.contactors_allowed for s in list(statuses))  # the supervisor never allowed closing


def test_waiting_for_the_manager_does_not_depend_on_waiting_for_hosted_nodes(tmp_path: Path):
    # wait_for_nodes off (nothing activates the hosted nodes here), wait_for_manager on: simulated
    # time waits for the manager alone, says so, and starts when the manager reports active.
    sim = start_node(tmp_path, "bms_slave", "sim_host", *params(speed=3.0, wait_for_nodes=False, wait_for_manager=True))
    ros = RosHarness("manager_wait_test")
    try:
        clock = ros.collect(Clock, "/clock", 10)
        wait_for(lambda: "waiting for the lifecycle manager (/bms/lifecycle_manager/status: nothing yet" in sim.output(),
                 60, "the plant to say that it waits for the lifecycle manager")
        assert not list(clock)
        status = ros.node.create_publisher(String, "lifecycle_manager/status", topics.LATCHED)
        status.publish(String(data="active"))
        wait_for(lambda: len(clock) >= 5, 60, "simulated time to start once the manager reports active")
    finally:
        ros.close()
        sim.stop()
