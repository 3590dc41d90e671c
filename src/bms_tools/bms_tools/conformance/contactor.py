"""The contactor kind's intrusive check (CON-02): a closing command is followed while a fresh
SafetyStatus allows it, and the contacts open when the status stops arriving."""

from __future__ import annotations

from bms_common import topics
from bms_common.stamps import to_stamp
from bms_interfaces.msg import ContactorCommand, ContactorState, SafetyStatus
from bms_tools.conformance.probe import Probe, wait_until
from bms_tools.conformance.report import Report

SUPERVISOR_PERIOD_S = 0.05
# The contactor's safety timeout is 0.5 s (docs/standard/contactor.md); allow delivery on a busy machine.
OPEN_WITHIN_S = 3.0


def exercise(report: Report, probe: Probe, watch) -> None:
    node = probe.node
    status_pub = node.create_publisher(SafetyStatus, topics.SAFETY_STATUS.name, topics.SAFETY_STATUS.qos)
    command_pub = node.create_publisher(ContactorCommand, topics.CONTACTOR_COMMAND.name,
                                        topics.CONTACTOR_COMMAND.qos)
    # A contactor kept open by the safety path closes only after its command went open once
    # (CON-02): the command opens first, with the status allowing, then asks to close.
    alive = {"status": True, "sequence": 0, "close": False}

    def tick() -> None:
        stamp = to_stamp(probe.now_s())
        command = ContactorCommand(main_plus=alive["close"], main_minus=alive["close"], precharge=False)
        command.header.stamp = stamp
        command_pub.publish(command)
        if alive["status"]:
            alive["sequence"] += 1
            status = SafetyStatus(sequence=alive["sequence"], level=SafetyStatus.LEVEL_OK, contactors_allowed=True,
                                  charge_derating=1.0, discharge_derating=1.0)
            status.header.stamp = stamp
            status_pub.publish(status)

    timer = node.create_timer(SUPERVISOR_PERIOD_S, tick)
    try:
        def newest() -> ContactorState | None:
            arrivals = watch.since(topics.CONTACTOR_STATE.name)
            return arrivals[-1].msg if arrivals else None

        # Closing only once the node has taken a status that allows it.
        wait_until(lambda: (s := newest()) is not None and s.open_reason == ContactorState.OPENED_NONE, 5.0)
        alive["close"] = True
        closed = wait_until(lambda: (s := newest()) is not None and s.main_plus_commanded and s.main_minus_commanded,
                            5.0)
        if not closed:
            report.record("CON-02", False, "did not close on a command while SafetyStatus allowed it")
            return
        alive["status"] = False
        opened = wait_until(lambda: (s := newest()) is not None and not s.main_plus_commanded
                            and not s.main_minus_commanded, OPEN_WITHIN_S)
        state = newest()
        report.record("CON-02", bool(opened) and state.open_reason == ContactorState.OPENED_SAFETY_SILENT,
                      f"{OPEN_WITHIN_S:g} s after the last SafetyStatus: main+ {state.main_plus_commanded}, "
                      f"main- {state.main_minus_commanded}, open_reason {state.open_reason} "
                      f"(OPENED_SAFETY_SILENT = {ContactorState.OPENED_SAFETY_SILENT})")
    finally:
        node.destroy_timer(timer)
