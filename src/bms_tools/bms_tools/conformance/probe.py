"""The kit's own node: a private context spinning in a thread, recording what arrives and when."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from rclpy.signals import SignalHandlerOptions

from bms_common.plausibility import ClockRate


@dataclass
class Arrival:
    msg: Any
    now_s: float  # the kit's ROS clock at arrival (sim time under use_sim_time)
    wall_s: float  # monotonic
    clock_rate: float  # the kit's simulated seconds per wall second then


class Probe:
    def __init__(self, name: str = "bms_conformance", domain_id: int | None = None) -> None:
        """``domain_id`` None: the environment's ROS_DOMAIN_ID."""
        self.context = Context()
        rclpy.init(args=[], context=self.context, signal_handler_options=SignalHandlerOptions.NO,
                   domain_id=domain_id)
        self.node = rclpy.create_node(name, namespace="/bms", context=self.context,
                                      start_parameter_services=False)
        self.use_sim_time = False
        self.lock = threading.Lock()
        self.rate = ClockRate()
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._running:
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # noqa: BLE001 - a malformed message must not end the probe
                continue

    def use_simulated_time(self) -> None:
        """Judge on /clock from now on (a simulation)."""
        self.node.set_parameters([Parameter("use_sim_time", Parameter.Type.BOOL, True)])
        self.use_sim_time = True

    def now_s(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def collect(self, msg_type: type, topic: str, qos: QoSProfile) -> list[Arrival]:
        bucket: list[Arrival] = []

        def on_message(msg: Any) -> None:
            now_s, wall_s = self.now_s(), time.monotonic()
            rate = self.rate.observe(now_s, wall_s)
            with self.lock:
                bucket.append(Arrival(msg, now_s, wall_s, rate))

        self.node.create_subscription(msg_type, topic, on_message, qos)
        return bucket

    def snapshot(self, bucket: list[Arrival]) -> list[Arrival]:
        with self.lock:
            return list(bucket)

    def call(self, srv_type: type, name: str, request: Any, timeout_s: float = 10.0) -> Any | None:
        """The service's answer, or None when it is not offered or does not answer in time."""
        client = self.node.create_client(srv_type, name)
        try:
            deadline = time.monotonic() + timeout_s
            while not client.service_is_ready():
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.05)
            future = client.call_async(request)
            while not future.done():
                if time.monotonic() > deadline:
                    return None
                time.sleep(0.02)
            return future.result()
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        self._running = False
        self._thread.join(5)
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def wait_until(predicate: Any, timeout_s: float, poll_s: float = 0.05) -> Any:
    """The predicate's first truthy value within ``timeout_s``, else its last (falsy) value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(poll_s)
