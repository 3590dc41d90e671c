"""A process with a node on simulated time spins on the classic executor (docs/lifecycle.md,
"Executors"); wall-clock processes keep the cheaper EventsExecutor."""

from __future__ import annotations

import pytest
import rclpy
from rclpy.node import Node
from rclpy.parameter import Parameter

from bms_common.lifecycle import make_executor


@pytest.fixture
def context():
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


def kind(executor) -> str:
    return type(executor).__name__


def node(context, name: str, use_sim_time: bool) -> Node:
    return Node(name, context=context,
                parameter_overrides=[Parameter("use_sim_time", Parameter.Type.BOOL, use_sim_time)])


def test_sim_time_anywhere_in_the_process_selects_the_classic_executor(context, monkeypatch) -> None:
    monkeypatch.delenv("BMS_EXECUTOR", raising=False)
    wall, sim = node(context, "wall", False), node(context, "sim", True)
    try:
        assert kind(make_executor([wall])) == "EventsExecutor"
        assert kind(make_executor([wall, sim])) == "SingleThreadedExecutor"
        monkeypatch.setenv("BMS_EXECUTOR", "events")
        assert kind(make_executor([sim])) == "EventsExecutor"
        monkeypatch.setenv("BMS_EXECUTOR", "single")
        assert kind(make_executor([wall])) == "SingleThreadedExecutor"
    finally:
        wall.destroy_node()
        sim.destroy_node()
