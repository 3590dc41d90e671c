"""No false positives: a simulated drive, rest and charge raises nothing above WARNING.

The 16 x 12 NMC pack asked to run at 20x real time, with the real supervisor, contactor node and
master over real DDS and the shipped limit tables. The plant's profile is switched drive -> rest
-> cccv through its set_parameters service; charging goes through STANDBY and a CHARGE request
as an operator would. Every SafetyStatus received and the supervisor's fault log (`bms faults`)
must stay at or below WARNING (MOL). A machine that cannot keep up makes the plant slow
simulated time down (docs/simulation.md, "Pacing"): the run takes longer, it must not trip.

Shared by test/test_safety_soak.py (ten minutes) and bench/soak.py (an hour or more).
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters

from bms_common import topics
from bms_common.stamps import to_seconds
from bms_common.testing import RosHarness, params, start_node, wait_for
from bms_interfaces.msg import PackState, SafetyStatus
from bms_interfaces.srv import RequestState

PACK = "nmc_16x12"
SPEED = 20.0
# (fraction of the run at which the phase starts, plant profile, operating state to request)
SCHEDULE = [(0.0, "drive", PackState.STATE_DRIVE), (5 / 12, "rest", PackState.STATE_DRIVE),
            (7 / 12, "cccv", PackState.STATE_CHARGE)]


@dataclass(frozen=True)
class SoakResult:
    simulated_s: float
    speed: float  # achieved simulated seconds per wall second
    statuses: int
    worst_level: int
    worst_faults: list[tuple[str, int, int, int, str]]
    fault_log: str


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
        wait_for(lambda: newest_state() == PackState.STATE_STANDBY, 60, "STANDBY")
    # The master refuses while the contactors are still opening (delayed under current): ask again.
    wait_for(lambda: ros.call(RequestState, "/bms/request_state", request(state=state)).accepted, 120,
             f"request for state {state} accepted")
    wait_for(lambda: newest_state() == state, 120, f"operating state {state}")


def soak(tmp_path: Path, duration_s: float, speed: float = SPEED, pack: str = PACK) -> SoakResult:
    """Run the schedule over ``duration_s`` simulated seconds; the caller judges the result.
    Waits allow the run to go at a fifth of the asked speed (a loaded 2-core machine)."""
    state_dir = tmp_path / "state"
    procs = [
        start_node(tmp_path, "bms_slave", "sim_host",
                   *params(pack=pack, speed=speed, duration=duration_s, profile="drive")),
        start_node(tmp_path, "bms_safety", "supervisor",
                   *params(pack=pack, autostart=True, use_sim_time=True, state_dir=str(state_dir))),
        start_node(tmp_path, "bms_master", "contactor", *params(autostart=True, use_sim_time=True)),
        start_node(tmp_path, "bms_master", "master", *params(pack=pack, use_sim_time=True, startup_request="DRIVE")),
        start_node(tmp_path, "bms_common", "lifecycle_manager", *params(pack=pack),
                   "-p", "node_names:=[module_*, current_sensor, master]"),
    ]
    sim = procs[0]
    ros = RosHarness("soak")
    wall_budget_s = duration_s / speed * 5 + 60
    try:
        statuses = ros.collect(SafetyStatus, topics.SAFETY_STATUS.name, topics.LATCHED)
        ros.collect(PackState, topics.PACK_STATE.name, topics.RELIABLE)

        def sim_now() -> float:
            with ros.lock:
                return to_seconds(statuses[-1].header.stamp) if statuses else 0.0

        wait_for(lambda: sim_now() > 0.5 and ros.snapshot(topics.PACK_STATE.name), 120, "the system running")
        wall_start, sim_start = time.monotonic(), sim_now()
        for fraction, profile, state in SCHEDULE:
            start_s = fraction * duration_s
            wait_for(lambda s=start_s: sim_now() >= s, wall_budget_s, f"sim time {start_s:.0f} s")
            set_profile(ros, profile)
            go_to(ros, state)
        wait_for(lambda: not sim.alive(), wall_budget_s, f"the simulated {duration_s:.0f} s to end")
        sim_end = sim_now()
        with ros.lock:
            worst = max(statuses, key=lambda s: s.level)
            count = len(statuses)
        log = subprocess.run(["bms", "faults", "--state-dir", str(state_dir)], capture_output=True, text=True,
                             timeout=30, check=True).stdout
        return SoakResult(
            simulated_s=sim_end, speed=(sim_end - sim_start) / (time.monotonic() - wall_start), statuses=count,
            worst_level=worst.level,
            worst_faults=[(f.code, f.level, f.module_id, f.cell, f.description) for f in worst.faults],
            fault_log=log)
    finally:
        ros.close()
        for proc in procs:
            proc.stop()


def assert_nothing_above_warning(result: SoakResult, duration_s: float) -> None:
    assert result.simulated_s >= duration_s - 1.0
    assert result.worst_level <= SafetyStatus.LEVEL_WARNING, result.worst_faults
    assert "latched faults: 0" in result.fault_log, result.fault_log
    assert not any(level in result.fault_log for level in ("  ALARM ", "  FAULT ")), result.fault_log
