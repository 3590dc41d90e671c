"""Publishes CellMeasurements for one module at 20 Hz and announces itself (tests only).

argv: module_id [interface_version_override]
"""

from __future__ import annotations

import sys

from rclpy.node import Node

from bms_common import topics
from bms_common.component_info import ComponentAnnouncer, Identity
from bms_common.lifecycle import run_main
from bms_interfaces.msg import CellMeasurements


class Talker(Node):
    def __init__(self, module_id: int) -> None:
        super().__init__(f"talker_{module_id}", namespace="/bms")
        self.announcer = ComponentAnnouncer(self, Identity(kind="slave", implementation="test.talker"))
        self.module_id = module_id
        self.sequence = 0
        self.pub = self.create_publisher(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.RELIABLE)
        self.create_timer(0.05, self.tick)

    def tick(self) -> None:
        msg = CellMeasurements(module_id=self.module_id, sequence=self.sequence)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = f"module_{self.module_id}"
        msg.cell_voltages_v = [3.6 + 0.001 * k for k in range(12)]
        msg.temperatures_degc = [25.0] * 4
        self.pub.publish(msg)
        self.sequence += 1


if __name__ == "__main__":
    if len(sys.argv) > 2:  # pretend to be built against another interface version
        import bms_common.component_info as info

        info.INTERFACE_VERSION = sys.argv[2]
    sys.exit(run_main(lambda: Talker(int(sys.argv[1]))))
