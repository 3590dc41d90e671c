"""TimerWatchdog: a timer that stops while inputs arrive is reported; a paused simulated clock
(no time passes) is not a stall."""

from __future__ import annotations

import time

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock

from bms_common.stamps import to_stamp
from bms_common.testing import isolate_dds, wait_for
from bms_common.timer_watchdog import TimerWatchdog


@pytest.fixture
def context():
    isolate_dds()
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


def test_a_stopped_timer_is_reported_and_its_return_noticed(context) -> None:
    node = Node("watched", context=context)
    try:
        ticks = []
        timer = node.create_timer(0.02, lambda: (ticks.append(1), watchdog.ticked()))
        watchdog = TimerWatchdog(node, 0.02, "the step", missed_periods=5, wall_s=0.2)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)

        def spin_and_feed() -> bool:
            executor.spin_once(timeout_sec=0.01)
            return watchdog.input_arrived()

        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:  # a running timer: inputs never see a stall
            assert not spin_and_feed()
        assert len(ticks) > 5
        timer.cancel()  # what the EventsExecutor did to the estimator's timer
        wait_for(spin_and_feed, 10, "the watchdog to report the stopped timer")
        assert watchdog.stalls == 1
        timer.reset()
        wait_for(lambda: not spin_and_feed(), 10, "the watchdog to see the timer run again")
        executor.shutdown()
    finally:
        node.destroy_node()


def test_a_paused_simulated_clock_is_no_stall(context) -> None:
    node = Node("watched_sim", context=context,
                parameter_overrides=[Parameter("use_sim_time", Parameter.Type.BOOL, True)])
    clock_pub = node.create_publisher(Clock, "/clock", 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        watchdog = TimerWatchdog(node, 0.1, "the step", missed_periods=5, wall_s=0.1)
        time.sleep(0.3)  # wall time passes, simulated time does not
        assert not watchdog.input_arrived()

        def clock_moved() -> bool:
            clock_pub.publish(Clock(clock=to_stamp(100.0)))
            executor.spin_once(timeout_sec=0.05)
            return node.get_clock().now().nanoseconds > 50e9

        wait_for(clock_moved, 10, "the node's clock to follow /clock")
        assert watchdog.input_arrived()  # 100 s of simulated time without a tick
        executor.shutdown()
    finally:
        node.destroy_node()
