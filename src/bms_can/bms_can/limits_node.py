"""``limits_tx`` node: puts the master's allowed currents on CAN (the Limits frame, 0x351 by
default, the form chargers and inverters read from a BMS) every ``period_s``. When
``current_limits`` is older than ``timeout_s`` it sends zero currents: a load or charger without
a fresh permission from the BMS must draw nothing. Voltage window: the pack's cells times the
chemistry's charge voltage; the discharge voltage limit is sent as 0 (not given).
"""

from __future__ import annotations

import math
import sys
import threading
import time

from rclpy.node import Node

from bms_common import topics
from bms_common.component_info import ComponentAnnouncer, Identity
from bms_common.lifecycle import declare, run_main
from bms_common.pack_config import load_pack_config
from bms_interfaces.msg import ComponentInfo, CurrentLimits
from bms_slave.chemistry import chemistry_model

from .channel import shared_channel
from .config import load_can_config


class LimitsTransmitter(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("limits_tx", **kwargs)
        pack = load_pack_config(str(declare(self, "pack", "demo")))
        self.period_s = float(declare(self, "period_s", 0.1))
        self.timeout_s = float(declare(self, "timeout_s", 0.5))
        config = load_can_config()
        self.channel = shared_channel(config)
        self.charge_voltage_v = pack.cell_count * chemistry_model(pack.chemistry).charge_voltage_v
        self.limits = (0.0, 0.0)
        self.received_s = -math.inf
        self.announcer = ComponentAnnouncer(self, Identity(
            kind=ComponentInfo.KIND_TOOL, implementation="bms_can.limits_node",
            hardware_id=f"can:{self.channel.name}"))
        self.create_subscription(CurrentLimits, topics.CURRENT_LIMITS.name, self.on_limits, topics.RELIABLE)
        self.create_timer(self.period_s, self.send)

    def on_limits(self, msg: CurrentLimits) -> None:
        self.limits = (_magnitude(msg.max_charge_current_a), _magnitude(msg.max_discharge_current_a))
        self.received_s = time.monotonic()

    def send(self) -> None:
        fresh = time.monotonic() - self.received_s <= self.timeout_s
        charge_a, discharge_a = self.limits if fresh else (0.0, 0.0)
        if not self.channel.send(self.channel.protocol.limits(charge_a, discharge_a, self.charge_voltage_v, 0.0)):
            self.get_logger().warning(f"limits frame not sent: {self.channel.stats.last_error}",
                                      throttle_duration_sec=5.0)


def _magnitude(value: float) -> float:
    return 0.0 if math.isnan(value) or value < 0.0 else float(value)


def build(stop: threading.Event, cli_args: list[str] | None = None) -> list[Node]:
    return [LimitsTransmitter(cli_args=cli_args)]


def main(args: list[str] | None = None) -> int:
    stop = threading.Event()
    return run_main(lambda: build(stop, None), args, stop=stop)


if __name__ == "__main__":
    sys.exit(main())
