"""``bms topic list|echo|hz`` and ``bms node list``: a look into a live system without ``ros2``."""

from __future__ import annotations

import argparse
import math
import os
import signal
import threading
import time
from collections import deque
from typing import Any

import numpy as np
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from bms_common import topics
from bms_tools.rosgraph import INFRASTRUCTURE_TOPICS, close_node, message_class, open_node, resolve

# Discovery is complete once the graph has not changed for this long.
SETTLE_S = 1.0
# Across hosts an announcement lost on the network is repeated only at Fast DDS's next periodic
# participant announcement (3 s): `bms node list` waits that long for the graph to settle there.
MULTI_HOST_SETTLE_S = 4.0


def default_settle_s() -> float:
    """SETTLE_S on one host; MULTI_HOST_SETTLE_S with discovery beyond it (README, multi-host)."""
    local = os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST") in ("LOCALHOST", "OFF")
    return SETTLE_S if local and not os.environ.get("ROS_STATIC_PEERS") else MULTI_HOST_SETTLE_S


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _wait_for_type(node: Node, name: str, stop: threading.Event, timeout_s: float) -> str | None:
    deadline = time.monotonic() + timeout_s if timeout_s > 0 else math.inf
    while not stop.is_set() and time.monotonic() < deadline:
        for topic, types in node.get_topic_names_and_types():
            if topic == name:
                return types[0]
        time.sleep(0.05)
    return None


