"""Reaction times of the safety path, as real processes over real DDS (wall clock, no sim time).

1. contactor: a FAULT SafetyStatus (published here, standing in for the supervisor) to the
   contactor node's ContactorState showing the coils released, and to the simulated plant's
   feedback showing the contacts open.
2. chain: an over-voltage sample published as a slave would, through the real safety
   supervisor (SafetyStatus FAULT) and the real contactor node (ContactorState open). The MSL
   debounce of the limit table is reported apart from the chain's own latency.

    source env.sh && python bench/reaction.py --repetitions 100
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bms_common import topics
from bms_common.pack_config import load_pack_config
from bms_common.testing import RosHarness, isolate_dds, params, start_node, wait_for
from bms_interfaces.msg import (
    CellMeasurements,
    ContactorCommand,
    ContactorState,
    PackMeasurement,
    SafetyStatus,
)
from bms_interfaces.srv import ResetFaults
from bms_safety.limits import load_limits

CLOSED = ContactorCommand(main_plus=True, main_minus=True)


class Stamped:
    """Remembers the wall time of each message's arrival."""

    def __init__(self, ros: RosHarness, msg_type: type, topic: str, qos) -> None:
        self.items: list[tuple[float, object]] = []
        self.lock = threading.Lock()
        ros.node.create_subscription(msg_type, topic, self._on, qos)

    def _on(self, msg) -> None:
        with self.lock:
            self.items.append((time.perf_counter(), msg))

    def first_after(self, t0: float, predicate) -> float | None:
        with self.lock:
            for t, msg in self.items:
                if t >= t0 and predicate(msg):
                    return t
        return None


def close_contactors(command_pub, states: Stamped) -> None:
    """Re-arm (the command goes open once, the contactor node's rule) and close the mains."""
    command_pub.publish(ContactorCommand())
    start = time.perf_counter()
    wait_for(lambda: states.first_after(start, lambda m: not m.main_plus_commanded), 10, "re-armed")
    command_pub.publish(CLOSED)
    start = time.perf_counter()
    wait_for(lambda: states.first_after(start, lambda m: m.main_plus_closed and m.main_minus_closed),
             10, "contactors closed")


def percentiles(values_s: list[float]) -> str:
    ms = np.asarray(values_s) * 1e3
    return f"p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms (n={len(ms)})"


def bench_contactor(ros: RosHarness, tmp: Path, repetitions: int) -> None:
    plant = start_node(tmp, "bms_slave", "sim_host", *params(profile="rest"))
    contactor = start_node(tmp, "bms_master", "contactor", *params(autostart=True))
    manager = start_node(tmp, "bms_common", "lifecycle_manager", *params(pack="demo"),
                         "-p", "node_names:=[module_*, current_sensor]")
    status_pub = ros.node.create_publisher(SafetyStatus, topics.SAFETY_STATUS.name, topics.LATCHED)
    command_pub = ros.node.create_publisher(ContactorCommand, topics.CONTACTOR_COMMAND.name, topics.RELIABLE)
    states = Stamped(ros, ContactorState, topics.CONTACTOR_STATE.name, topics.LATCHED)
    level = [SafetyStatus.LEVEL_OK]
    heartbeat = ros.node.create_timer(0.05, lambda: status_pub.publish(
        SafetyStatus(level=level[0], contactors_allowed=level[0] == SafetyStatus.LEVEL_OK)))
    released, opened = [], []
    try:
        # The contactor node must have heard the heartbeat before the first close, or it holds
        # the contacts open until the command goes open once (its safety rule).
        wait_for(lambda: states.first_after(0.0, lambda m: m.open_reason == ContactorState.OPENED_NONE), 60,
                 "the contactor node to follow commands")
        for _ in range(repetitions):
            level[0] = SafetyStatus.LEVEL_OK
            close_contactors(command_pub, states)
            t0 = time.perf_counter()
            level[0] = SafetyStatus.LEVEL_FAULT
            status_pub.publish(SafetyStatus(level=SafetyStatus.LEVEL_FAULT, contactors_allowed=False))
            t1 = wait_for(lambda t0=t0: states.first_after(t0, lambda m: not m.main_plus_commanded), 10, "coils released")
            t2 = wait_for(lambda t0=t0: states.first_after(t0, lambda m: not m.main_plus_closed and not m.main_minus_closed),
                          10, "contacts open")
            released.append(t1 - t0)
            opened.append(t2 - t0)
    finally:
        ros.node.destroy_timer(heartbeat)
        for proc in (manager, contactor, plant):
            proc.stop()
    print(f"FAULT SafetyStatus -> ContactorState coils released: {percentiles(released)}")
    print(f"FAULT SafetyStatus -> ContactorState contacts open (sim feedback): {percentiles(opened)}")


