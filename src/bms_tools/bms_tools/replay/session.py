"""Fresh estimator and supervisor processes driven in lockstep from a feed.

Why lockstep makes the outputs reproducible: both nodes act only on their sim-time timers, whose
phase is fixed because they are created before the first /clock (at sim time 0: ticks fall on
multiples of their period). For every clock step the session publishes the inputs stamped up to
that time (``release_steps``) and waits until the nodes' DDS readers have acknowledged them, then publishes /clock,
then waits for the outputs the nodes' timers produce at that step (supervisor: every period;
estimator: every ``period_s``). So every tick sees the same inputs and carries the same stamp,
however fast the machine is.
"""

from __future__ import annotations

import bisect
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rcl_interfaces.srv import GetParameters, ListParameters
from rclpy.context import Context
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rosgraph_msgs.msg import Clock

from bms_common import topics
from bms_common.testing import NodeProcess, executable, wait_for
from bms_interfaces.msg import CellStates, PowerLimits, SafetyStatus
from bms_tools.replay.dds_profile import ENV, write_replay_profile
from bms_tools.replay.feed import Feed, Input
from bms_tools.rosgraph import message_class

NAMESPACE = "/bms"
# A message stamped a hair after a clock step (float seconds -> ns) belongs to that step.
RELEASE_SLACK_NS = 1_000_000
STARTUP_TIMEOUT_S = 30.0
ACK_TIMEOUT_S = 2.0
OUTPUT_TIMEOUT_S = 1.0
OUTPUTS = {"/bms/cell_states": CellStates, "/bms/power_limits": PowerLimits,
           "/bms/safety_status": SafetyStatus}


def node_command(package: str, name: str, parameters: dict[str, str], log_level: str) -> list[str]:
    args = [executable(package, name), "--ros-args", "-r", f"__ns:={NAMESPACE}",
            "--log-level", log_level]
    for key, value in parameters.items():
        args += ["-p", f"{key}:={value}"]
    return args


def release_steps(feed: Feed) -> dict[int, list[Input]]:
    """The clock step at which each input is published: the first one at or after its stamp, in
    the bag's order within a step. Not simply the bag's order: a bag is in the recorder's receive
    order, which interleaves topics as its executor took them (one message per topic per wait),
    so a module sample may sit in the bag behind a later current sample; it still existed at its
    own stamp, for the nodes that were live. Inputs stamped after the last step are not played."""
    steps: dict[int, list[Input]] = {}
    for item in feed.inputs:
        step = bisect.bisect_left(feed.clock_ns, item.stamp_ns - RELEASE_SLACK_NS)
        if step < len(feed.clock_ns):
            steps.setdefault(step, []).append(item)
    return steps


