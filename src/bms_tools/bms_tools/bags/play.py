"""``bms bag play``: publish a bag's serialized messages on their original schedule.

Each message is due at ``start + (t - t0) / rate``; the player sleeps until then and publishes the
raw bytes. The difference between due and actual publish time is the timing error, summarised
(p50/p99/max) at the end. Publishers use the first offered QoS stored in the bag.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock

from bms_tools.bags.progress import Progress
from bms_tools.bags.qos import from_bag_qos
from bms_tools.bags.reading import BagError, open_raw
from bms_tools.rosgraph import close_node, message_class, open_node, resolve

# Discovery is asynchronous: the player's graph view fills in over the first few hundred ms, so it
# watches the graph at least DISCOVERY_SETTLE_S, then waits (up to MATCH_TIMEOUT_S) until every
# subscriber it sees has matched its publishers, so the first messages reach them.
# With --wait-subscribers N the player instead waits (up to WAIT_SUBSCRIBERS_TIMEOUT_S) until each
# publisher has N matched subscriptions: a late-discovered subscriber is then never missed.
DISCOVERY_SETTLE_S = 0.5
MATCH_TIMEOUT_S = 3.0
WAIT_SUBSCRIBERS_TIMEOUT_S = 10.0
# Sleeping wakes up late by a scheduler tick; the last stretch before a deadline is spun.
SPIN_BEFORE_DUE_S = 0.0005


@dataclass
class PlayOptions:
    rate: float = 1.0
    loop: bool = False
    topics: list[str] = field(default_factory=list)
    remaps: dict[str, str] = field(default_factory=dict)
    clock: bool = False
    clock_hz: float = 100.0
    wait_subscribers: int = 0


@dataclass
class PlayStats:
    messages: int = 0
    errors_s: list[float] = field(default_factory=list)

    def summary(self) -> str:
        if not self.errors_s:
            return "timing error: no messages published"
        errors_ms = np.asarray(self.errors_s) * 1e3
        p50, p99 = np.percentile(errors_ms, [50, 99])
        return (f"timing error over {len(errors_ms)} messages: p50 {p50:.3f} ms, "
                f"p99 {p99:.3f} ms, max {errors_ms.max():.3f} ms")


def _wait_until(due: float, stop: threading.Event, tick: Callable[[], None] | None = None,
                tick_period_s: float = 0.0) -> None:
    """Sleep until monotonic time ``due``, calling ``tick`` every ``tick_period_s`` meanwhile."""
    while True:
        remaining = due - time.monotonic()
        if remaining <= SPIN_BEFORE_DUE_S or stop.is_set():
            break
        step = remaining - SPIN_BEFORE_DUE_S
        if tick is not None and tick_period_s > 0:
            step = min(step, tick_period_s)
            tick()
        time.sleep(step)
    while time.monotonic() < due and not stop.is_set():
        pass


def _wait_for_subscribers(node: Node, publishers: list[Publisher], minimum: int) -> None:
    start = time.monotonic()
    settled = start + (0.0 if minimum else DISCOVERY_SETTLE_S)
    deadline = start + (WAIT_SUBSCRIBERS_TIMEOUT_S if minimum else MATCH_TIMEOUT_S)

    def ready(publisher: Publisher) -> bool:
        wanted = max(minimum, node.count_subscribers(publisher.topic_name))
        return publisher.get_subscription_count() >= wanted

    while time.monotonic() < settled or not all(ready(p) for p in publishers):
        if time.monotonic() > deadline:
            print("bms bag play: some subscribers did not match in time; playing anyway")
            return
        time.sleep(0.01)


def play(path: Path, options: PlayOptions, stop: threading.Event, node: Node | None = None) -> int:
    """Publish the bag until its end (or ``stop``); 2 when it cannot be read. ``node``: publish
    through this node (the player executable's, with its remaps) instead of a private one."""
    if options.rate <= 0:
        print(f"bms bag play: --rate must be > 0, got {options.rate}")
        return 2
    try:
        reader = open_raw(path)
    except BagError as error:
        print(f"bms bag play: {error}")
        return 2
    wanted = {resolve(t) for t in options.topics}
    connections = [c for c in reader.connections if not wanted or c.topic in wanted]
    own_node = node is None
    if own_node:
        context, node = open_node("bms_bag_play")
    publishers: dict[int, Publisher] = {}
    for connection in connections:
        try:
            msg_type = message_class(connection.msgtype)
        except LookupError as error:
            print(f"bms bag play: skipping {connection.topic}: {error}")
            continue
        offered = connection.ext.offered_qos_profiles
        qos = from_bag_qos(offered[0]) if offered else QoSProfile(depth=10)
        target = options.remaps.get(connection.topic, connection.topic)
        publishers[connection.id] = node.create_publisher(msg_type, target, qos)
    bag_start, duration_ns = reader.start_time, max(1, reader.duration)
    clock = _BagClock(node.create_publisher(Clock, "/clock", 10), bag_start, options.rate) \
        if options.clock else None

    _wait_for_subscribers(node, list(publishers.values()), options.wait_subscribers)

    stats = PlayStats()
    progress = Progress()
    try:
        while not stop.is_set():
            wall_start = time.monotonic()
            if clock is not None:
                clock.restart(wall_start)
            for connection, timestamp, data in reader.messages(connections=connections):
                publisher = publishers.get(connection.id)
                if publisher is None:
                    continue
                due = wall_start + (timestamp - bag_start) / 1e9 / options.rate
                if clock is not None:
                    clock.next_message_ns = timestamp
                    _wait_until(due, stop, clock.tick, 1.0 / options.clock_hz)
                    clock.publish(timestamp)
                else:
                    _wait_until(due, stop)
                if stop.is_set():
                    break
                publisher.publish(data)
                stats.errors_s.append(time.monotonic() - due)
                stats.messages += 1
                progress.update(f"playing {path}: {(timestamp - bag_start) / 1e9:.1f} / "
                                f"{duration_ns / 1e9:.1f} s, {stats.messages} messages")
            if not options.loop:
                break
    finally:
        progress.finish(f"played {stats.messages} messages from {path} at rate {options.rate:g}")
        print(stats.summary())
        if own_node:
            close_node(context, node)
    return 0


class _BagClock:
    """Drives /clock from the bag's time: at each message and, between messages, interpolated."""

    def __init__(self, publisher: Publisher, bag_start_ns: int, rate: float) -> None:
        self.publisher = publisher
        self.bag_start_ns = bag_start_ns
        self.rate = rate
        self.wall_start = time.monotonic()
        self.next_message_ns = bag_start_ns

    def restart(self, wall_start: float) -> None:
        self.wall_start = wall_start
        self.next_message_ns = self.bag_start_ns

    def tick(self) -> None:
        elapsed_ns = int((time.monotonic() - self.wall_start) * self.rate * 1e9)
        self.publish(min(self.next_message_ns, self.bag_start_ns + elapsed_ns))

    def publish(self, stamp_ns: int) -> None:
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(stamp_ns, 1_000_000_000)
        self.publisher.publish(msg)
