"""The violating cases of the kit's checks for the bridge and GUI kinds (BRG-01, GUI-01, GEN-06 on
every topic they read, helper nodes included), of GEN-04 (a current sensor that also publishes
safety_status), GEN-01 (a GUI outside /bms), MST-03 and SUP-03 (no service), SUP-02 (a sequence
that stays), of the malformed-input checks for the pack data's consumers (EST-05; MST-07: a
master that reports only some of its inputs; SUP-07: a supervisor that raises none of the PLAUS_*
codes) and of the content checks of the kinds other than the slave. Fake nodes in this process,
each set in a ROS domain of its own, watched at once; the conforming cases are the project's nodes
in test/test_conformance.py (and a GUI by the book here)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import rclpy
from rclpy.context import Context as RosContext
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from bms_common import topics
from bms_common.pack_config import load_pack_config
from bms_common.plausibility import physical_ranges
from bms_common.testing import lock_domain_id
from bms_interfaces.msg import (
    CellMeasurements,
    CellStates,
    CommandAudit,
    ComponentInfo,
    ContactorState,
    CurrentLimits,
    FaultLog,
    PackMeasurement,
    PackState,
    PowerLimits,
    SafetyStatus,
)
from bms_interfaces.srv import RequestState, ResetFaults
from bms_tools.conformance import malformed
from bms_tools.conformance.kinds import (
    KINDS,
    Context,
    check_cell_states,
    check_contactor_state,
    check_current_limits,
    check_pack_measurement,
    check_pack_state,
    check_power_limits,
    check_safety_status,
)
from bms_tools.conformance.passive import Watch, run_passive
from bms_tools.conformance.probe import Probe
from bms_tools.conformance.report import FAIL, PASS, Report
from bms_tools.rosgraph import message_class

PACK = load_pack_config("demo")
CTX = Context(PACK, physical_ranges(PACK))


def announce(node: Node, kind: str, topic: str = topics.COMPONENTS.name) -> None:
    info = ComponentInfo(node_name=node.get_fully_qualified_name(), kind=kind, vendor="test", implementation="fake",
                         version="1.0.0", interface_version=ComponentInfo.INTERFACE_VERSION, host="here")
    info.header.frame_id = node.get_name()
    node.create_publisher(ComponentInfo, topic, topics.LATCHED).publish(info)


def good_gui(context: RosContext) -> list[Node]:
    """By the book, its data read on a helper node `<name>_intake`."""
    gui = Node("good_gui", namespace="/bms", context=context)
    announce(gui, ComponentInfo.KIND_GUI)
    gui.create_publisher(CommandAudit, topics.COMMAND_AUDIT.name, topics.COMMAND_AUDIT.qos)
    gui.create_client(ResetFaults, topics.RESET_FAULTS)
    intake = Node("good_gui_intake", namespace="/bms", context=context)
    intake.create_subscription(SafetyStatus, topics.SAFETY_STATUS.name, lambda _: None, topics.LATCHED)
    intake.create_subscription(FaultLog, topics.FAULT_LOG.name, lambda _: None, topics.LATCHED)
    intake.create_subscription(CellMeasurements, topics.CELL_MEASUREMENTS.name, lambda _: None, topics.PER_MODULE)
    return [gui, intake]


def bad_bridge(context: RosContext) -> list[Node]:
    """Publishes the master's pack_state and offers its request_state."""
    bridge = Node("bad_bridge", namespace="/bms", context=context)
    announce(bridge, ComponentInfo.KIND_BRIDGE)
    bridge.create_publisher(PackState, topics.PACK_STATE.name, topics.PACK_STATE.qos)
    bridge.create_service(RequestState, topics.REQUEST_STATE, lambda _, response: response)
    return [bridge]


