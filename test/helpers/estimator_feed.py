"""Feed an estimator running alone through the contract, on a simulated clock, as fast as it keeps up.

Each 0.1 s step of simulated time publishes ``/clock`` and then, stamped with that instant, one
CellMeasurements per module and one PackMeasurement: a cell whose voltage follows a crude
OCV-plus-resistance model of a drive current (the estimator's accuracy is not what is measured
here, its liveness is). The feeder keeps at most ``max_lead_s`` of simulated time ahead of the
estimator's newest PowerLimits (published every step), so it runs at the speed the estimator
sustains, and a pause of the PowerLimits while the clock and the samples keep coming is a stall.
Used by test/test_estimator_alone.py and bench/estimator_soak.py.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import numpy as np

STEP_S = 0.1


@dataclass
class FeedResult:
    simulated_s: float = 0.0  # how far the clock went
    wall_s: float = 0.0
    outputs: int = 0  # PowerLimits received
    newest_output_s: float = math.nan  # stamp of the newest PowerLimits
    stalls: list[tuple[float, float]] = field(default_factory=list)  # (clock, newest output) at each stall
    max_lag_s: float = 0.0  # the most the outputs were behind the clock

    @property
    def speed(self) -> float:
        return self.simulated_s / self.wall_s if self.wall_s > 0 else math.nan


class EstimatorFeed:
    def __init__(self, modules: int = 4, cells: int = 12, sensors: int = 4, capacity_ah: float = 50.0) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rosgraph_msgs.msg import Clock

        from bms_common import topics
        from bms_interfaces.msg import CellMeasurements, PackMeasurement, PowerLimits

        self.modules, self.cells, self.sensors, self.capacity_ah = modules, cells, sensors, capacity_ah
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("estimator_feed", namespace="/bms", context=self.context)
        self.clock_pub = self.node.create_publisher(Clock, "/clock", 10)
        self.cells_pub = self.node.create_publisher(CellMeasurements, topics.CELL_MEASUREMENTS.name,
                                                    topics.CELL_MEASUREMENTS.qos)
        self.pack_pub = self.node.create_publisher(PackMeasurement, topics.PACK_MEASUREMENT.name, topics.RELIABLE)
        self.lock = threading.Lock()
        self.outputs, self.newest_output_s = 0, 0.0
        self.node.create_subscription(PowerLimits, topics.POWER_LIMITS.name, self._on_limits, topics.RELIABLE)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        self._types = (Clock, CellMeasurements, PackMeasurement)
        self.rng = np.random.default_rng(19)
        self.soc = 0.6
        self.sequence = 0

    def _spin(self) -> None:
        while self._running:
            self.executor.spin_once(timeout_sec=0.05)

    def _on_limits(self, msg) -> None:
        with self.lock:
            self.outputs += 1
            self.newest_output_s = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9

    def newest(self) -> tuple[int, float]:
        with self.lock:
            return self.outputs, self.newest_output_s

    def wait_for_estimator(self, timeout_s: float = 60.0) -> None:
        """Until the estimator's subscriptions match (it is active), publishing the clock at 0."""
        deadline = time.monotonic() + timeout_s
        while self.cells_pub.get_subscription_count() == 0 or self.pack_pub.get_subscription_count() == 0:
            if time.monotonic() > deadline:
                raise AssertionError("the estimator never subscribed to the measurements")
            self.publish_step(0.0, measurements=False)
            time.sleep(0.1)

    def publish_step(self, t_s: float, measurements: bool = True) -> None:
        clock_type, cells_type, pack_type = self._types
        from bms_common.stamps import to_stamp

        stamp = to_stamp(t_s)
        self.clock_pub.publish(clock_type(clock=stamp))
        if not measurements:
            return
        # A drive: 2.5C peaks, regeneration, rests, over a 10-minute cycle.
        phase = (t_s % 600.0) / 600.0
        current_a = self.capacity_ah * (0.0 if phase > 0.8 else 1.2 * math.sin(40 * phase) - 0.3)
        self.soc = min(max(self.soc + current_a * STEP_S / 3600.0 / self.capacity_ah, 0.05), 0.95)
        ocv_v = 3.4 + 0.7 * self.soc
        self.sequence += 1
        for m in range(self.modules):
            voltages = ocv_v + 0.0005 * current_a + 0.002 * self.rng.standard_normal(self.cells)
            msg = cells_type(module_id=m, sequence=self.sequence, cell_voltages_v=voltages.astype(np.float32),
                             temperatures_degc=np.full(self.sensors, 25.0, dtype=np.float32),
                             balancing=[False] * self.cells)
            msg.header.stamp, msg.header.frame_id = stamp, f"module_{m}"
            self.cells_pub.publish(msg)
        pack = pack_type(sequence=self.sequence, current_a=current_a, pack_voltage_v=ocv_v * self.modules * self.cells,
                         dc_link_voltage_v=ocv_v * self.modules * self.cells, insulation_resistance_ohm=math.nan,
                         hvil_closed=True)
        pack.header.stamp, pack.header.frame_id = stamp, "current_sensor"
        self.pack_pub.publish(pack)

    def run(self, simulated_s: float, max_lead_s: float = 2.0, stall_wall_s: float = 10.0,
            on_stall_s: float = 5.0, report_every_s: float = 0.0) -> FeedResult:
        """Drive the clock from 0 for ``simulated_s``, never more than ``max_lead_s`` ahead of the
        outputs. When no output comes for ``stall_wall_s`` of wall time, that is a stall: the
        clock and the samples go on regardless (without waiting) for ``on_stall_s`` of simulated
        time, to see whether it recovers, and the run continues or ends there."""
        result = FeedResult()
        start = time.monotonic()
        last_report = start
        t_s = 0.0
        while t_s < simulated_s:
            t_s = round(t_s + STEP_S, 6)
            self.publish_step(t_s)
            waited_since = time.monotonic()
            while True:
                outputs, newest_s = self.newest()
                if t_s - newest_s <= max_lead_s:
                    break
                if outputs == 0:  # the first tick only takes its start time: keep the clock going,
                    time.sleep(STEP_S)  # at real time (a flood at start-up would only test the load)
                    break
                if time.monotonic() - waited_since > stall_wall_s:
                    result.stalls.append((t_s, newest_s))
                    for _ in range(int(on_stall_s / STEP_S)):
                        t_s = round(t_s + STEP_S, 6)
                        self.publish_step(t_s)
                        time.sleep(0.01)
                    break
                time.sleep(0.0005)
            if outputs:
                result.max_lag_s = max(result.max_lag_s, t_s - newest_s)
            if report_every_s and time.monotonic() - last_report > report_every_s:
                last_report = time.monotonic()
                print(f"  {t_s:8.0f} s simulated, {last_report - start:6.0f} s wall, "
                      f"{t_s / (last_report - start):5.1f}x, outputs {outputs}", flush=True)
            if len(result.stalls) >= 3:
                break
        result.wall_s = time.monotonic() - start
        result.simulated_s = t_s
        result.outputs, result.newest_output_s = self.newest()
        return result

    def close(self) -> None:
        self._running = False
        self._thread.join(5)
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()