def bench_chain(ros: RosHarness, tmp: Path, repetitions: int) -> None:
    pack = load_pack_config("demo")
    debounce_s = load_limits(pack.limits).thresholds["cell_voltage_high"].levels[2].debounce_s
    supervisor = start_node(tmp, "bms_safety", "supervisor", *params(autostart=True, state_dir="none"))
    plant = start_node(tmp, "bms_slave", "sim_host", *params(profile="rest", wait_for_nodes=False), log="sim_chain")
    contactor = start_node(tmp, "bms_master", "contactor", *params(autostart=True), log="contactor_chain")
    cells_pub = ros.node.create_publisher(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.RELIABLE)
    pack_pub = ros.node.create_publisher(PackMeasurement, topics.PACK_MEASUREMENT.name, topics.RELIABLE)
    command_pub = ros.node.create_publisher(ContactorCommand, topics.CONTACTOR_COMMAND.name, topics.RELIABLE)
    statuses = Stamped(ros, SafetyStatus, topics.SAFETY_STATUS.name, topics.LATCHED)
    states = Stamped(ros, ContactorState, topics.CONTACTOR_STATE.name, topics.LATCHED)
    rng = np.random.default_rng(1)
    sequence = [0]
    overvoltage = [False]

    def publish_measurements() -> None:
        stamp = ros.node.get_clock().now().to_msg()
        for module in range(pack.modules):
            volts = 3.7 + 0.0003 * rng.standard_normal(pack.cells_per_module)
            if overvoltage[0] and module == 2:
                volts[5] = 4.40
            msg = CellMeasurements(module_id=module, sequence=sequence[0], cell_voltages_v=volts.astype(np.float32),
                                   temperatures_degc=(25.0 + 0.05 * rng.standard_normal(4)).astype(np.float32))
            msg.header.stamp = stamp
            cells_pub.publish(msg)
        pm = PackMeasurement(sequence=sequence[0], current_a=0.1 * rng.standard_normal(),
                             pack_voltage_v=3.7 * pack.cell_count, dc_link_voltage_v=3.7 * pack.cell_count,
                             insulation_resistance_ohm=5e6, hvil_closed=True)
        pm.header.stamp = stamp
        pack_pub.publish(pm)
        sequence[0] += 1

    timer = ros.node.create_timer(0.1, publish_measurements)
    to_status, to_open = [], []
    try:
        for _ in range(repetitions):
            wait_for(lambda: (s := statuses.items) and s[-1][1].level <= SafetyStatus.LEVEL_WARNING
                     and s[-1][1].contactors_allowed, 30, "supervisor OK")
            close_contactors(command_pub, states)
            overvoltage[0] = True
            t0 = time.perf_counter()
            publish_measurements()
            t1 = wait_for(lambda t0=t0: statuses.first_after(t0, lambda m: m.level == SafetyStatus.LEVEL_FAULT), 10,
                          "SafetyStatus FAULT")
            t2 = wait_for(lambda t0=t0: states.first_after(t0, lambda m: not m.main_plus_commanded), 10, "contactors open")
            to_status.append(t1 - t0)
            to_open.append(t2 - t0)
            overvoltage[0] = False
            wait_for(lambda: ros.call(ResetFaults, "/bms/reset_faults", ResetFaults.Request()).success, 30,
                     "reset")
    finally:
        ros.node.destroy_timer(timer)
        for proc in (contactor, plant, supervisor):
            proc.stop()
    chain_status = [t - debounce_s for t in to_status]
    chain_open = [t - debounce_s for t in to_open]
    print(f"over-voltage sample -> SafetyStatus FAULT: {percentiles(to_status)}")
    print(f"over-voltage sample -> ContactorState open: {percentiles(to_open)}")
    print(f"  of which MSL debounce {debounce_s * 1e3:.0f} ms; chain latency beyond it: "
          f"to FAULT {percentiles(chain_status)}; to open {percentiles(chain_open)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repetitions", type=int, default=100)
    parser.add_argument("--only", choices=("contactor", "chain"))
    args = parser.parse_args()
    isolate_dds()
    ros = RosHarness("bench_reaction")
    logs = Path(tempfile.mkdtemp(prefix="bms-bench-reaction-"))
    print(f"node logs in {logs}")
    try:
        if args.only in (None, "contactor"):
            bench_contactor(ros, logs, args.repetitions)
        if args.only in (None, "chain"):
            bench_chain(ros, logs, args.repetitions)
    finally:
        ros.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