def greedy_sensor(context: RosContext) -> list[Node]:
    """A current sensor that also publishes the supervisor's safety_status (GEN-04)."""
    sensor = Node("current_sensor", namespace="/bms", context=context)
    announce(sensor, ComponentInfo.KIND_CURRENT_SENSOR)
    sensor.create_publisher(PackMeasurement, topics.PACK_MEASUREMENT.name, topics.PACK_MEASUREMENT.qos)
    sensor.create_publisher(SafetyStatus, topics.SAFETY_STATUS.name, topics.SAFETY_STATUS.qos)
    return [sensor]


def bad_gui(context: RosContext) -> list[Node]:
    """Publishes the supervisor's topic, offers its service, reads safety_status volatile, never
    reads fault_log."""
    gui = Node("bad_gui", namespace="/bms", context=context)
    announce(gui, ComponentInfo.KIND_GUI)
    gui.create_publisher(SafetyStatus, topics.SAFETY_STATUS.name, topics.LATCHED)
    gui.create_service(ResetFaults, topics.RESET_FAULTS, lambda _, response: response)
    gui.create_subscription(SafetyStatus, topics.SAFETY_STATUS.name, lambda _: None, topics.RELIABLE)
    gui.create_subscription(CellStates, topics.CELL_STATES.name, lambda _: None, 10)
    return [gui]


class FakeEstimator:
    """Valid outputs at 10 Hz; it logs nothing about what it drops (``stops`` False), or logs
    it and stops publishing at the first malformed sample (``stops`` True). Named apart: rclpy
    sends the log lines of one logger name over one /rosout publisher per process, whatever the
    domain."""

    def __init__(self, context: RosContext, stops: bool) -> None:
        self.node = Node(f"{'stopping' if stops else 'silent'}_estimator", namespace="/bms", context=context)
        self.stops, self.stopped = stops, False
        n = PACK.cell_count
        self.states = CellStates(module_count=PACK.modules, cells_per_module=PACK.cells_per_module, soc=[0.5] * n,
                                 soc_std=[0.01] * n, capacity_ah=[50.0] * n, capacity_std_ah=[1.0] * n,
                                 soh=[1.0] * n, internal_resistance_ohm=[0.001] * n, pack_soc=0.5, pack_soh=1.0)
        self.limits = PowerLimits(horizons_s=[2.0, 10.0, 30.0], max_charge_current_a=[10.0] * 3,
                                  max_discharge_current_a=[10.0] * 3, max_charge_power_w=[1e3] * 3,
                                  max_discharge_power_w=[1e3] * 3)
        self.states_pub = self.node.create_publisher(CellStates, topics.CELL_STATES.name, topics.RELIABLE)
        self.limits_pub = self.node.create_publisher(PowerLimits, topics.POWER_LIMITS.name, topics.RELIABLE)
        self.node.create_subscription(CellMeasurements, topics.CELL_MEASUREMENTS.name, self.on_cells,
                                      topics.PER_MODULE)
        self.node.create_subscription(PackMeasurement, topics.PACK_MEASUREMENT.name, self.on_pack, topics.RELIABLE)
        self.node.create_timer(0.1, self.tick)

    def on_cells(self, msg: CellMeasurements) -> None:
        if self.stops and len(msg.cell_voltages_v) != PACK.cells_per_module:
            self.node.get_logger().error(f"cell_measurements from {msg.header.frame_id!r} dropped: wrong length")
            self.stopped = True

    def on_pack(self, msg: PackMeasurement) -> None:
        if self.stops and msg.header.stamp.sec > self.node.get_clock().now().to_msg().sec + 60:
            self.node.get_logger().error(f"pack_measurement from {msg.header.frame_id!r}: stamped ahead: dropped")

    def tick(self) -> None:
        if self.stopped:
            return
        stamp = self.node.get_clock().now().to_msg()
        for msg, pub in ((self.states, self.states_pub), (self.limits, self.limits_pub)):
            msg.header.stamp = stamp
            pub.publish(msg)


