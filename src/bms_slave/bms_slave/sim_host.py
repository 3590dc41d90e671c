"""Simulation host: the simulated pack, its current sensor (unless hosted elsewhere) and one slave
node per module it hosts, in one process (ARCHITECTURE.md, Processes: N module nodes without N processes).

The plant node owns simulated time. Each step it advances the physics, publishes ``/clock``,
then lets each module node and the current sensor node sample when their period is due, in a
fixed order, so a run with a given seed is reproducible. Simulated time advances at ``speed``
times real time; the step timer runs on the wall clock, so when the machine cannot keep up the
simulation slows down instead of skipping samples.

Parameters (of the ``plant`` node; every node of the process sees them):
  pack (demo)              pack configuration name or path
  speed (1.0)              simulated seconds per wall second
  duration (0.0)           simulated seconds to run, then exit 0; 0 = until stopped
  step_s (0.05)            physics and /clock step
  sample_period_s (0.1)    AFE sampling period of every module
  pack_sensor_period_s (0.1)
  profile (drive)          load: rest, constant, drive, cccv (settable at run time)
  profile_current_a (0.0)  current of the constant profile, CC current of cccv
  modules ("" = every module)      modules whose slave nodes this process hosts, e.g. "0, 1"
  external_modules ("" = none)     modules left out of those, hosted elsewhere
  current_sensor (true)    host the current sensor node; false: a board hosts it
                           (``current_sensor_backend:=sim``), measuring /sim/pack_truth
  wait_for_nodes (true), wait_for_manager (false), wait_for_recorder (false)
                           when simulated time starts (below)
  pace_max_lag_s (0.3)     simulated time waits while a BMS node lags more than this (bms_slave.pacing)
  pace_max_hold_s (2.0)    wall seconds before it goes on without a node that publishes nothing

The plant is always the whole pack. For each module it does not host it publishes the AFE inputs
on /sim/cell_truth and takes bleed switches from /sim/bleed_switches (bms_slave.sim_link), so
a board on the simulated AFE backend, or another supplier's node, measures and balances the same
cells from another process or host. The pack-level truth goes out on /sim/pack_truth at every
current sensor instant, so the current sensor too can run on a board (``current_sensor:=false``).
The nodes themselves live in bms_slave.module_node and bms_slave.current_sensor_node.

Simulated time (and /clock) starts when every hosted module node and the current sensor node, if
hosted, are active (``wait_for_nodes``, default true) and, independently, when
``lifecycle_manager/status`` says ``active`` (``wait_for_manager``, default false; true in
launch/sim.launch.xml), so every managed node (estimator, master, modules and current sensor
hosted elsewhere) is up at t = 0 too. ``wait_for_recorder`` (true in a launch that records)
also waits for ``recorder/status`` to say ``ready``: the recorder has matched every publisher
of the topics it records, so the bag holds every node's first samples and the run replays (a
board in a process of its own is often discovered last). All false runs
the plant at once, e.g. to drive only the contactors in a benchmark. While it waits the plant
says for what, by name, every few seconds.
"""

from __future__ import annotations

import math
import sys
import threading
import time

import numpy as np
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from std_msgs.msg import String

from bms_common import topics
from bms_common.component_info import ComponentAnnouncer, Identity
from bms_common.lifecycle import declare, run_main, take_pending
from bms_common.pack_config import load_pack_config, parse_module_ids
from bms_common.stamps import header_frame_id_of_raw, header_stamp_of_raw, to_seconds, to_stamp
from bms_interfaces.msg import (
    BalancingCommand,
    CellMeasurements,
    ComponentInfo,
    ContactorCommand,
    ContactorState,
    CurrentLimits,
    PackMeasurement,
    PackState,
    PowerLimits,
    SafetyStatus,
)
from bms_slave.current_sensor_node import CurrentSensorNode, simulated_sensor_node
from bms_slave.fault_service import inject_fault_service
from bms_slave.faults import FaultInjector
from bms_slave.module_node import ModuleNode
from bms_slave.pacing import Pacer
from bms_slave.plant import PROFILE_NAMES, PackPlant
from bms_slave.sim_afe import SimulatedAfe
from bms_slave.sim_link import pack_truth_message, truth_message
from bms_slave.sim_pack_sensor import SimulatedPackSensor

