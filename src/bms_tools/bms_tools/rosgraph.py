"""Small helpers shared by the bag and introspection tools: names, message classes, contexts."""

from __future__ import annotations

import importlib
from typing import Any

import rclpy
from rclpy.context import Context
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from bms_common import topics

# Topics every ROS node creates for itself: never worth recording.
INFRASTRUCTURE_TOPICS = frozenset({"/rosout", "/parameter_events"})


def resolve(name: str) -> str:
    """A topic name as the graph shows it: relative names live in the BMS namespace."""
    return name if name.startswith("/") else f"{topics.NAMESPACE}/{name}"


def message_class(type_name: str) -> Any:
    """The rclpy message class of ``pkg/msg/Name`` (as rosidl_runtime_py's get_message does)."""
    package, kind, name = type_name.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError) as error:
        raise LookupError(
            f"message type {type_name} is not importable: build and source its package (env.sh)"
        ) from error


def open_node(name: str, args: list[str] | None = None) -> tuple[Context, Node]:
    """A node in a private context; signals stay with the caller so it can finish cleanly."""
    context = Context()
    # No args: rcl would otherwise read sys.argv and take `--remap a:=b` for its own remap rules.
    rclpy.init(args=args if args is not None else [], context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node(name, context=context, start_parameter_services=False)
    return context, node


def close_node(context: Context, node: Node) -> None:
    node.destroy_node()
    context.try_shutdown()