class FakeConsumer:
    """A master or a supervisor by the book but for its reports: it reads every input of its kind
    and publishes each periodic output with valid content (the supervisor's safety_status at
    20 Hz, level OK, no faults), but logs a WARN line only for what arrives on ``reported``
    (the master: cell_states and power_limits, never pack_measurement or cell_measurements) and
    raises no fault codes at all."""

    HZ = {topics.SAFETY_STATUS.name: 20.0, topics.DIAGNOSTICS.name: 1.0}

    def __init__(self, context: RosContext, name: str, kind: str, reported: tuple[str, ...] = (),
                 stuck: bool = False) -> None:
        self.node = Node(name, namespace="/bms", context=context)
        self.stuck = stuck  # the sequence stays (SUP-02)
        announce(self.node, kind)
        for topic in KINDS[kind].inputs:
            self.node.create_subscription(message_class(topic.type_name), topic.name,
                                          lambda msg, t=topic.name: self.on_input(t, msg), topic.qos)
        for out in KINDS[kind].outputs:
            if out.min_hz is None:
                continue
            msg = message_class(out.topic.type_name)()
            if isinstance(msg, PackState):
                msg.module_status = [PackState.MODULE_OK] * PACK.modules
            if isinstance(msg, SafetyStatus):
                msg.level, msg.contactors_allowed = SafetyStatus.LEVEL_OK, True
                msg.charge_derating = msg.discharge_derating = 1.0
            pub = self.node.create_publisher(type(msg), out.topic.name, out.topic.qos)
            self.node.create_timer(1.0 / self.HZ.get(out.topic.name, 10.0),
                                   lambda msg=msg, pub=pub: self.publish(msg, pub))
        self.reported = reported

    def on_input(self, topic: str, msg: Any) -> None:
        if topic in self.reported:
            self.node.get_logger().warning(f"{topic} from {msg.header.frame_id!r}: dropped")

    def publish(self, msg: Any, pub: Any) -> None:
        if hasattr(msg, "header"):
            msg.header.stamp = self.node.get_clock().now().to_msg()
        pub.publish(msg)
        if hasattr(msg, "sequence") and not self.stuck:
            msg.sequence += 1


def in_domain(make: Callable[[RosContext], list[Node]], check: Callable[[Probe], Any]) -> Any:
    domain, lock = lock_domain_id(150, 199)
    context = RosContext()
    rclpy.init(args=[], context=context, domain_id=domain)
    nodes = make(context)
    executor = SingleThreadedExecutor(context=context)
    for node in nodes:
        executor.add_node(node)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(0.05)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    probe = Probe(domain_id=domain)
    try:
        return check(probe)
    finally:
        probe.close()
        stop.set()
        thread.join(5)
        for node in nodes:
            node.destroy_node()
        context.try_shutdown()
        lock.close()


def watch_guis(probe: Probe) -> dict[str, Report]:
    kind = KINDS["gui"]
    watch = Watch(probe, kind)
    reports = {name: Report(f"/bms/{name}", "gui") for name in ("good_gui", "bad_gui")}
    for name, report in reports.items():
        run_passive(probe, report, kind, f"/bms/{name}", CTX, watch, 1.0, discovery_timeout_s=30.0)
    for name, kind_name in (("bad_bridge", "bridge"), ("current_sensor", "current_sensor")):
        reports[name] = Report(f"/bms/{name}", kind_name)
        run_passive(probe, reports[name], KINDS[kind_name], f"/bms/{name}", CTX, Watch(probe, KINDS[kind_name]),
                    0.5, discovery_timeout_s=30.0)
    return reports


def stray_gui(context: RosContext) -> list[Node]:
    """A GUI by the book but outside /bms (GEN-01)."""
    gui = Node("stray_gui", namespace="/", context=context)
    announce(gui, ComponentInfo.KIND_GUI, topics.COMPONENTS.absolute)
    return [gui]


