"""``bms bag record`` and the ``recorder`` node: raw CDR from the live graph into a rosbag2 bag.

The recorder polls the graph (``get_topic_names_and_types``; every 50 ms for its first 10 s, then
every 0.5 s) so topics that appear late are recorded too; each topic is subscribed raw (no deserialisation cost) once a publisher exists, with
a QoS compatible with every offered profile, and the offered profiles are stored in metadata.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String

from bms_common import topics
from bms_common.lifecycle import take_pending
from bms_tools.bags.progress import Progress, human_bytes
from bms_tools.bags.qos import subscription_qos, to_bag_qos
from bms_tools.bags.typestore import TypeLibrary
from bms_tools.bags.writer import SplitLimits, SplitWriter, TopicSpec
from bms_tools.rosgraph import (
    INFRASTRUCTURE_TOPICS,
    close_node,
    message_class,
    open_node,
    resolve,
)

DISCOVERY_PERIOD_S = 0.5
# A system starting alongside the recorder creates its publishers in the first seconds: poll
# the graph often then, so little of a fast simulation's start is lost before subscribing.
STARTUP_DISCOVERY_PERIOD_S = 0.05
STARTUP_S = 10.0
DEFAULT_EXTRA_TOPICS = frozenset({t.absolute for t in topics.CONTRACT_TOPICS} | {"/clock"})
# A recorder in a launch says when it holds every publisher the system started with (latched, in
# its own namespace): a simulation waits for it, so a bag has every node's first samples.
STATUS_TOPIC = "~/status"
MANAGER_STATUS = "lifecycle_manager/status"
READY = "ready"
READY_STABLE_S = 0.3  # every publisher matched for this long after the manager reported active


def default_output() -> Path:
    return Path(datetime.now().strftime("rosbag2_%Y_%m_%d-%H_%M_%S"))


@dataclass
class RecordOptions:
    output: Path = field(default_factory=default_output)
    storage: str = "mcap"
    topics: list[str] = field(default_factory=list)  # empty: every /bms topic plus the contract's
    all_topics: bool = False
    limits: SplitLimits = field(default_factory=SplitLimits)

    def wants(self, name: str) -> bool:
        if name in INFRASTRUCTURE_TOPICS:
            return False
        if self.all_topics:
            return True
        if self.topics:
            return name in {resolve(t) for t in self.topics}
        return name.startswith(topics.NAMESPACE + "/") or name in DEFAULT_EXTRA_TOPICS


class Recorder:
    """Records in a background thread: ``start()``, then ``stop()`` writes metadata.yaml.

    ``spun_by_caller``: the node is spun by the caller's executor (a container hosting the
    recorder with other nodes): discovery runs on a timer of the node, messages are written in
    the caller's thread, and ``stop()`` must be called from that thread too."""

    def __init__(self, options: RecordOptions, node: Node | None = None, spun_by_caller: bool = False,
                 announce: bool = False) -> None:
        if spun_by_caller and node is None:
            raise ValueError("a recorder spun by the caller needs the caller's node")
        self.options = options
        self._spun_by_caller = spun_by_caller
        self._timer = None
        self._next_discovery = 0.0
        self._owns_node = node is None
        if node is None:
            self._context, node = open_node("bms_bag_record")
        else:
            self._context = node.context
        self.node = node
        self.writer = SplitWriter(options.output, options.storage, options.limits)
        self.types = TypeLibrary()
        self.warnings: list[str] = []
        self._lock = threading.Lock()
        self._subscriptions: dict[str, Any] = {}
        self._writers: dict[str, Callable[[bytes], None]] = {}
        self._skipped: set[str] = set()
        self._running = False
        self._writing = False  # from start() until the writer closes: nothing received is dropped
        self._thread: threading.Thread | None = None
        self._executor = None if spun_by_caller else SingleThreadedExecutor(context=self._context)
        self.started_at = 0.0
        # announce: publish readiness on STATUS_TOPIC (the recorder of a launch, docs/recording.md).
        self._status_pub = self._announced = self._matched_since = None
        self._manager_status = ""
        if announce:
            self._status_pub = node.create_publisher(String, STATUS_TOPIC, topics.LATCHED)
            node.create_subscription(String, MANAGER_STATUS, self._on_manager_status, topics.LATCHED)
            self._publish_status("waiting for the lifecycle manager to report the system active")

    @property
    def recorded_topics(self) -> list[str]:
        return sorted(self._subscriptions)

    def _warn(self, text: str) -> None:
        self.warnings.append(text)
        self.node.get_logger().warning(text)

    def discover(self) -> None:
        for name, type_names in self.node.get_topic_names_and_types():
            if name in self._subscriptions or name in self._skipped or not self.options.wants(name):
                continue
            publishers = self.node.get_publishers_info_by_topic(name)
            if not publishers:
                continue  # the offered QoS is unknown until a publisher exists
            self._subscribe(name, type_names[0], publishers)

        if self._status_pub is not None and self._announced != READY:
            self._update_status()

    def unmatched(self) -> list[str]:
        """Recorded topics with a publisher in the graph that this recorder's reader has not
        matched yet: its messages would not reach the bag."""
        missing = []
        for name, subscription in self._subscriptions.items():
            offered, matched = self.node.count_publishers(name), subscription.get_publisher_count()
            if matched < offered:
                missing.append(f"{name} ({matched} of {offered} publishers)")
        return missing

    def _on_manager_status(self, msg: String) -> None:
        self._manager_status = msg.data

    def _publish_status(self, text: str) -> None:
        if text != self._announced:
            self._announced = text
            self._status_pub.publish(String(data=text))

    def _update_status(self) -> None:
        """Ready once the lifecycle manager reports every managed node active (so their
        publishers exist) and every publisher of a recorded topic has been matched for
        READY_STABLE_S; from then on it stays ready."""
        if self._manager_status != "active":
            self._matched_since = None
            return
        missing = self.unmatched()
        now = time.monotonic()
        if missing:
            self._matched_since = None
            self._publish_status(f"waiting to match {', '.join(missing)}")
        elif self._matched_since is None:
            self._matched_since = now
        elif now - self._matched_since >= READY_STABLE_S:
            self._publish_status(READY)

    def _subscribe(self, name: str, type_name: str, publishers: list) -> None:
        try:
            msgdef, rihs01 = self.types.definition(type_name)
            msg_type = message_class(type_name)
        except LookupError as error:
            self._skipped.add(name)
            self._warn(f"not recording {name}: {error}")
            return
        offered_hashes = {str(p.topic_type_hash) for p in publishers}
        if rihs01 not in offered_hashes:
            self._warn(f"{name}: installed {type_name} hashes to {rihs01}, publishers offer "
                       f"{sorted(offered_hashes)}: definitions differ (interface version?)")
        offered = [p.qos_profile for p in publishers]
        spec = TopicSpec(name, type_name, msgdef, rihs01, [to_bag_qos(q) for q in offered])
        with self._lock:
            self.writer.add_topic(spec)
        clock = self.node.get_clock()

        def write(data: bytes) -> None:
            stamp = clock.now().nanoseconds
            with self._lock:
                if self._writing:
                    self.writer.write(name, stamp, data)

        self._subscriptions[name] = self.node.create_subscription(
            msg_type, name, write, subscription_qos(offered), raw=True
        )
        self._writers[name] = write

    def _drain(self) -> None:
        """Write what arrived but was not taken yet. A recorder that shares a busy executor (a
        loaded container) falls behind on the busiest topics, and would lose the last second of
        cell measurements while it kept /clock: the replay then saw every module go stale."""
        for name, subscription in self._subscriptions.items():
            take_pending(subscription, self._writers[name], limit=1_000_000)

    def _spin(self) -> None:
        next_discovery = 0.0
        starting = True
        while self._running:
            if time.monotonic() >= next_discovery:
                self.discover()
                starting = time.monotonic() - self.started_at < STARTUP_S
                next_discovery = time.monotonic() + (STARTUP_DISCOVERY_PERIOD_S if starting else DISCOVERY_PERIOD_S)
            self._executor.spin_once(timeout_sec=0.01 if starting else 0.05)
        self._drain()
        # Storage writers (sqlite3) are bound to the thread that opened them: close here too.
        with self._lock:
            self._writing = False
        self.writer.close()

    def _discovery_tick(self) -> None:
        now = time.monotonic()
        if now - self.started_at < STARTUP_S or now >= self._next_discovery:
            self.discover()
            self._next_discovery = now + DISCOVERY_PERIOD_S

    def start(self) -> None:
        self._running = self._writing = True
        self.started_at = time.monotonic()
        if self._spun_by_caller:
            self._timer = self.node.create_timer(STARTUP_DISCOVERY_PERIOD_S, self._discovery_tick)
            return
        self._executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, name="bag-recorder", daemon=True)
        self._thread.start()

    def stop(self) -> Path:
        """Stop recording, close the last split and write metadata; returns the bag directory."""
        with self._lock:
            self._running = False
        if self._spun_by_caller:
            if self._timer is not None:
                self.node.destroy_timer(self._timer)
            self._drain()
            with self._lock:
                self._writing = False
            for subscription in self._subscriptions.values():
                self.node.destroy_subscription(subscription)
            self.writer.close()  # in the caller's thread, which also wrote
            return self.options.output
        if self._thread is not None:
            self._thread.join()
        for subscription in self._subscriptions.values():
            self.node.destroy_subscription(subscription)
        self._executor.remove_node(self.node)
        self._executor.shutdown()
        if self._owns_node:
            close_node(self._context, self.node)
        return self.options.output

    def status(self) -> str:
        elapsed = time.monotonic() - self.started_at
        dropped = f", {self.writer.dropped_files} old splits dropped" if self.writer.dropped_files else ""
        return (f"recording {self.options.output}: {len(self._subscriptions)} topics, "
                f"{self.writer.messages} messages, {human_bytes(self.writer.bytes)}, "
                f"{elapsed:.0f} s{dropped}")


def run_until_stopped(recorder: Recorder, stop: threading.Event, duration_s: float = 0.0,
                      progress: Progress | None = None) -> Path:
    """Record until ``stop`` is set (signal) or ``duration_s`` elapsed, showing progress."""
    recorder.start()
    deadline = recorder.started_at + duration_s if duration_s > 0 else float("inf")
    while not stop.wait(0.1) and time.monotonic() < deadline:
        if progress is not None:
            progress.update(recorder.status())
    summary = recorder.status()
    path = recorder.stop()
    if progress is not None:
        progress.finish(summary.replace("recording", "recorded", 1))
    return path
