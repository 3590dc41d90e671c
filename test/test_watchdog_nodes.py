"""The timer watchdog in the safety supervisor, the contactor node and a self-timed module node:
each says so when its timer stops while its inputs keep arriving, and when the timer runs again
(issue 19, "a node whose timer stops firing while its inputs arrive must notice and say so").

In process, without an executor: nothing runs the nodes' timers (a stopped timer, as the
EventsExecutor left the estimator's), and the test delivers inputs by calling the nodes'
subscription callbacks. The watchdog's thresholds are shortened so each case takes a fraction of
a second; the node clock is the wall clock here.
"""

from __future__ import annotations

import numpy as np
import pytest
import rclpy
from rclpy.parameter import Parameter

from bms_common.lifecycle import TransitionCallbackReturn
from bms_common.testing import isolate_dds, wait_for
from bms_interfaces.msg import BalancingCommand, ContactorCommand, PackMeasurement, SafetyStatus
from bms_master.contactor_node import ContactorNode
from bms_safety.supervisor_node import SupervisorNode
from bms_slave.afe import AfeBackend, AfeDiagnostics, AfeReading
from bms_slave.module_node import ModuleNode

QUICK_S = 0.1  # wall and node-clock time without a tick before the watchdog speaks


class QuietAfe(AfeBackend):
    """Four cells at 3.7 V, for a module node that is never sampled here anyway."""

    cell_count = 4
    sensor_count = 1

    def read(self) -> AfeReading:
        return AfeReading(0.0, np.full(4, 3.7), np.full(1, 25.0), np.zeros(4, dtype=bool),
                          np.zeros(4, dtype=np.uint8), 0)

    def set_balancing(self, mask: np.ndarray) -> None:
        pass

    def diagnostics(self) -> AfeDiagnostics:
        return AfeDiagnostics("quiet", True, "", 0, 0)


@pytest.fixture
def context():
    isolate_dds()
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


def supervisor(context):
    node = SupervisorNode(context=context, parameter_overrides=[
        Parameter("state_dir", value="none"), Parameter("lifecycle_manager", value="")])
    return node, node.tick, lambda: node.on_pack(PackMeasurement())


def contactor(context):
    node = ContactorNode(context=context)
    inputs = iter(range(10**6))
    return node, node.on_check_timer, lambda: (
        node.on_safety(SafetyStatus(level=SafetyStatus.LEVEL_OK)) if next(inputs) % 2
        else node.on_command(ContactorCommand()))


def module(context):
    node = ModuleNode(3, QuietAfe(), context=context)
    return node, node.sample_now, lambda: node.on_balancing(BalancingCommand(module_id=0, balance=[False] * 4))


def reports(errors: list[str]) -> list[str]:
    return [text for text in errors if "while inputs keep arriving" in str(text)]


def watchdog_of(node):
    return node._watchdog if isinstance(node, ModuleNode) else node.watchdog


@pytest.mark.parametrize("make", [supervisor, contactor, module], ids=["supervisor", "contactor", "module"])
def test_a_stopped_timer_with_inputs_arriving_is_reported(context, make) -> None:
    node, tick, deliver_input = make(context)
    errors, warnings = [], []
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        watchdog = watchdog_of(node)
        watchdog.wall_s = watchdog.limit_s = QUICK_S
        logger = node.get_logger()
        logger.error, logger.warning = errors.append, warnings.append  # what the node says
        tick()
        deliver_input()  # the timer has just run: no stall
        assert not watchdog.stalled and not reports(errors)
        wait_for(lambda: (deliver_input(), watchdog.stalled)[1], 10, "the watchdog to report the stopped timer")
        assert watchdog.stalls == 1
        assert len(reports(errors)) == 1, errors
        tick()  # the timer runs again
        assert not watchdog.stalled and any("runs again" in text for text in warnings), warnings
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
    finally:
        node.destroy_node()
