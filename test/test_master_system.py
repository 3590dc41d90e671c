"""Master, contactor node and safety supervisor with the simulated pack, over real DDS."""

from __future__ import annotations

import signal

import pytest
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from bms_common import topics
from bms_common.testing import RosHarness, params, start_node, wait_for
from bms_interfaces.msg import (
    CellMeasurements,
    ContactorState,
    CurrentLimits,
    PackMeasurement,
    PackState,
    SafetyStatus,
)
from bms_interfaces.srv import InjectFault, RequestState, ResetFaults

SPEED = 2.0


@pytest.fixture(scope="module")
def system(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("master")
    procs = {
        "sim": start_node(tmp, "bms_slave", "sim_host", *params(speed=SPEED, profile="drive")),
        "supervisor": start_node(tmp, "bms_safety", "supervisor",
                                 *params(autostart=True, use_sim_time=True, state_dir=str(tmp / "state"))),
        "contactor": start_node(tmp, "bms_master", "contactor", *params(autostart=True, use_sim_time=True)),
        "master": start_node(tmp, "bms_master", "master", *params(use_sim_time=True)),
        "manager": start_node(tmp, "bms_common", "lifecycle_manager", *params(pack="demo"),
                              "-p", "node_names:=[module_*, current_sensor, master]"),
    }
    ros = RosHarness("master_test")
    ros.procs, ros.tmp = procs, tmp
    try:
        ros.collect(PackState, topics.PACK_STATE.name, topics.RELIABLE)
        # Every state is kept, not only the newest (LATCHED keeps one): the tests read the order
        # in which the contactors closed, and a harness starved for a moment must not lose it.
        ros.collect(ContactorState, topics.CONTACTOR_STATE.name,
                    QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE,
                               durability=DurabilityPolicy.TRANSIENT_LOCAL))
        ros.collect(SafetyStatus, topics.SAFETY_STATUS.name, topics.LATCHED)
        ros.collect(CurrentLimits, topics.CURRENT_LIMITS.name, topics.RELIABLE)
        ros.collect(PackMeasurement, topics.SIM_PACK_TRUTH, topics.RELIABLE)
        wait_for(lambda: ros.snapshot(topics.PACK_STATE.name) and ros.snapshot(topics.SAFETY_STATUS.name)
                 and ros.snapshot(topics.SIM_PACK_TRUTH), 60, "simulation, master and supervisor running")
        yield ros
    finally:
        ros.close()
        for proc in procs.values():
            proc.stop()


def newest(ros, topic):
    items = ros.snapshot(topic)
    return items[-1] if items else None


def request(ros, state: int) -> RequestState.Response:
    return ros.call(RequestState, "/bms/request_state", RequestState.Request(state=state))


def request_drive(ros) -> None:
    # Right after a supervisor (re)start, closing waits until it has heard every input once.
    wait_for(lambda: request(ros, PackState.STATE_DRIVE).accepted, 30, "DRIVE accepted")


def in_state(ros, state: int, timeout_s: float = 30.0) -> PackState:
    return wait_for(lambda: (m := newest(ros, topics.PACK_STATE.name)) and m.operating_state == state and m,
                    timeout_s, f"operating state {state}")


def back_to_standby(ros) -> None:
    if newest(ros, topics.PACK_STATE.name).operating_state == PackState.STATE_ERROR:
        wait_for(lambda: ros.call(ResetFaults, "/bms/reset_faults", ResetFaults.Request()).success, 30,
                 "faults to reset")
    wait_for(lambda: request(ros, PackState.STATE_STANDBY).accepted, 30, "STANDBY accepted")
    in_state(ros, PackState.STATE_STANDBY)
    wait_for(lambda: not newest(ros, topics.CONTACTOR_STATE.name).main_minus_closed, 30, "contactors open")


def test_precharge_then_drive_then_standby(system):
    start = len(system.snapshot(topics.CONTACTOR_STATE.name))
    request_drive(system)
    in_state(system, PackState.STATE_DRIVE)
    wait_for(lambda: abs(newest(system, topics.SIM_PACK_TRUTH).current_a) > 1.0, 30, "the load to draw current")
    # The feedback of main+ reaches the test after the current it lets flow: wait for it.
    wait_for(lambda: any(s.main_plus_closed for s in system.snapshot(topics.CONTACTOR_STATE.name)[start:]),
             30, "main+ reported closed")
    states = system.snapshot(topics.CONTACTOR_STATE.name)[start:]
    first_plus = next(i for i, s in enumerate(states) if s.main_plus_closed)
    first_minus = next(i for i, s in enumerate(states) if s.main_minus_closed)
    first_pre = next(i for i, s in enumerate(states) if s.precharge_closed)
    assert first_minus <= first_pre < first_plus  # main- and precharge before main+
    wait_for(lambda: not newest(system, topics.CONTACTOR_STATE.name).precharge_closed, 10,
             "the precharge relay to open once main+ is closed")
    back_to_standby(system)
    wait_for(lambda: newest(system, topics.SIM_PACK_TRUTH).current_a == 0.0, 30, "zero current with contactors open")


