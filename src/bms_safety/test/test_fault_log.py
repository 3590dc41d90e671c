"""The fault log over ROS: the persisted log and the latched set as a FaultLog message, sent by
the supervisor on activation and on every change (a late joiner on another host sees it)."""

from __future__ import annotations

import math

from safety_harness import supervised

from bms_common import topics
from bms_common.stamps import to_seconds
from bms_common.testing import NodeProcess, RosHarness, executable, wait_for
from bms_interfaces.msg import FaultLog, SafetyStatus
from bms_safety.codes import Level
from bms_safety.messages import fault_log_message


def test_the_message_holds_the_log_with_freeze_frames_and_changes_with_it(tmp_path):
    h, sup = supervised(tmp_path)
    h.run(1.0)
    assert sup.revision == 0
    h.volts[1, 2] = 4.3  # over the MSL: a latched CELL_OV
    h.run(0.5)
    raised = sup.revision
    assert raised > 0
    msg = fault_log_message(sup.state, sup.evaluator.latched_faults(), h.t, 7, "safety_supervisor")
    assert msg.sequence == 7 and msg.header.frame_id == "safety_supervisor"
    assert [(f.code, f.module_id, f.cell, f.latched) for f in msg.latched] == [("CELL_OV", 1, 2, True)]
    fault = next(e for e in msg.entries if e.key == "CELL_OV/1/2")
    assert msg.entries[0].max_level == Level.FAULT  # most severe first
    assert fault.count == 1 and to_seconds(fault.first) == to_seconds(fault.last) > 1.0
    frame = fault.first_frame
    assert frame.module_id == 1 and len(frame.cell_voltages_v) == 4 and len(frame.temperatures_degc) == 2
    assert abs(frame.cell_voltages_v[2] - 4.3) < 0.003 and frame.pack_current_a == -10.0 and frame.hvil_closed
    no_module = fault_log_message(sup.state, [], h.t, 0, "s")
    assert all(e.first_frame.module_id == 1 for e in no_module.entries if e.module_id == 1)

    h.volts[1, 2] = 3.7
    h.run(0.5)
    assert sup.reset(h.t).success and sup.revision == raised + 1
    assert fault_log_message(sup.state, sup.evaluator.latched_faults(), h.t, 8, "s").latched == []


def test_pack_wide_entries_have_no_module_frame(tmp_path):
    h, sup = supervised(tmp_path)
    h.run(1.0)
    h.pack_silent = True
    h.run(8.0)
    msg = fault_log_message(sup.state, sup.evaluator.latched_faults(), h.t, 0, "s")
    stale = next(e for e in msg.entries if e.code == "STALE_CURRENT_SENSOR")
    assert stale.module_id == -1 and stale.first_frame.module_id == -1
    assert list(stale.first_frame.cell_voltages_v) == [] and not math.isnan(stale.first_frame.pack_current_a)


def test_the_node_sends_the_restored_log_to_a_late_joiner(ros: RosHarness, tmp_path):
    # A log with a latched fault, as a supervisor left it before a restart.
    h, sup = supervised(tmp_path)
    h.run(1.0)
    h.temps[0, 1] = 80.0  # over the MSL: a latched temperature fault
    h.run(3.0)
    sup.save(h.t)
    expected = {e.key for e in sup.state.log.values()}
    assert any(key.startswith("TEMP_HIGH") for key in expected)

    node = NodeProcess([executable("bms_safety", "supervisor"), "--ros-args", "-r", "__ns:=/bms",
                        "-p", "autostart:=true", "-p", f"state_dir:={tmp_path}", "-p", "lifecycle_manager:=''"],
                       tmp_path / "supervisor.log")
    try:
        status = ros.collect(SafetyStatus, topics.SAFETY_STATUS.absolute, topics.SAFETY_STATUS.qos)
        wait_for(lambda: status or not node.alive(), 60, "the supervisor to be active")
        assert node.alive(), node.output()[-2000:]
        logs = ros.collect(FaultLog, topics.FAULT_LOG.absolute, topics.FAULT_LOG.qos)  # joins late
        log = wait_for(lambda: logs[-1] if logs else None, 30, "the latched fault log")
        assert {e.key for e in log.entries} == expected
        assert any(f.code.startswith("TEMP_HIGH") and f.latched for f in log.latched)
        assert node.alive()
    finally:
        node.stop()