def watch_fakes(probe: Probe) -> dict[str, Report]:
    """A master without request_state (MST-03), a supervisor whose sequence stays (SUP-02) and a
    GUI outside /bms (GEN-01)."""
    reports = {}
    for fqn, kind_name in (("/bms/master", "master"), ("/bms/safety_supervisor", "safety"), ("/stray_gui", "gui")):
        kind = KINDS[kind_name]
        reports[kind_name] = Report(fqn, kind_name)
        run_passive(probe, reports[kind_name], kind, fqn, CTX, Watch(probe, kind), 0.5, discovery_timeout_s=30.0)
    return reports


def feeding(name: str, kind_name: str = "estimator") -> Callable[[Probe], Report]:
    def feed(probe: Probe) -> Report:
        kind = KINDS[kind_name]
        report = Report(name, kind_name)
        watch = Watch(probe, kind)
        logs = malformed.LogWatch(probe)
        malformed.exercise(report, probe, watch, logs, kind, name, CTX, lambda: True)
        return report
    return feed


def test_the_kit_fails_each_fake_node_on_its_violation():
    results: dict[str, Any] = {}
    runs = [threading.Thread(target=lambda key=key, make=make, check=check: results.__setitem__(
        key, in_domain(make, check))) for key, make, check in (
        ("guis", lambda c: good_gui(c) + bad_gui(c) + bad_bridge(c) + greedy_sensor(c), watch_guis),
        ("silent", lambda c: [FakeEstimator(c, stops=False).node], feeding("/bms/silent_estimator")),
        ("stops", lambda c: [FakeEstimator(c, stops=True).node], feeding("/bms/stopping_estimator")),
        ("master", lambda c: [FakeConsumer(c, "forgetful_master", "master", ("cell_states", "power_limits")).node],
         feeding("/bms/forgetful_master", "master")),
        ("safety", lambda c: [FakeConsumer(c, "faultless_supervisor", "safety").node],
         feeding("/bms/faultless_supervisor", "safety")),
        ("fakes", lambda c: [FakeConsumer(c, "master", "master").node,
                             FakeConsumer(c, "safety_supervisor", "safety", stuck=True).node] + stray_gui(c),
         watch_fakes))]
    for run in runs:
        run.start()
    for run in runs:
        run.join(90)
    good, bad = results["guis"]["good_gui"], results["guis"]["bad_gui"]
    assert {n: r.status for n, r in good.results.items() if r.status != "SKIP"} == {
        n: PASS for n in ("GEN-01", "GEN-02", "GEN-03", "GEN-04", "GEN-05", "GEN-06", "GUI-01")}, good.text()
    assert bad.results["GUI-01"].status == FAIL, bad.text()
    assert "/bms/safety_status" in bad.results["GUI-01"].detail and "/bms/reset_faults" in bad.results["GUI-01"].detail
    assert bad.results["GEN-06"].status == FAIL, bad.text()
    bridge = results["guis"]["bad_bridge"].results["BRG-01"]
    assert bridge.status == FAIL and "/bms/pack_state" in bridge.detail and "/bms/request_state" in bridge.detail, \
        bridge
    greedy = results["guis"]["current_sensor"].results["GEN-04"]
    assert greedy.status == FAIL and "/bms/safety_status" in greedy.detail, greedy
    silent, stops = results["silent"].results["EST-05"], results["stops"].results["EST-05"]
    assert silent.status == FAIL and "no log line" in silent.detail and "cell_measurements" in silent.detail, silent
    assert stops.status == FAIL and "no output" in stops.detail, stops
    master = results["master"].results["MST-07"]
    assert master.status == FAIL and "no log line" in master.detail, master
    assert "pack_measurement" in master.detail and "cell_measurements" in master.detail, master
    assert "cell_states" not in master.detail and "power_limits" not in master.detail, master
    safety = results["safety"].results["SUP-07"]
    assert safety.status == FAIL and "faults never raised" in safety.detail, safety
    assert all(code in safety.detail for code in malformed.SUPERVISOR_CODES), safety
    fakes = results["fakes"]
    assert fakes["master"].results["MST-03"].status == FAIL, fakes["master"].text()
    assert "/bms/request_state" in fakes["master"].results["MST-03"].detail, fakes["master"].text()
    stuck = fakes["safety"].results["SUP-02"]
    assert stuck.status == FAIL and "sequence steps other than +1" in stuck.detail, fakes["safety"].text()
    assert fakes["safety"].results["SUP-03"].status == FAIL, fakes["safety"].text()
    assert fakes["gui"].results["GEN-01"].status == FAIL and "namespace" in fakes["gui"].results["GEN-01"].detail, \
        fakes["gui"].text()