def subscriber_qos(node: Node, name: str) -> QoSProfile:
    """The contract's QoS for contract topics; else one matching what the publishers offer."""
    contract = topics.topic_by_name(name)
    if contract is not None:
        return topics.LATCHED_MANY if contract.qos == topics.LATCHED else contract.qos
    offered = [p.qos_profile for p in node.get_publishers_info_by_topic(name)]
    reliable = bool(offered) and all(p.reliability == ReliabilityPolicy.RELIABLE for p in offered)
    latched = bool(offered) and all(p.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in offered)
    return QoSProfile(
        depth=10,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def to_yaml(msg: Any, indent: int = 0) -> str:
    """A YAML-like rendering of an rclpy message, as ``ros2 topic echo`` prints it."""
    pad = "  " * indent
    lines = []
    for field in msg.get_fields_and_field_types():
        value = getattr(msg, field)
        if hasattr(value, "get_fields_and_field_types"):
            lines.append(f"{pad}{field}:\n{to_yaml(value, indent + 1)}")
        elif isinstance(value, list | tuple) and value and hasattr(value[0], "get_fields_and_field_types"):
            lines.append(f"{pad}{field}:")
            for element in value:
                body = to_yaml(element, indent + 2).lstrip()
                lines.append(f"{pad}- {body}")
        elif isinstance(value, np.ndarray | list | tuple | bytes | bytearray):
            items = value.tolist() if isinstance(value, np.ndarray) else list(value)
            lines.append(f"{pad}{field}: {items}")
        elif isinstance(value, str):
            lines.append(f"{pad}{field}: {value!r}")
        else:
            lines.append(f"{pad}{field}: {value}")
    return "\n".join(lines)


def _topic_list(args: argparse.Namespace) -> int:
    context, node = open_node("bms_topic_list")
    try:
        # Discovery is asynchronous: list once the graph has stopped changing for SETTLE_S (and
        # is not empty), or at the latest after --wait.
        deadline, entries, stable_since = time.monotonic() + args.wait, [], time.monotonic()
        while time.monotonic() < deadline:
            current = [(n, t) for n, t in node.get_topic_names_and_types()
                       if args.all or n not in INFRASTRUCTURE_TOPICS]
            if current != entries:
                entries, stable_since = current, time.monotonic()
            elif entries and time.monotonic() - stable_since >= SETTLE_S:
                break
            time.sleep(0.05)  # polling interval of the graph, not synchronisation
        width = max((len(n) for n, _ in entries), default=0)
        for name, types in sorted(entries):
            print(f"{name:<{width}}  [{', '.join(types)}]" if args.show_types else name)
    finally:
        close_node(context, node)
    return 0


def _subscribe(args: argparse.Namespace, node_name: str, on_message: Any) -> tuple[Any, ...] | None:
    stop = _stop_event()
    context, node = open_node(node_name)
    name = resolve(args.topic)
    type_name = _wait_for_type(node, name, stop, args.timeout)
    if type_name is None:
        close_node(context, node)
        if not stop.is_set():
            print(f"no publisher of {name} appeared within {args.timeout:g} s")
        return None
    node.create_subscription(message_class(type_name), name, on_message, subscriber_qos(node, name))
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    return stop, context, node, executor


def _topic_echo(args: argparse.Namespace) -> int:
    limit = 1 if args.once else args.count
    received = [0]

    def on_message(msg: Any) -> None:
        if limit and received[0] >= limit:
            return
        received[0] += 1
        print(to_yaml(msg) + "\n---", flush=True)

    opened = _subscribe(args, "bms_topic_echo", on_message)
    if opened is None:
        return 1
    stop, context, node, executor = opened
    while not stop.is_set() and not (limit and received[0] >= limit):
        executor.spin_once(timeout_sec=0.1)
    executor.shutdown()
    close_node(context, node)
    return 0


def rate_line(arrivals: deque[float]) -> str:
    periods = np.diff(np.asarray(arrivals))
    mean = periods.mean()
    return (f"average rate: {1.0 / mean:.3f} Hz  min: {periods.min():.4f} s  max: "
            f"{periods.max():.4f} s  std dev: {periods.std():.5f} s  window: {len(arrivals)}")


def _topic_hz(args: argparse.Namespace) -> int:
    arrivals: deque[float] = deque(maxlen=args.window + 1)
    opened = _subscribe(args, "bms_topic_hz", lambda _msg: arrivals.append(time.monotonic()))
    if opened is None:
        return 1
    stop, context, node, executor = opened
    end = time.monotonic() + args.duration if args.duration > 0 else math.inf
    next_print = time.monotonic() + 1.0
    while not stop.is_set() and time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
        if time.monotonic() >= next_print:
            next_print += 1.0
            print(rate_line(arrivals) if len(arrivals) > 2 else "no new messages", flush=True)
    executor.shutdown()
    close_node(context, node)
    return 0


def _node_list(args: argparse.Namespace) -> int:
    from bms_interfaces.msg import ComponentInfo

    context, node = open_node("bms_node_list")
    infos: dict[str, ComponentInfo] = {}
    node.create_subscription(ComponentInfo, topics.COMPONENTS.absolute,
                             lambda m: infos.__setitem__(m.node_name, m), topics.LATCHED_MANY)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    own = node.get_fully_qualified_name()
    deadline = time.monotonic() + args.wait
    names: list[str] = []
    stable_since = time.monotonic()
    # Latched ComponentInfo arrives shortly after discovery: wait until the node set has stopped
    # changing for SETTLE_S and every node has one (other tools without one end it at --wait).
    while time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
        current = sorted(f"{ns.rstrip('/')}/{n}" for n, ns in node.get_node_names_and_namespaces())
        current = [n for n in current if n != own]
        if current != names:
            names, stable_since = current, time.monotonic()
        elif names and all(n in infos for n in names) and time.monotonic() - stable_since >= args.settle:
            break
    for name in names:
        info = infos.get(name)
        if info is None:
            print(f"{name}  (no ComponentInfo)")
            continue
        hardware = f" hardware={info.hardware_id}" if info.hardware_id else ""
        print(f"{name}  host={info.host or '?'} kind={info.kind} vendor={info.vendor} "
              f"implementation={info.implementation} version={info.version} "
              f"interface={info.interface_version}{hardware}")
    executor.shutdown()
    close_node(context, node)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    topic = sub.add_parser("topic", help="inspect live topics")
    topic_sub = topic.add_subparsers(dest="topic_command", metavar="TOPIC_COMMAND", required=True)
    listing = topic_sub.add_parser("list", help="topics in the graph")
    listing.add_argument("-t", "--show-types", action="store_true")
    listing.add_argument("-a", "--all", action="store_true", help="include /rosout and friends")
    listing.add_argument("--wait", type=float, default=10.0, metavar="S",
                         help="time given to discovery before listing")
    listing.set_defaults(handler=_topic_list)
    for name, handler, help_text in (("echo", _topic_echo, "print messages of a topic"),
                                     ("hz", _topic_hz, "measure the publishing rate")):
        command = topic_sub.add_parser(name, help=help_text)
        command.add_argument("topic", help="name; relative names are under /bms")
        command.add_argument("--timeout", type=float, default=0.0, metavar="S",
                             help="give up if no publisher appears (0 = wait forever)")
        command.set_defaults(handler=handler)
        if name == "echo":
            command.add_argument("--once", action="store_true")
            command.add_argument("-n", "--count", type=int, default=0, help="stop after N messages")
        else:
            command.add_argument("--window", type=int, default=100, help="periods averaged")
            command.add_argument("--duration", type=float, default=0.0, metavar="S",
                                 help="stop after S seconds (0 = until Ctrl-C)")
    node = sub.add_parser("node", help="inspect live nodes")
    node_sub = node.add_subparsers(dest="node_command", metavar="NODE_COMMAND", required=True)
    node_list = node_sub.add_parser("list", help="nodes with their ComponentInfo")
    node_list.add_argument("--wait", type=float, default=10.0, metavar="S",
                           help="longest wait for ComponentInfo of every node")
    node_list.add_argument("--settle", type=float, default=default_settle_s(), metavar="S",
                           help="list once the node set has not changed for S seconds (default 1; 4 with "
                                "discovery beyond this host: a lost announcement is repeated after 3 s)")
    node_list.set_defaults(handler=_node_list)
