"""Intrusive checks on a node the kit starts itself, in a ROS domain of its own: the lifecycle
driven through its services, publishing only while active, cycles, malformed inputs, shutdown.
Never run against a live pack: deactivating a supervisor or a contactor node opens contactors."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState

from bms_common import topics
from bms_common.version import INTERFACE_VERSION
from bms_interfaces.msg import ComponentInfo
from bms_tools.conformance import contactor, current_sensor, malformed, slave
from bms_tools.conformance.kinds import Context, Kind
from bms_tools.conformance.passive import Watch, run_passive
from bms_tools.conformance.probe import Probe, wait_until
from bms_tools.conformance.report import Report

STATE_NAMES = {State.PRIMARY_STATE_UNCONFIGURED: "unconfigured", State.PRIMARY_STATE_INACTIVE: "inactive",
               State.PRIMARY_STATE_ACTIVE: "active", State.PRIMARY_STATE_FINALIZED: "finalized"}
QUIET_S = 1.5  # how long a node that must not publish is watched
START_TIMEOUT_S = 30.0
INCOMPATIBLE_PEER = "/bms/conformance_incompatible_peer"
PEER_LOG_TIMEOUT_S = 5.0


class NodeUnderTest:
    """The command, started in its own process group in the /bms namespace; output to a log."""

    def __init__(self, command: str) -> None:
        argv = shlex.split(command)
        if not any("__ns:=" in arg for arg in argv):
            argv += ["--ros-args", "-r", "__ns:=/bms"]
        self.log = Path(tempfile.mkstemp(prefix="bms-conformance-", suffix=".log")[1])
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGINT, then SIGKILL; the exit code of the SIGINT, None if it had to be killed."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
            return None


class Lifecycle:
    def __init__(self, probe: Probe, fqn: str) -> None:
        self.probe, self.fqn = probe, fqn

    def state(self, timeout_s: float = 5.0) -> int | None:
        answer = self.probe.call(GetState, f"{self.fqn}/get_state", GetState.Request(), timeout_s)
        return None if answer is None else answer.current_state.id

    def change(self, transition: int, timeout_s: float = 30.0) -> bool:
        request = ChangeState.Request()
        request.transition.id = transition
        answer = self.probe.call(ChangeState, f"{self.fqn}/change_state", request, timeout_s)
        return bool(answer and answer.success)


def quiet(watch: Watch, kind: Kind, ctx: Context, seconds: float) -> int:
    """Data messages of the node within ``seconds`` from now."""
    mark = watch.mark()
    time.sleep(seconds)
    return sum(len(own(watch, kind, ctx, out.topic.name, mark)) for out in kind.outputs)


def own(watch: Watch, kind: Kind, ctx: Context, topic: str, mark: dict[str, int]) -> list:
    arrivals = watch.since(topic, mark)
    if kind.name == ComponentInfo.KIND_SLAVE:
        return [a for a in arrivals if a.msg.module_id == ctx.module_id]
    return arrivals


def publishes(watch: Watch, kind: Kind, ctx: Context, timeout_s: float = 10.0) -> bool:
    mark = watch.mark()
    first = kind.outputs[0].topic.name
    return bool(wait_until(lambda: own(watch, kind, ctx, first, mark), timeout_s))


def run_intrusive(report: Report, kind: Kind, fqn: str, ctx: Context, command: str, duration_s: float,
                  balancing_timeout_s: float) -> None:
    """Raises OSError when the command cannot be started."""
    probe = Probe()
    node = None
    try:
        stimulus = slave.Stimulus(probe, ctx) if kind.name == ComponentInfo.KIND_SLAVE else None
        if kind.name == ComponentInfo.KIND_CURRENT_SENSOR:
            current_sensor.PackStimulus(probe, ctx)
        watch = Watch(probe, kind)
        logs = malformed.LogWatch(probe) if malformed.applies(kind) else None
        node = NodeUnderTest(command)
        if kind.any_name:
            fqn = announced(probe, watch, kind, node)
        if fqn:
            life = Lifecycle(probe, fqn)
            _drive(report, kind, fqn, ctx, duration_s, balancing_timeout_s, probe, watch, node, life, stimulus, logs)
            code = node.stop()
            report.record("GEN-13", code == 0, f"exit code {code} after SIGINT (None: still running after 10 s)")
        else:
            report.record("GEN-01", False, f"no node announced a ComponentInfo of kind {kind.name!r} within "
                                           f"{START_TIMEOUT_S:g} s (exit code {node.proc.poll()})")
    finally:
        if node is not None and node.proc.poll() is None:
            node.stop(2.0)
        probe.close()
    if report.failed:
        report.notes.append(f"log of the node ({node.log}), last lines:\n{node.tail()}")


def announced(probe: Probe, watch: Watch, kind: Kind, node: NodeUnderTest) -> str:
    """The name of the node of ``kind`` the command started (a kind of any name), "" if none
    announced itself: the kit's domain holds only the kit and the command's nodes."""
    def name() -> str:
        infos = [a.msg.node_name for a in probe.snapshot(watch.components) if a.msg.kind == kind.name]
        return infos[0] if infos else ""

    return wait_until(lambda: name() or node.proc.poll() is not None, START_TIMEOUT_S) and name()


def check_incompatible_peer(report: Report, probe: Probe, node: NodeUnderTest) -> None:
    """GEN-19: a peer announcing the next MAJOR interface version is named in the node's log."""
    major = int(INTERFACE_VERSION.split(".")[0])
    peer = ComponentInfo(node_name=INCOMPATIBLE_PEER, kind=ComponentInfo.KIND_TOOL, vendor="bms conformance",
                         implementation="bms_tools.conformance", version="0.0.0",
                         interface_version=f"{major + 1}.0.0", host="conformance")
    peer.header.frame_id = INCOMPATIBLE_PEER.rsplit("/", 1)[-1]
    publisher = probe.node.create_publisher(ComponentInfo, topics.COMPONENTS.name, topics.LATCHED)
    publisher.publish(peer)
    named = wait_until(lambda: INCOMPATIBLE_PEER in node.log.read_text(errors="replace"), PEER_LOG_TIMEOUT_S)
    report.record("GEN-19", bool(named), f"no log line naming {INCOMPATIBLE_PEER} within {PEER_LOG_TIMEOUT_S:g} s "
                                         f"of its ComponentInfo with interface_version {peer.interface_version}")
    probe.node.destroy_publisher(publisher)


