"""No false positives: one simulated hour of driving, rest and charging raises nothing above WARNING.

The 16 x 12 NMC pack at 20x real time (the simulation's target speed for it), real supervisor,
contactor node and master over real DDS, with the shipped limit tables. The plant's profile is
switched drive -> rest -> cccv through its set_parameters service; charging goes through STANDBY
and a CHARGE request as an operator would. Every SafetyStatus received and the supervisor's fault
log (`bms faults`) must stay at or below WARNING (MOL).
"""

from __future__ import annotations

import subprocess
import time

import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters

from bms_common import topics
from bms_common.testing import RosHarness, params, start_node, wait_for
from bms_interfaces.msg import PackState, SafetyStatus
from bms_interfaces.srv import RequestState

PACK = "nmc_16x12"
SPEED = 20.0
DURATION_S = 3600.0
# (sim second the phase starts, plant profile, operating state to request)
SCHEDULE = [(0.0, "drive", PackState.STATE_DRIVE), (1500.0, "rest", PackState.STATE_DRIVE),
            (2100.0, "cccv", PackState.STATE_CHARGE)]


def stamp_s(stamp) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def set_profile(ros: RosHarness, profile: str) -> None:
    request = SetParameters.Request(parameters=[ParameterMsg(
        name="profile", value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=profile))])
    assert ros.call(SetParameters, "/bms/plant/set_parameters", request).results[0].successful


def go_to(ros: RosHarness, state: int) -> None:
    def newest_state() -> int:
        return ros.snapshot(topics.PACK_STATE.name)[-1].operating_state

    if newest_state() == state:
        return
    request = RequestState.Request
    if newest_state() != PackState.STATE_STANDBY:
        assert ros.call(RequestState, "/bms/request_state", request(state=PackState.STATE_STANDBY)).accepted
        wait_for(lambda: newest_state() == PackState.STATE_STANDBY, 30, "STANDBY")
    # The master refuses while the contactors are still opening (delayed under current): ask again.
    wait_for(lambda: ros.call(RequestState, "/bms/request_state", request(state=state)).accepted, 60,
             f"request for state {state} accepted")
    wait_for(lambda: newest_state() == state, 60, f"operating state {state}")


@pytest.mark.timeout(900)
# First run (16x achieved): STALE_MODULE FAULT on modules 4 and 5 together at t=1184 s sim, 1.4 s
# sim old, i.e. nothing from them reached the supervisor for over 1 s of WALL time while the
# other 14 modules and /clock kept arriving: a delivery gap, root cause not yet found.
def test_one_simulated_hour_raises_nothing_above_warning(tmp_path):
    state_dir = tmp_path / "state"
    procs = [
        start_node(tmp_path, "bms_slave", "sim_host",
                   *params(pack=PACK, speed=SPEED, duration=DURATION_S, profile="drive")),
        start_node(tmp_path, "bms_safety", "supervisor",
                   *params(pack=PACK, autostart=True, use_sim_time=True, state_dir=str(state_dir))),
        start_node(tmp_path, "bms_master", "contactor", *params(autostart=True, use_sim_time=True)),
        start_node(tmp_path, "bms_master", "master", *params(pack=PACK, use_sim_time=True, startup_request="DRIVE")),
        start_node(tmp_path, "bms_common", "lifecycle_manager", *params(pack=PACK),
                   "-p", "node_names:=[module_*, current_sensor, master]"),
    ]
    sim = procs[0]
    ros = RosHarness("soak_test")
    try:
        statuses = ros.collect(SafetyStatus, topics.SAFETY_STATUS.name, topics.LATCHED)
        ros.collect(PackState, topics.PACK_STATE.name, topics.RELIABLE)

        def sim_now() -> float:
            with ros.lock:
                return stamp_s(statuses[-1].header.stamp) if statuses else 0.0

        wait_for(lambda: sim_now() > 0.5 and ros.snapshot(topics.PACK_STATE.name), 120, "the system running")
        wall_start, sim_start = time.monotonic(), sim_now()
        for start_s, profile, state in SCHEDULE:
            wait_for(lambda s=start_s: sim_now() >= s, DURATION_S / SPEED * 3, f"sim time {start_s} s")
            set_profile(ros, profile)
            go_to(ros, state)
        wait_for(lambda: not sim.alive(), DURATION_S / SPEED * 3, "the simulated hour to end")
        sim_end = sim_now()
        speed = (sim_end - sim_start) / (time.monotonic() - wall_start)
        print(f"\nsoak: {sim_end:.0f} s simulated at {speed:.1f}x real time, {len(statuses)} SafetyStatus")
        assert sim_end >= DURATION_S - 1.0
        with ros.lock:
            worst = max(statuses, key=lambda s: s.level)
        assert worst.level <= SafetyStatus.LEVEL_WARNING, [(f.code, f.level, f.module_id, f.cell, f.description)
                                                           for f in worst.faults]
        log = subprocess.run(["bms", "faults", "--state-dir", str(state_dir)], capture_output=True, text=True,
                             timeout=30, check=True).stdout
        assert "latched faults: 0" in log, log
        assert not any(level in log for level in ("  ALARM ", "  FAULT ")), log
    finally:
        ros.close()
        for proc in procs:
            proc.stop()
