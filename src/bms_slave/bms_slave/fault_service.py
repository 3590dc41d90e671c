"""``~/inject_fault`` on a simulated node (the plant, a module, the current sensor), backed by the
node's :class:`~bms_slave.faults.FaultInjector` (docs/simulation.md, "Fault injection")."""

from __future__ import annotations

from rclpy.node import Node

from bms_common import topics
from bms_interfaces.srv import InjectFault

from .faults import FaultInjector


def inject_fault_service(node: Node, injector: FaultInjector) -> None:
    """Offer ``~/inject_fault`` on ``node``; a refused request is answered and logged, never raised."""

    def handle(request: InjectFault.Request, response: InjectFault.Response) -> InjectFault.Response:
        response.success, response.message = injector.handle(
            request.fault, request.module_id, request.cell, request.magnitude, request.clear)
        if response.success:
            node.get_logger().info(f"inject_fault: {response.message}")
        else:
            node.get_logger().warning(f"inject_fault refused: {response.message}")
        return response

    node.create_service(InjectFault, topics.INJECT_FAULT, handle)