class ReplaySession:
    def __init__(self, pack: str, estimator_params: dict[str, str], supervisor_params: dict[str, str],
                 log_dir: Path, domain_id: int) -> None:
        self.log_dir = log_dir
        self.given = {"estimator": sorted(estimator_params), "safety_supervisor": sorted(supervisor_params)}
        # Fast acknowledgements for the lockstep (dds_profile.py), for the fresh nodes and for this
        # process's participant (Fast DDS reads the file when its first participant is created).
        profile = str(write_replay_profile(log_dir))
        self._profile_before = os.environ.get(ENV)
        os.environ[ENV] = profile
        try:
            self._start(pack, estimator_params, supervisor_params, log_dir, domain_id, profile)
        except BaseException:
            for process in getattr(self, "processes", []):
                process.stop()
            self._restore_profile()
            raise

    def _restore_profile(self) -> None:
        if self._profile_before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = self._profile_before

    def _start(self, pack: str, estimator_params: dict[str, str], supervisor_params: dict[str, str],
               log_dir: Path, domain_id: int, profile: str) -> None:
        # The classic executor: its timers are evaluated in the wait set right after the /clock
        # message that makes them due, so no tick is skipped or stamped late.
        env = {"ROS_DOMAIN_ID": str(domain_id), "BMS_EXECUTOR": "single", ENV: profile}
        self.state_dir = tempfile.mkdtemp(prefix="bms-replay-estimator-")
        common = {"pack": pack, "use_sim_time": "true"}
        self.processes = [
            NodeProcess(node_command("bms_estimation", "estimator", {
                # CellStates at every tick: one next to each recorded one, wherever it fell.
                **common, "state_dir": self.state_dir, "cell_states_period_s": "0.0",
                **estimator_params}, "warn"),
                log_dir / "estimator.log", env),
            NodeProcess(node_command("bms_safety", "supervisor", {
                **common, "state_dir": "none", "autostart": "true", **supervisor_params}, "warn"),
                log_dir / "supervisor.log", env),
        ]
        self.context = Context()
        rclpy.init(args=[], context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("replay_check", namespace=NAMESPACE, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self.outputs: dict[str, dict[int, Any]] = {topic: {} for topic in OUTPUTS}
        for topic, msg_type in OUTPUTS.items():
            self.node.create_subscription(msg_type, topic, self._collector(topic), topics.RELIABLE)
        self.clock_pub = self.node.create_publisher(Clock, "/clock", 10)
        self._running = True
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()

    def _collector(self, topic: str) -> Callable[[Any], None]:
        bucket = self.outputs[topic]

        def store(msg: Any) -> None:
            stamp = msg.header.stamp
            with self.lock:
                bucket[stamp.sec * 1_000_000_000 + stamp.nanosec] = msg
        return store

    def _spin(self) -> None:
        while self._running:
            self.executor.spin_once(timeout_sec=0.05)

    def _alive(self) -> None:
        for process in self.processes:
            if not process.alive():
                raise RuntimeError(f"{process.argv[0]} exited ({process.proc.returncode}); "
                                   f"see {process.log_path}")

    def _call(self, srv_type: type, name: str, request: Any) -> Any:
        client = self.node.create_client(srv_type, name)
        try:
            wait_for(lambda: self._alive() or client.service_is_ready(), STARTUP_TIMEOUT_S, f"service {name}")
            future = client.call_async(request)
            wait_for(future.done, STARTUP_TIMEOUT_S, f"answer from {name}")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def _parameter(self, node: str, name: str) -> float:
        reply = self._call(GetParameters, f"{NAMESPACE}/{node}/get_parameters", GetParameters.Request(names=[name]))
        value = reply.values[0]
        return float(value.double_value or value.integer_value)

    def _check_declared(self, node: str, names: Sequence[str]) -> None:
        """A node ignores a parameter it does not declare: a misspelt --estimator-param would
        replay the unchanged node and pass. Each given one must exist."""
        if not names:
            return
        reply = self._call(ListParameters, f"{NAMESPACE}/{node}/list_parameters", ListParameters.Request())
        unknown = [name for name in names if name not in reply.result.names]
        if unknown:
            raise RuntimeError(f"the {node} has no parameter {', '.join(unknown)}; it has: "
                               f"{', '.join(sorted(reply.result.names))}")

    def start(self) -> tuple[int, int]:
        """Configure and activate the estimator before any /clock; returns the estimator's and the
        supervisor's timer periods in ns."""
        for node, names in self.given.items():
            self._check_declared(node, names)
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            reply = self._call(ChangeState, f"{NAMESPACE}/estimator/change_state",
                               ChangeState.Request(transition=Transition(id=transition)))
            if not reply.success:
                raise RuntimeError(f"estimator refused transition {transition}; see {self.log_dir}/estimator.log")
        estimator_ns = round(self._parameter("estimator", "period_s") * 1e9)
        supervisor_ns = round(1e9 / self._parameter("safety_supervisor", "rate_hz"))
        # The supervisor activates itself (autostart); its status is latched, so a fresh one
        # (stamp 0, before any clock) says it is active.
        wait_for(lambda: self._alive() or self.node.count_publishers("/bms/safety_status") > 0,
                 STARTUP_TIMEOUT_S, "the supervisor's safety_status publisher")
        return estimator_ns, supervisor_ns

    def _publishers(self, feed: Feed) -> dict[str, Any]:
        out = {}
        for topic, type_name in feed.types.items():
            qos = topics.LATCHED if topic.endswith("contactor_state") else topics.RELIABLE
            out[topic] = self.node.create_publisher(message_class(type_name), topic, qos)
        subscribers = {"/bms/cell_measurements": 2, "/bms/pack_measurement": 2, "/bms/contactor_state": 1}
        wait_for(lambda: all(pub.get_subscription_count() >= subscribers.get(topic, 1)
                             for topic, pub in out.items()), STARTUP_TIMEOUT_S,
                 "the estimator and supervisor to subscribe to the measurements")
        wait_for(lambda: all(self.node.count_subscribers(topic) and self.node.count_publishers(topic)
                             for topic in OUTPUTS), STARTUP_TIMEOUT_S, "the nodes' outputs to match")
        return out

    def run(self, feed: Feed, progress: Callable[[int, int], None] | None = None) -> dict[str, list[tuple[int, Any]]]:
        estimator_ns, supervisor_ns = self.start()
        publishers = self._publishers(feed)
        released = release_steps(feed)
        first_estimator_tick = True
        for step, clock_ns in enumerate(feed.clock_ns):
            self.clock_pub.publish(Clock(clock=rclpy.time.Time(nanoseconds=clock_ns).to_msg()))
            expected = []
            if step == 0 or clock_ns % supervisor_ns == 0:
                expected.append("/bms/safety_status")
            if step == 0 or clock_ns % estimator_ns == 0:
                # The estimator's first tick only notes the time; it publishes from the second.
                if not first_estimator_tick:
                    expected.append("/bms/power_limits")
                first_estimator_tick = False
            self._await(expected, clock_ns)
            # Then the measurements of this instant, as the simulation publishes them after its
            # /clock, and a live node receives them after its tick at that instant.
            touched = set()
            for item in released.get(step, ()):
                publishers[item.topic].publish(item.data)
                touched.add(item.topic)
            for topic in touched:
                publishers[topic].wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S))
            if progress:
                progress(step + 1, len(feed.clock_ns))
        with self.lock:
            return {topic: sorted(bucket.items()) for topic, bucket in self.outputs.items()}

    def _await(self, expected: Sequence[str], clock_ns: int) -> None:
        deadline = time.monotonic() + OUTPUT_TIMEOUT_S
        while time.monotonic() < deadline:
            with self.lock:
                if all(clock_ns in self.outputs[topic] for topic in expected):
                    return
            time.sleep(0.0002)
        self._alive()

    def close(self) -> None:
        self._restore_profile()
        for process in self.processes:
            process.stop()
        self._running = False
        self._spinner.join(5)
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()
        for leftover in Path(self.state_dir).glob("*"):
            leftover.unlink()
        os.rmdir(self.state_dir)
