"""Latched ComponentInfo publishing and the peer interface-version check.

Every node publishes who it is once, on a transient-local topic, so a late tool (``bms node
list``) or peer still sees it. Each node also listens to its peers and logs an error when one of
them speaks a different MAJOR interface version: that is the first thing to look at when a
supplier's node is swapped in and data stops making sense.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from rclpy.node import Node

from bms_common import topics
from bms_common.version import INTERFACE_VERSION, PACKAGE_VERSION, compatible
from bms_interfaces.msg import ComponentInfo

# Names the host in ComponentInfo instead of the hostname: boards cloned from one image share a
# hostname, and the multi-host test's namespaces share the machine's.
HOST_ENV = "BMS_HOST"


def host_name() -> str:
    """The host (board) this process runs on: ``$BMS_HOST``, else the hostname."""
    return os.environ.get(HOST_ENV) or socket.gethostname()


@dataclass(frozen=True)
class Identity:
    kind: str  # ComponentInfo.KIND_*
    implementation: str
    vendor: str = "open-bms"
    version: str = PACKAGE_VERSION
    hardware_id: str = ""


class ComponentAnnouncer:
    """Publishes this node's ComponentInfo and checks the ones its peers publish."""

    def __init__(self, node: Node, identity: Identity) -> None:
        self._node = node
        self.incompatible: dict[str, str] = {}  # node name -> their interface version
        self.peers: dict[str, ComponentInfo] = {}
        self._publisher = node.create_publisher(ComponentInfo, topics.COMPONENTS.name, topics.LATCHED)
        self._subscription = node.create_subscription(
            ComponentInfo, topics.COMPONENTS.name, self._on_peer, topics.LATCHED_MANY
        )
        msg = ComponentInfo()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.header.frame_id = node.get_name()
        msg.node_name = node.get_fully_qualified_name()
        msg.kind = identity.kind
        msg.vendor = identity.vendor
        msg.implementation = identity.implementation
        msg.version = identity.version
        msg.interface_version = INTERFACE_VERSION
        msg.hardware_id = identity.hardware_id
        msg.host = host_name()
        self.info = msg
        self._publisher.publish(msg)

    def _on_peer(self, msg: ComponentInfo) -> None:
        self.peers[msg.node_name] = msg
        if msg.node_name == self.info.node_name or compatible(INTERFACE_VERSION, msg.interface_version):
            return
        if msg.node_name not in self.incompatible:
            self._node.get_logger().error(
                f"peer {msg.node_name} ({msg.implementation} {msg.version} by {msg.vendor}) speaks "
                f"bms_interfaces {msg.interface_version!r}, this node speaks {INTERFACE_VERSION}: "
                "major versions differ, messages between them are not compatible"
            )
        self.incompatible[msg.node_name] = msg.interface_version

    def destroy(self) -> None:
        self._node.destroy_subscription(self._subscription)
        self._node.destroy_publisher(self._publisher)