def test_the_content_checks_of_the_other_kinds_pass_valid_messages_and_name_the_requirement_of_a_bad_one():
    """The passive content requirements that the project's nodes pass in test/test_conformance.py
    (CUR-01, MST-01, MST-02, CON-01, EST-01, EST-02, SUP-01), each on a message that violates it;
    the slave's are in src/bms_tools/test/test_conformance_passive.py."""
    n = PACK.cell_count
    good_pack = PackMeasurement(current_a=-10.0, pack_voltage_v=3.7 * n, dc_link_voltage_v=3.7 * n,
                                insulation_resistance_ohm=1e6, hvil_closed=True)
    good_status = SafetyStatus(level=SafetyStatus.LEVEL_OK, contactors_allowed=True, charge_derating=1.0,
                               discharge_derating=1.0)
    good_states = CellStates(module_count=PACK.modules, cells_per_module=PACK.cells_per_module, soc=[0.5] * n,
                             soc_std=[0.01] * n, capacity_ah=[50.0] * n, capacity_std_ah=[1.0] * n, soh=[1.0] * n,
                             internal_resistance_ohm=[0.001] * n, pack_soc=0.5, pack_soh=1.0)
    good_limits = PowerLimits(horizons_s=[2.0, 10.0, 30.0], max_charge_current_a=[10.0] * 3,
                              max_discharge_current_a=[10.0] * 3, max_charge_power_w=[1e3] * 3,
                              max_discharge_power_w=[1e3] * 3)
    percent = CellStates(**{f: getattr(good_states, f) for f in ("module_count", "cells_per_module", "soc_std",
                                                                 "capacity_ah", "capacity_std_ah", "soh",
                                                                 "internal_resistance_ohm", "pack_soh")},
                         soc=[50.0] * n, pack_soc=50.0)
    cases = [  # (check, conforming, violating, number, words of the detail)
        (check_pack_measurement, good_pack, PackMeasurement(current_a=float("nan")), "CUR-01", "current_a"),
        (check_pack_state, PackState(module_status=[PackState.MODULE_OK] * PACK.modules),
         PackState(operating_state=99, module_status=[PackState.MODULE_OK] * PACK.modules), "MST-01", "99"),
        (check_current_limits, CurrentLimits(max_charge_current_a=5.0, max_discharge_current_a=5.0),
         CurrentLimits(max_charge_current_a=-5.0, max_discharge_current_a=5.0), "MST-02", "-5.0"),
        (check_contactor_state, ContactorState(), ContactorState(opened_by_safety=True), "CON-01", "open_reason"),
        (check_cell_states, good_states, percent, "EST-01", "percent"),
        (check_power_limits, good_limits,
         PowerLimits(horizons_s=[2.0, 10.0, 30.0], max_charge_current_a=[float("nan")] * 3,
                     max_discharge_current_a=[1.0] * 3, max_charge_power_w=[1.0] * 3,
                     max_discharge_power_w=[1.0] * 3), "EST-02", "finite"),
        (check_safety_status, good_status, SafetyStatus(level=250), "SUP-01", "250"),
    ]
    for check, conforming, violating, number, words in cases:
        assert check(conforming, CTX) == [], (number, check(conforming, CTX))
        problems = dict(check(violating, CTX))
        assert number in problems and words in problems[number], (number, problems)