def test_precharge_timeout_goes_to_error_without_closing_main_plus(system):
    ok = system.call(InjectFault, "/bms/plant/inject_fault", InjectFault.Request(fault="dc_link_short", magnitude=1.0))
    assert ok.success
    start = len(system.snapshot(topics.CONTACTOR_STATE.name))
    try:
        request_drive(system)
        error = in_state(system, PackState.STATE_ERROR, 60)
        assert "precharge" in error.state_reason.lower()
        assert not any(s.main_plus_closed for s in system.snapshot(topics.CONTACTOR_STATE.name)[start:])
    finally:
        system.call(InjectFault, "/bms/plant/inject_fault", InjectFault.Request(fault="dc_link_short", clear=True))
    back_to_standby(system)


def test_fault_opens_contactors_and_error_needs_reset(system):
    request_drive(system)
    in_state(system, PackState.STATE_DRIVE)
    system.call(InjectFault, "/bms/plant/inject_fault", InjectFault.Request(fault="hvil_open"))
    try:
        wait_for(lambda: newest(system, topics.SAFETY_STATUS.name).level == SafetyStatus.LEVEL_FAULT, 30,
                 "FAULT from the supervisor")
        opened = wait_for(lambda: (s := newest(system, topics.CONTACTOR_STATE.name)) and not s.main_plus_closed
                          and not s.main_minus_closed and s, 30, "contactors open")
        assert opened.opened_by_safety
        in_state(system, PackState.STATE_ERROR)
        refused = system.call(ResetFaults, "/bms/reset_faults", ResetFaults.Request())
        assert not refused.success and refused.refused  # the cause persists
    finally:
        system.call(InjectFault, "/bms/plant/inject_fault", InjectFault.Request(fault="hvil_open", clear=True))
    assert not request(system, PackState.STATE_DRIVE).accepted  # ERROR is left only through STANDBY
    back_to_standby(system)


def test_supervisor_silence_opens_contactors(system):
    request_drive(system)
    in_state(system, PackState.STATE_DRIVE)
    # Freeze the master too (a hung master keeps commanding "closed"): the contactor node must
    # open on its own when the supervisor's heartbeat stops.
    master = system.procs["master"].proc
    master.send_signal(signal.SIGSTOP)
    system.procs["supervisor"].kill()
    try:
        state = wait_for(lambda: (s := newest(system, topics.CONTACTOR_STATE.name)) and not s.main_plus_closed and s,
                         30, "contactors to open after the supervisor went silent")
        assert state.open_reason == ContactorState.OPENED_SAFETY_SILENT
    finally:
        master.send_signal(signal.SIGCONT)
        system.procs["supervisor"] = start_node(
            system.tmp, "bms_safety", "supervisor",
            *params(autostart=True, use_sim_time=True, state_dir=str(system.tmp / "state")), log="supervisor2")
    wait_for(lambda: newest(system, topics.SAFETY_STATUS.name).sequence < 100, 30, "the respawned supervisor")
    back_to_standby(system)


def test_current_limits_follow_state_and_derating(system):
    standby = wait_for(lambda: newest(system, topics.CURRENT_LIMITS.name), 10, "current limits")
    assert standby.max_charge_current_a == 0.0 and standby.max_discharge_current_a == 0.0
    request_drive(system)
    in_state(system, PackState.STATE_DRIVE)
    limits = wait_for(lambda: (m := newest(system, topics.CURRENT_LIMITS.name)).max_discharge_current_a > 0 and m,
                      30, "discharge allowed in DRIVE")
    # No estimator runs here: the supervisor warns (ESTIMATOR_LOSS) and the master falls back.
    assert limits.discharge_reason in (CurrentLimits.REASON_NO_ESTIMATOR, CurrentLimits.REASON_SAFETY_DERATING)
    truth = system.snapshot(topics.SIM_PACK_TRUTH)[-50:]
    assert all(-t.current_a <= limits.max_discharge_current_a + 1e-3 for t in truth[-10:])
    back_to_standby(system)


def test_garbage_in_is_reported_and_the_master_keeps_running(system):
    pub = system.node.create_publisher(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.RELIABLE)
    for msg in (CellMeasurements(module_id=99, cell_voltages_v=[3.7] * 12, temperatures_degc=[25.0] * 4),
                CellMeasurements(module_id=1, cell_voltages_v=[3.7] * 5, temperatures_degc=[25.0] * 4)):
        msg.header.frame_id = "garbage"
        pub.publish(msg)
    log = system.tmp / "master.log"
    wait_for(lambda: "dropped" in log.read_text(), 20, "the master to report the bad messages")
    before = newest(system, topics.PACK_STATE.name).header.stamp.sec
    wait_for(lambda: newest(system, topics.PACK_STATE.name).header.stamp.sec > before + 1, 20, "PackState going on")
    assert system.procs["master"].alive()
    system.node.destroy_publisher(pub)