def _drive(report: Report, kind: Kind, fqn: str, ctx: Context, duration_s: float, balancing_timeout_s: float,
           probe: Probe, watch: Watch, node: NodeUnderTest, life: Lifecycle, stimulus: slave.Stimulus | None,
           logs: malformed.LogWatch | None) -> None:
    if not kind.managed:
        run_passive(probe, report, kind, fqn, ctx, watch, duration_s)
        check_incompatible_peer(report, probe, node)
        report.record("GEN-01", node.proc.poll() is None, f"the command ended with exit code {node.proc.returncode}")
        return
    appeared = wait_until(lambda: node.proc.poll() is not None or life.state(1.0) is not None, START_TIMEOUT_S)
    if node.proc.poll() is not None:
        report.record("GEN-01", False, f"the command ended with exit code {node.proc.returncode}")
        return
    managed = bool(appeared) and life.state() is not None
    if kind.autostart:
        report.skip("GEN-10", "an autostart kind")
        report.skip("GEN-11", "an autostart kind: active from the start")
        active = wait_until(lambda: life.state(1.0) == State.PRIMARY_STATE_ACTIVE, 10.0)
        report.record("GEN-14", bool(active), f"state {STATE_NAMES.get(life.state(), 'unknown')} 10 s after start "
                                               "(autostart kinds activate themselves)")
    else:
        report.skip("GEN-14", "a managed kind")
        time.sleep(QUIET_S)  # a node that activates itself would have done so by now
        state = life.state()
        report.record("GEN-10", state == State.PRIMARY_STATE_UNCONFIGURED,
                      "no lifecycle services" if state is None else f"state {STATE_NAMES.get(state, state)} "
                      "after start without a lifecycle manager")
        sent = quiet(watch, kind, ctx, QUIET_S)
        report.record("GEN-11", sent == 0, f"{sent} data messages while unconfigured")
    if not managed:
        report.record("GEN-12", False, "no lifecycle services: cannot be configured and activated")
        run_passive(probe, report, kind, fqn, ctx, watch, duration_s)  # what it does on its own
        return
    if not kind.autostart:
        ok = life.change(Transition.TRANSITION_CONFIGURE)
        report.record("GEN-12", ok, "configure failed")
        sent = quiet(watch, kind, ctx, QUIET_S)
        report.record("GEN-11", sent == 0, f"{sent} data messages while inactive")
        report.record("GEN-12", life.change(Transition.TRANSITION_ACTIVATE), "activate failed")
    report.record("GEN-12", publishes(watch, kind, ctx), "no data within 10 s of activation")
    run_passive(probe, report, kind, fqn, ctx, watch, duration_s)
    check_incompatible_peer(report, probe, node)
    if stimulus is not None:
        slave.exercise(report, probe, watch, ctx, life, stimulus, balancing_timeout_s)
    if kind.name == ComponentInfo.KIND_CONTACTOR:
        contactor.exercise(report, probe, watch)
    if logs is not None:
        malformed.exercise(report, probe, watch, logs, kind, fqn, ctx, lambda: node.proc.poll() is None)
    for cycle in (1, 2):
        ok = life.change(Transition.TRANSITION_DEACTIVATE)
        report.record("GEN-12", ok, f"deactivate of cycle {cycle} failed")
        sent = quiet(watch, kind, ctx, QUIET_S)
        report.record("GEN-11", sent == 0, f"{sent} data messages while inactive (cycle {cycle})")
        ok = life.change(Transition.TRANSITION_CLEANUP) and life.change(Transition.TRANSITION_CONFIGURE) \
            and life.change(Transition.TRANSITION_ACTIVATE)
        report.record("GEN-12", ok, f"cleanup, configure or activate of cycle {cycle} failed")
        report.record("GEN-12", publishes(watch, kind, ctx), f"no data within 10 s of activation in cycle {cycle}")
    if stimulus is not None:
        slave.check_sequence_over_run(report, watch, ctx)
