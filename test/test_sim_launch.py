"""The main job end to end: `bms launch sim` brings up every component, drives the simulated
pack, records a bag, persists state and shuts down in order with exit code 0."""

from __future__ import annotations

import shutil
import sys
from collections import defaultdict

from rclpy.serialization import deserialize_message

from bms_common.testing import NodeProcess, wait_for
from bms_interfaces.msg import CellStates, PackState, SafetyStatus
from bms_tools.bags.reading import open_raw

SIM_SECONDS = 90


def test_full_simulated_system(tmp_path):
    bag, state = tmp_path / "bag", tmp_path / "state"
    launcher = NodeProcess(
        [shutil.which("bms") or f"{sys.prefix}/bin/bms", "launch", "sim", "gui:=false", "speed:=10",
         f"duration:={SIM_SECONDS}", f"bag:={bag}", f"state_dir:={state}"],
        tmp_path / "launch.log")
    try:
        wait_for(lambda: not launcher.alive(), 150, "the simulation to run its duration and shut down")
    finally:
        launcher.stop()
    log = launcher.output()
    assert launcher.proc.returncode == 0, log[-3000:]
    assert "startup request DRIVE" in log
    assert (state / "safety_supervisor.json").is_file() and (state / "estimator.npz").is_file()

    counts: dict[str, int] = defaultdict(int)
    states, levels, pack_soc = set(), set(), []
    reader = open_raw(bag)
    try:
        for connection, _, raw in reader.messages():
            counts[connection.topic] += 1
            if connection.topic == "/bms/pack_state":
                states.add(deserialize_message(raw, PackState).operating_state)
            elif connection.topic == "/bms/safety_status":
                levels.add(deserialize_message(raw, SafetyStatus).level)
            elif connection.topic == "/bms/cell_states":
                pack_soc.append(deserialize_message(raw, CellStates).pack_soc)
    finally:
        reader.close()
    for topic in ("cell_measurements", "pack_measurement", "pack_state", "cell_states", "power_limits",
                  "current_limits", "safety_status", "contactor_state", "contactor_command", "components"):
        assert counts[f"/bms/{topic}"] > 0, f"/bms/{topic} missing from the bag: {dict(counts)}"
    assert PackState.STATE_DRIVE in states
    assert PackState.STATE_ERROR not in states
    assert SafetyStatus.LEVEL_FAULT not in levels and SafetyStatus.LEVEL_ALARM not in levels
    assert 0.3 < pack_soc[-1] < 0.9  # the demo pack starts near 60 % SOC