MANAGER_STATUS = "lifecycle_manager/status"
RECORDER_STATUS = "recorder/status"  # bms_tools.bags.record.STATUS_TOPIC of the launch's recorder
WAIT_LOG_PERIOD_S = 5.0
# Bleed switches of a module hosted elsewhere open when its board has not refreshed them for
# this long (simulated seconds): a board that died must not bleed its cells empty.
BLEED_HOLD_S = 2.0
# One periodic output of each BMS node that the plant drives: simulated time waits for them.
PACED_TOPICS = ((topics.SAFETY_STATUS, SafetyStatus), (topics.PACK_STATE, PackState),
                (topics.POWER_LIMITS, PowerLimits), (topics.CONTACTOR_STATE, ContactorState))


class PlantNode(Node):
    """The simulated world: physics, load, HV circuit, and the simulation clock."""

    def __init__(self, stop: threading.Event, namespace: str = "/bms", **kwargs) -> None:
        super().__init__("plant", namespace=namespace, **kwargs)
        self.stop = stop
        self.pack = load_pack_config(str(declare(self, "pack", "demo")))
        self.speed = float(declare(self, "speed", 1.0))
        self.duration_s = float(declare(self, "duration", 0.0))
        self.step_s = float(declare(self, "step_s", 0.05))
        self.sample_period_s = float(declare(self, "sample_period_s", 0.1))
        self.pack_sensor_period_s = float(declare(self, "pack_sensor_period_s", 0.1))
        if self.speed <= 0 or self.step_s <= 0 or self.sample_period_s < self.step_s:
            raise ValueError(
                f"plant: need speed > 0, step_s > 0 and sample_period_s >= step_s, got speed={self.speed}, "
                f"step_s={self.step_s}, sample_period_s={self.sample_period_s}")
        self.plant = PackPlant(self.pack)
        self.hosted, self.external = self._module_split()  # before the set-parameters guard
        # False: a board hosts the current sensor (current_sensor_backend:=sim), on /sim/pack_truth.
        self.hosts_current_sensor = bool(declare(self, "current_sensor", True))
        self._set_profile(str(declare(self, "profile", "drive")),
                          float(declare(self, "profile_current_a", 0.0)))
        self.add_on_set_parameters_callback(self._on_parameters)
        self.announcer = ComponentAnnouncer(self, Identity(
            kind=ComponentInfo.KIND_SIMULATION, implementation="bms_slave.plant", hardware_id="sim"))

        self.afes = {m: SimulatedAfe.create(self.plant, self.pack, self.plant.sim, m) for m in self.hosted}
        self.pack_sensor = SimulatedPackSensor(self.plant, self.plant.sim) if self.hosts_current_sensor else None
        self.injector = FaultInjector(self.pack, plant=self.plant)
        inject_fault_service(self, self.injector)

        self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        self.truth_pub = self.create_publisher(PackMeasurement, topics.SIM_PACK_TRUTH, topics.RELIABLE)
        self.feedback_pub = self.create_publisher(ContactorState, topics.SIM_CONTACTOR_FEEDBACK, topics.LATCHED)
        self.create_subscription(ContactorCommand, topics.SIM_CONTACTOR_COILS, self._on_coils, topics.RELIABLE)
        self.create_subscription(CurrentLimits, topics.CURRENT_LIMITS.name, self._on_limits, topics.RELIABLE)
        self._bleed_refreshed_s: dict[int, float] = {}
        if self.external:
            self.cell_truth_pub = self.create_publisher(CellMeasurements, topics.SIM_CELL_TRUTH, topics.PER_MODULE)
            self.create_subscription(BalancingCommand, topics.SIM_BLEED_SWITCHES, self._on_bleed, topics.PER_MODULE)

        self.modules: list[ModuleNode] = []
        self.current_sensor: CurrentSensorNode | None = None
        self.steps = 0
        self._samples_every = round(self.sample_period_s / self.step_s)
        self._pack_sensor_every = max(1, round(self.pack_sensor_period_s / self.step_s))
        self._feedback_every = max(1, round(0.1 / self.step_s))
        self._last_feedback: tuple[tuple[bool, ...], tuple[bool, ...]] | None = None
        self.started = False
        self.wait_for_nodes = bool(declare(self, "wait_for_nodes", True))
        # In a launch with a lifecycle manager: wait until it reports every managed node active,
        # so the estimator and master see the run from t = 0 (and a recorded run replays alike).
        self.wait_for_manager = bool(declare(self, "wait_for_manager", False))
        # Followed even when not waited for: it names the node a bring-up waits for.
        self.manager_status: str | None = None
        self.create_subscription(String, MANAGER_STATUS, self._on_manager_status, topics.LATCHED)
        # And, in a launch that records, for the recorder to hold every publisher the system
        # started with, so that the bag has every node's first samples (a board started in a
        # process of its own is discovered last) and the run replays.
        self.wait_for_recorder = bool(declare(self, "wait_for_recorder", False))
        self.recorder_status: str | None = None
        if self.wait_for_recorder:
            self.create_subscription(String, RECORDER_STATUS, self._on_recorder_status, topics.LATCHED)
        self._next_wait_log = time.monotonic() + WAIT_LOG_PERIOD_S
        self.pacer = Pacer(float(declare(self, "pace_max_lag_s", 0.3)),
                           float(declare(self, "pace_max_hold_s", 2.0)))
        self._pace_subscriptions = [self._follow(*paced) for paced in PACED_TOPICS] if self.pacer.enabled else []
        if self.pacer.enabled and self.external:
            self._pace_subscriptions.append(self._follow_external_modules())
        if self.pacer.enabled and not self.hosts_current_sensor:  # a board's current sensor lags like one
            self._pace_subscriptions.append(self._follow(topics.PACK_MEASUREMENT, PackMeasurement))
        self._last_lag_log_wall_s = -math.inf
        self.wall_start = time.monotonic()
        self._timer = self.create_timer(self.step_s / self.speed, self.step)

    def _follow(self, topic: topics.Topic, msg_type: type):
        """Follow the stamps of a BMS node's periodic output (raw: no deserialization)."""
        def heard(data: bytes) -> None:
            try:
                self.pacer.heard(topic.name, header_stamp_of_raw(data))
            except ValueError as exc:
                self.get_logger().error(f"pacing: {topic.absolute}: {exc}", throttle_duration_sec=5.0)
        return self.create_subscription(msg_type, topic.name, heard, topic.qos, raw=True), heard

    def _follow_external_modules(self):
        """Follow the samples of the modules hosted elsewhere, by their frame_id (``module_<i>``):
        a board on a starved or distant host is a BMS node that lags like any other."""
        names = {f"module_{m}" for m in self.external}

        def heard(data: bytes) -> None:
            try:
                name = header_frame_id_of_raw(data)
                if name in names:
                    self.pacer.heard(name, header_stamp_of_raw(data), self.sample_period_s)
            except ValueError as exc:
                self.get_logger().error(f"pacing: {topics.CELL_MEASUREMENTS.absolute}: {exc}",
                                        throttle_duration_sec=5.0)
        return self.create_subscription(CellMeasurements, topics.CELL_MEASUREMENTS.name, heard,
                                        topics.CELL_MEASUREMENTS.qos, raw=True), heard

    def _paced(self) -> bool:
        """Whether simulated time may step now (pacing.py): it waits while a BMS node lags."""
        if not self.pacer.enabled:
            return True
        for subscription, heard in self._pace_subscriptions:
            take_pending(subscription, heard)
        wall_s = time.monotonic()
        go, events = self.pacer.may_advance(self.plant.time_s, wall_s)
        for event in events:
            if event.kind == "given_up":
                self.get_logger().warning(
                    f"pacing: {event.name} is {event.lag_s:.2f} s behind simulated time after waiting "
                    f"{self.pacer.max_hold_s:g} s wall: stopped or dead, simulated time goes on without it")
            else:
                self.get_logger().info(f"pacing: {event.name} caught up, simulated time waits for it again")
        if not go and wall_s - self._last_lag_log_wall_s >= 5.0:
            self._last_lag_log_wall_s = wall_s
            self.get_logger().warning(
                f"pacing: the system cannot keep up with {self.speed:g}x: simulated time waits for "
                f"{self.pacer.waiting_for(self.plant.time_s)}; running at {self._achieved_speed():.1f}x so far")
        return go

    def _achieved_speed(self) -> float:
        return self.plant.time_s / max(time.monotonic() - self.wall_start, 1e-9)

    def _module_split(self) -> tuple[list[int], list[int]]:
        """(hosted, hosted elsewhere): ``modules`` (default every one) less ``external_modules``."""
        where = f"{self.get_fully_qualified_name()}: parameter"
        count = self.pack.modules
        listed = parse_module_ids(declare(self, "modules", ""), count, f"{where} modules") or list(range(count))
        left_out = set(parse_module_ids(declare(self, "external_modules", ""), count, f"{where} external_modules"))
        hosted = [m for m in listed if m not in left_out]
        external = [m for m in range(count) if m not in hosted]
        if external:
            self.get_logger().info(
                f"modules {', '.join(map(str, external))} hosted elsewhere: their AFE inputs on "
                f"{topics.SIM_CELL_TRUTH}, bleed switches from {topics.SIM_BLEED_SWITCHES}")
        return hosted, external

    def _set_profile(self, name: str, current_a: float) -> None:
        if name not in PROFILE_NAMES:
            raise ValueError(f"plant: profile must be one of {', '.join(PROFILE_NAMES)}, got {name!r}")
        self.plant.set_profile(self.plant.make_profile(name, current_a))
        self.profile_name, self.profile_current_a = name, current_a

    def _on_parameters(self, params: list[Parameter]) -> SetParametersResult:
        name, current = self.profile_name, self.profile_current_a
        for param in params:
            if param.name == "profile":
                name = str(param.value)
            elif param.name == "profile_current_a":
                current = float(param.value)
            elif param.name in ("pack", "speed", "duration", "step_s", "sample_period_s",
                                "pack_sensor_period_s", "modules", "external_modules", "current_sensor",
                                "wait_for_nodes",
                                "wait_for_manager", "wait_for_recorder", "pace_max_lag_s", "pace_max_hold_s") and \
                    self.has_parameter(param.name):  # declared already: a change at run time
                return SetParametersResult(successful=False, reason=f"{param.name} is fixed at start")
        try:
            self._set_profile(name, current)
        except ValueError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    def _on_manager_status(self, msg: String) -> None:
        self.manager_status = msg.data

    def _on_recorder_status(self, msg: String) -> None:
        self.recorder_status = msg.data

    def _on_bleed(self, msg: BalancingCommand) -> None:
        module = msg.module_id
        if module not in self.external:
            why = ("sim_host hosts it: its node takes /bms/balancing_command" if module in self.hosted
                   else f"the pack has modules 0..{self.pack.modules - 1}")
            self.get_logger().warning(f"{topics.SIM_BLEED_SWITCHES} for module {module} ignored: {why}",
                                      throttle_duration_sec=5.0)
            return
        mask = np.asarray(msg.balance, dtype=bool)
        try:
            self.plant.set_module_balancing(module, mask)
        except ValueError as exc:
            self.get_logger().error(f"{topics.SIM_BLEED_SWITCHES} ignored: {exc}", throttle_duration_sec=5.0)
            return
        if mask.any():
            self._bleed_refreshed_s[module] = self.plant.time_s
        else:
            self._bleed_refreshed_s.pop(module, None)

    def _on_coils(self, msg: ContactorCommand) -> None:
        self.plant.hv.command_contactors(msg.main_plus, msg.main_minus, msg.precharge)

    def _on_limits(self, msg: CurrentLimits) -> None:
        try:
            self.plant.set_current_limits(msg.max_charge_current_a, msg.max_discharge_current_a)
        except ValueError as exc:
            self.get_logger().error(f"current_limits ignored: {exc}", throttle_duration_sec=5.0)

    def step(self) -> None:
        if not self.started and not self._ready_to_start():
            return
        if not self._paced():
            return
        plant = self.plant
        plant.step(self.step_s)
        self.steps += 1
        now_s = plant.time_s
        self.clock_pub.publish(Clock(clock=to_stamp(now_s)))
        if self.steps % self._samples_every == 0:
            for module in self.modules:
                module.sample(now_s)
            self._publish_cell_truth()
        if self.steps % self._pack_sensor_every == 0:
            if self.current_sensor is not None:
                self.current_sensor.sample()
            truth = pack_truth_message(plant.pack_truth(), self.steps)
            self.truth_pub.publish(truth)
            if self.pacer.enabled and not self.hosts_current_sensor:  # sampled by a board as it arrives
                self.pacer.expect(topics.PACK_MEASUREMENT.name, to_seconds(truth.header.stamp))
        self._publish_feedback(now_s)
        if self.duration_s > 0 and now_s >= self.duration_s - 1e-9:
            wall = time.monotonic() - self.wall_start
            self.get_logger().info(
                f"simulated {now_s:.1f} s in {wall:.1f} s wall: {now_s / max(wall, 1e-9):.1f}x real time "
                f"(asked {self.speed:g}x; waited for lagging nodes {self.pacer.held_wall_s:.1f} s: "
                f"{self.pacer.summary()})")
            self.destroy_timer(self._timer)
            self.stop.set()

    def _ready_to_start(self) -> bool:
        """Simulated time starts once what it waits for is up, so a short or fast run is not over
        before the system is (and every BMS node sees it from t = 0). Until then it says what it
        waits for every few seconds: a bring-up never hangs silently."""
        waiting = self._waiting_for()
        if waiting:
            now = time.monotonic()
            if now >= self._next_wait_log:
                self._next_wait_log = now + WAIT_LOG_PERIOD_S
                # A bring-up takes seconds on a loaded machine; only a long wait is a warning. (Two
                # call sites: rclpy refuses a severity change at one.)
                text = f"simulated time has not started: waiting for {waiting}"
                if now - self.wall_start > 3 * WAIT_LOG_PERIOD_S:
                    self.get_logger().warning(text)
                else:
                    self.get_logger().info(text)
            return False
        self.started = True
        self.wall_start = time.monotonic()
        self.get_logger().info(f"simulated time starts, speed {self.speed:g}x")
        return True

    def _waiting_for(self) -> str:
        """What simulated time waits for ("" = nothing): hosted nodes not active yet, and the
        lifecycle manager, whose status names the node that holds bring-up up."""
        parts = []
        if self.wait_for_nodes:
            inactive = [n.get_name() for n in [*self.modules, self.current_sensor] if n is not None and not n.active]
            if inactive:
                parts.append(f"hosted nodes to be activated: {', '.join(inactive)}")
        if parts or (self.wait_for_manager and self.manager_status != "active"):
            status = self.manager_status or "nothing yet (is it running?)"
            parts.append(f"the lifecycle manager ({self.get_namespace().rstrip('/')}/{MANAGER_STATUS}: {status})")
        if self.wait_for_recorder and self.recorder_status != "ready":
            status = self.recorder_status or "nothing yet (is it running?)"
            parts.append(f"the recorder ({self.get_namespace().rstrip('/')}/{RECORDER_STATUS}: {status})")
        return "; ".join(parts)

    def _publish_cell_truth(self) -> None:
        """Each module hosted elsewhere gets its AFE inputs at its sampling instant (sim_link)."""
        plant = self.plant
        for module in self.external:
            refreshed_s = self._bleed_refreshed_s.get(module)
            if refreshed_s is not None and plant.time_s - refreshed_s > BLEED_HOLD_S:
                self.get_logger().warning(f"module {module}: bleed switches not refreshed for {BLEED_HOLD_S:g} s "
                                          f"on {topics.SIM_BLEED_SWITCHES}: opened")
                plant.set_module_balancing(module, np.zeros(self.pack.cells_per_module, dtype=bool))
                del self._bleed_refreshed_s[module]
            sequence = self.steps // self._samples_every
            msg = truth_message(module, plant.afe_inputs(module), sequence)
            self.cell_truth_pub.publish(msg)
            if self.pacer.enabled:  # simulated time holds until the board's sample is heard
                self.pacer.expect(f"module_{module}", to_seconds(msg.header.stamp), self.sample_period_s)

    def _publish_feedback(self, now_s: float) -> None:
        hv = self.plant.hv
        fb = hv.feedback()
        closed = (fb.main_plus, fb.main_minus, fb.precharge)
        coils = hv.commanded
        # Published at once when the feedback or the coils applied change: the contactor node
        # judges a disagreement only once the plant reports the coil it drives (docs/master.md).
        now = (closed, (coils.main_plus, coils.main_minus, coils.precharge))
        if now == self._last_feedback and self.steps % self._feedback_every:
            return
        self._last_feedback = now
        msg = ContactorState(
            main_plus_commanded=coils.main_plus, main_minus_commanded=coils.main_minus,
            precharge_commanded=coils.precharge, main_plus_closed=fb.main_plus,
            main_minus_closed=fb.main_minus, precharge_closed=fb.precharge,
            feedback_mismatch=(coils.main_plus, coils.main_minus, coils.precharge) != closed,
        )
        msg.header.stamp = to_stamp(now_s)
        msg.header.frame_id = "plant"
        self.feedback_pub.publish(msg)


def build(stop: threading.Event, cli_args: list[str] | None = None) -> list[Node]:
    """The nodes of the process; ``cli_args`` (``--ros-args ...``) apply to each of them, as the
    process's own arguments do when it runs alone (the container passes them this way)."""
    plant_node = PlantNode(stop, cli_args=cli_args)
    namespace = plant_node.get_namespace()
    for module_id, afe in plant_node.afes.items():
        # The balancing timeout runs on simulated time, as the samples do (the node has no /clock).
        node = ModuleNode(module_id, afe, self_timed=False, namespace=namespace, cli_args=cli_args,
                          clock=lambda: plant_node.plant.time_s)
        inject_fault_service(node, FaultInjector(plant_node.pack, afes={module_id: afe}))
        plant_node.modules.append(node)
    if plant_node.pack_sensor is None:
        return [plant_node, *plant_node.modules]
    sensor = simulated_sensor_node(plant_node.pack_sensor, plant_node.pack, namespace, cli_args)
    plant_node.current_sensor = sensor
    return [plant_node, *plant_node.modules, sensor]


def main(args: list[str] | None = None) -> int:
    stop = threading.Event()
    return run_main(lambda: build(stop), args, stop=stop)


if __name__ == "__main__":
    sys.exit(main())
