"""The multi-host test's eyes and hands on one host (test/test_multihost.py).

Runs inside a host's network namespace (the test process itself is outside every test network).
Prints one JSON object per line on stdout, with ``t`` the monotonic clock (shared by every
namespace of the machine):
  {"topic": "safety", "stamp", "level", "allowed", "stale": [module ids], "codes": [...],
   "last_cells": {module id: stamp of its newest cell_measurements},
   "last_arrival": {module id: when that arrived, on the probe's clock}} on every change
  {"topic": "pack", "stamp", "state"}                                    on every change of state
  {"topic": "contactor", "stamp", "closed", "by_safety"}                 on every change
  {"topic": "cells", "module", "stamp"}                                  first sample of a module
                                                                         after a silence of 0.5 s
  {"topic": "current", "stamp"}                                          first pack_measurement
                                                                         after a silence of 0.5 s
  {"topic": "answer", "command", "ok", "text"}                           after each command
  {"topic": "answer", "command": "gaps", "ok", "samples": {module: n}, "max_gap_s": {module: s}}
Run it with ``--ros-args -p use_sim_time:=true`` to have arrivals on simulated time.
Commands, one per line on stdin: ``reset`` (reset_faults), ``request STANDBY|DRIVE|CHARGE``,
``gaps`` (samples per module and the longest wall time between two of a module's samples since
the previous ``gaps``).
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from bms_common import topics
from bms_common.component_info import ComponentAnnouncer, Identity, host_name
from bms_common.stamps import to_seconds
from bms_interfaces.msg import (
    CellMeasurements,
    ComponentInfo,
    ContactorState,
    PackMeasurement,
    PackState,
    SafetyStatus,
)
from bms_interfaces.srv import RequestState, ResetFaults

SILENCE_S = 0.5


def say(**fields: object) -> None:
    print(json.dumps({"t": time.monotonic(), **fields}), flush=True)


class Probe(Node):
    def __init__(self) -> None:
        super().__init__(f"multihost_probe_{host_name()}", namespace="/bms")
        self.announcer = ComponentAnnouncer(self, Identity(kind=ComponentInfo.KIND_TOOL,
                                                           implementation="test.multihost_probe"))
        self.last_cells: dict[int, float] = {}
        self.last_arrival: dict[int, float] = {}
        self.samples: dict[int, int] = {}
        self.max_gap_s: dict[int, float] = {}
        self.last_cells_wall: dict[int, float] = {}
        self.last_current_wall = -1e9
        self.safety: tuple | None = None
        self.state: int | None = None
        self.closed: tuple | None = None
        self.commands: queue.Queue[str] = queue.Queue()
        self.create_subscription(SafetyStatus, topics.SAFETY_STATUS.name, self.on_safety, topics.SAFETY_STATUS.qos)
        self.create_subscription(PackState, topics.PACK_STATE.name, self.on_pack, topics.PACK_STATE.qos)
        self.create_subscription(ContactorState, topics.CONTACTOR_STATE.name, self.on_contactor,
                                 topics.CONTACTOR_STATE.qos)
        self.create_subscription(CellMeasurements, topics.CELL_MEASUREMENTS.name, self.on_cells,
                                 topics.CELL_MEASUREMENTS.qos)
        self.create_subscription(PackMeasurement, topics.PACK_MEASUREMENT.name, self.on_current,
                                 topics.PACK_MEASUREMENT.qos)
        self.reset = self.create_client(ResetFaults, topics.RESET_FAULTS)
        self.request = self.create_client(RequestState, topics.REQUEST_STATE)
        self.create_timer(0.05, self.serve)

    def on_cells(self, msg: CellMeasurements) -> None:
        now = time.monotonic()
        gap_s = now - self.last_cells_wall.get(msg.module_id, -1e9)
        self.samples[msg.module_id] = self.samples.get(msg.module_id, 0) + 1
        if msg.module_id in self.last_cells_wall:
            self.max_gap_s[msg.module_id] = max(self.max_gap_s.get(msg.module_id, 0.0), gap_s)
        if gap_s > SILENCE_S:
            say(topic="cells", module=msg.module_id, stamp=to_seconds(msg.header.stamp))
        self.last_cells[msg.module_id] = to_seconds(msg.header.stamp)
        self.last_arrival[msg.module_id] = self.get_clock().now().nanoseconds * 1e-9
        self.last_cells_wall[msg.module_id] = now

    def on_current(self, msg: PackMeasurement) -> None:
        now = time.monotonic()
        if now - self.last_current_wall > SILENCE_S:
            say(topic="current", stamp=to_seconds(msg.header.stamp))
        self.last_current_wall = now

    def on_safety(self, msg: SafetyStatus) -> None:
        stale = sorted({f.module_id for f in msg.faults if f.code == "STALE_MODULE"})
        codes = sorted({f.code for f in msg.faults})
        key = (msg.level, msg.contactors_allowed, tuple(stale), tuple(codes))
        if key != self.safety:
            self.safety = key
            say(topic="safety", stamp=to_seconds(msg.header.stamp), level=msg.level, allowed=msg.contactors_allowed,
                stale=stale, codes=codes, last_cells=self.last_cells, last_arrival=self.last_arrival)

    def on_pack(self, msg: PackState) -> None:
        if msg.operating_state != self.state:
            self.state = msg.operating_state
            say(topic="pack", stamp=to_seconds(msg.header.stamp), state=msg.operating_state)

    def on_contactor(self, msg: ContactorState) -> None:
        closed = (msg.main_plus_commanded, msg.main_minus_commanded, msg.precharge_commanded)
        if closed != self.closed:
            self.closed = closed
            say(topic="contactor", stamp=to_seconds(msg.header.stamp), closed=any(closed),
                by_safety=msg.opened_by_safety)

    def serve(self) -> None:
        while not self.commands.empty():
            command = self.commands.get()
            words = command.split()
            if words == ["gaps"]:
                say(topic="answer", command=command, ok=True, samples=self.samples, max_gap_s=self.max_gap_s)
                self.samples, self.max_gap_s = {}, {}
                continue
            if words == ["reset"]:
                client, request = self.reset, ResetFaults.Request()
            elif len(words) == 2 and words[0] == "request":
                client, request = self.request, RequestState.Request(state=getattr(PackState, "STATE_" + words[1]))
            else:
                say(topic="answer", command=command, ok=False, text="unknown command")
                continue
            if not client.service_is_ready():
                say(topic="answer", command=command, ok=False, text=f"{client.srv_name} not available")
                continue
            client.call_async(request).add_done_callback(lambda f, c=command: self.answered(c, f.result()))

    @staticmethod
    def answered(command: str, result: object) -> None:
        ok = bool(getattr(result, "accepted", getattr(result, "success", False)))
        say(topic="answer", command=command, ok=ok, text=str(result))


def main() -> int:
    rclpy.init()
    probe = Probe()

    def read_commands() -> None:
        for line in sys.stdin:
            if line.strip():
                probe.commands.put(line.strip())

    threading.Thread(target=read_commands, daemon=True).start()
    executor = SingleThreadedExecutor()
    executor.add_node(probe)
    try:
        executor.spin()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
