"""Passive checks: what the kit can verify by watching a node, never touching it (GEN-01..09 and
the content requirements of its kind). Safe on a live pack."""

from __future__ import annotations

import time

import numpy as np
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy

from bms_common import topics
from bms_common.plausibility import SEQUENCE_MODULUS, stamp_problem
from bms_common.stamps import to_seconds
from bms_common.version import INTERFACE_VERSION, compatible, parse_semver
from bms_interfaces.msg import ComponentInfo
from bms_tools.conformance.kinds import ALWAYS_ALLOWED, KINDS, LIFECYCLE_SERVICES, Context, Kind, Output
from bms_tools.conformance.probe import Arrival, Probe, wait_until
from bms_tools.conformance.report import Report
from bms_tools.rosgraph import message_class

DISCOVERY_TIMEOUT_S = 10.0  # how long the kit waits for the node to appear


def split_name(fqn: str) -> tuple[str, str]:
    namespace, _, name = fqn.rpartition("/")
    return name, namespace or "/"


def subscriber_qos(topic: topics.Topic):
    return topics.LATCHED_MANY if topic.qos == topics.LATCHED else topic.qos


def node_present(probe: Probe, fqn: str) -> bool:
    name, namespace = split_name(fqn)
    return (name, namespace) in probe.node.get_node_names_and_namespaces()


class Watch:
    """Subscriptions to a kind's outputs and to /bms/components, opened before observing."""

    def __init__(self, probe: Probe, kind: Kind) -> None:
        self.probe = probe
        self.components = probe.collect(ComponentInfo, topics.COMPONENTS.name, topics.LATCHED_MANY)
        self.outputs = {out.topic.name: probe.collect(message_class(out.topic.type_name), out.topic.name,
                                                       subscriber_qos(out.topic)) for out in kind.outputs}

    def mark(self) -> dict[str, int]:
        """How many messages each output has so far (to look only at what comes after)."""
        return {name: len(self.probe.snapshot(bucket)) for name, bucket in self.outputs.items()}

    def since(self, topic: str, mark: dict[str, int] | None = None) -> list[Arrival]:
        return self.probe.snapshot(self.outputs[topic])[(mark or {}).get(topic, 0):]


def own_messages(kind: Kind, out: Output, arrivals: list[Arrival], ctx: Context,
                 sole_publisher: bool) -> list[Arrival] | None:
    """The node's messages among a topic's arrivals; None when they cannot be told apart."""
    if kind.name == ComponentInfo.KIND_SLAVE:
        frame = f"module_{ctx.module_id}"
        return [a for a in arrivals if a.msg.module_id == ctx.module_id or a.msg.header.frame_id == frame]
    return arrivals if sole_publisher else None


def check_component_info(report: Report, kind: Kind, fqn: str, infos: list[Arrival]) -> None:
    mine = [a.msg for a in infos if a.msg.node_name == fqn]
    if not mine:
        heard = sorted({a.msg.node_name for a in infos})
        report.record("GEN-02", False, f"no ComponentInfo with node_name {fqn} on /bms/components "
                                       f"(transient local, heard: {', '.join(heard) or 'none'})")
        report.skip("GEN-03", "no ComponentInfo")
        return
    info = mine[-1]
    short = split_name(fqn)[0]
    problems = []
    if info.header.frame_id != short:
        problems.append(f"header.frame_id {info.header.frame_id!r}, expected {short!r}")
    if info.kind != kind.name:
        problems.append(f"kind {info.kind!r}, expected {kind.name!r}")
    for field in ("vendor", "implementation", "version", "host"):
        if not getattr(info, field).strip():
            problems.append(f"{field} is empty")
    for field in ("version", "interface_version"):
        try:
            parse_semver(getattr(info, field))
        except ValueError:
            problems.append(f"{field} {getattr(info, field)!r} is not a semantic version")
    if len(mine) > 1 and len({(m.header.stamp.sec, m.header.stamp.nanosec) for m in mine}) > 1:
        problems.append(f"{len(mine)} different announcements (announce once per process)")
    report.record("GEN-02", not problems, "; ".join(problems))
    try:
        ok = compatible(INTERFACE_VERSION, info.interface_version)
    except ValueError:
        ok = False
    report.record("GEN-03", ok, f"interface_version {info.interface_version!r}, the system speaks {INTERFACE_VERSION}")
    if kind.name == ComponentInfo.KIND_SLAVE:
        report.record("SLV-06", info.kind == ComponentInfo.KIND_SLAVE and bool(info.hardware_id.strip()),
                      f"kind {info.kind!r}, hardware_id {info.hardware_id!r} (board serial or backend name)")


def component_nodes(probe: Probe, kind: Kind, fqn: str) -> list[tuple[str, str]]:
    """(name, namespace) of the node and, for a kind of any name, its helper nodes `<name>_<suffix>`
    in its namespace (the project's GUI reads its data topics on `gui_intake`)."""
    name, namespace = split_name(fqn)
    if not kind.any_name:
        return [(name, namespace)]
    return [(n, ns) for n, ns in probe.node.get_node_names_and_namespaces()
            if ns == namespace and (n == name or n.startswith(f"{name}_"))]


def check_graph(probe: Probe, report: Report, kind: Kind, fqn: str) -> set[str]:
    """GEN-04/05/06/09 (BRG-01, GUI-01); returns the output topics this node is the only publisher
    of (besides the kit)."""
    node = probe.node
    name, namespace = split_name(fqn)
    nodes = component_nodes(probe, kind, fqn)
    published: dict[str, list[str]] = {}
    for n, ns in nodes:
        published.update(node.get_publisher_names_and_types_by_node(n, ns))
    sole: set[str] = set()
    for topic, required in [(out.topic, True) for out in kind.outputs] + [(t, False) for t in kind.may_publish]:
        types = published.get(topic.absolute)
        if types is None:
            if required:
                report.record("GEN-04", False, f"does not publish {topic.absolute}")
            continue
        if types != [topic.type_name]:
            report.record("GEN-04", False, f"{topic.absolute} has type {types}, the contract's is {topic.type_name}")
            continue
        infos = node.get_publishers_info_by_topic(topic.absolute)
        theirs = [i for i in infos if (i.node_name, i.node_namespace) in nodes]
        ours = [i for i in node.get_subscriptions_info_by_topic(topic.absolute)
                if (i.node_name, i.node_namespace) == (node.get_name(), node.get_namespace())]
        if theirs and ours and str(theirs[0].topic_type_hash) != str(ours[0].topic_type_hash):
            report.record("GEN-04", False, f"{topic.absolute}: type hash {theirs[0].topic_type_hash} differs from "
                                           f"the contract's {ours[0].topic_type_hash} (built against another "
                                           "definition)")
        report.record("GEN-04", True)
        others = {(i.node_name, i.node_namespace) for i in infos} - {(name, namespace)}
        if not others:
            sole.add(topic.name)
        for info in theirs:
            offered = info.qos_profile
            problems = []
            if offered.reliability != topic.qos.reliability:
                problems.append(f"reliability {offered.reliability.name}, contract {topic.qos.reliability.name}")
            if offered.durability != topic.qos.durability:
                problems.append(f"durability {offered.durability.name}, contract {topic.qos.durability.name}")
            report.record("GEN-05", not problems, f"{topic.absolute}: " + "; ".join(problems))
    allowed = {t.absolute for t in kind.may_publish} | {o.topic.absolute for o in kind.outputs} \
        | set(map(_absolute, ALWAYS_ALLOWED))
    if kind.any_name:
        # Not in the safety path: no contract topic of another kind, no contract service.
        number = f"{kind.prefix}-01"
        stray = sorted(({t.absolute for t in topics.CONTRACT_TOPICS} - allowed) & published.keys())
        offered_services: dict[str, list[str]] = {}
        for n, ns in nodes:
            offered_services.update(node.get_service_names_and_types_by_node(n, ns))
        impersonated = sorted({f"{topics.NAMESPACE}/{s}" for s in (topics.REQUEST_STATE, topics.RESET_FAULTS)}
                              & offered_services.keys())
        report.record(number, not stray and not impersonated,
                      "; ".join(filter(None, [stray and f"publishes {', '.join(stray)} (contract topics of other "
                                                        "kinds)",
                                              impersonated and f"offers {', '.join(impersonated)}"])))
        report.record("GEN-04", True)
    else:
        others_outputs = {o.topic.absolute for k in KINDS.values() if k.name != kind.name for o in k.outputs}
        stray = sorted((others_outputs - allowed) & published.keys())
        if stray:
            report.record("GEN-04", False, f"also publishes {', '.join(stray)}, which belong to other kinds")
    subscribed: dict[str, list[str]] = {}
    for n, ns in nodes:
        subscribed.update(node.get_subscriber_names_and_types_by_node(n, ns))
    inputs = list(kind.inputs)
    if kind.any_name:  # every contract topic it reads is an input
        inputs += [t for t in topics.CONTRACT_TOPICS if t.absolute in subscribed and t not in inputs]
    for topic in inputs:
        if topic.absolute not in subscribed:
            report.record("GEN-06", False, f"does not subscribe to {topic.absolute}")
            continue
        for info in node.get_subscriptions_info_by_topic(topic.absolute):
            if (info.node_name, info.node_namespace) not in nodes:
                continue
            asked = info.qos_profile
            problems = []
            if asked.reliability != ReliabilityPolicy.RELIABLE:
                problems.append(f"reliability {asked.reliability.name} (RELIABLE: no sample may be lost)")
            if asked.durability == DurabilityPolicy.TRANSIENT_LOCAL and topic.qos.durability != asked.durability:
                problems.append("asks TRANSIENT_LOCAL of a VOLATILE topic: incompatible, nothing arrives")
            if topic in kind.latched_inputs and asked.durability != DurabilityPolicy.TRANSIENT_LOCAL:
                problems.append(f"durability {asked.durability.name}: TRANSIENT_LOCAL, to have the last value "
                                "at start")
            report.record("GEN-06", not problems, f"{topic.absolute}: " + "; ".join(problems))
        report.record("GEN-06", True)
    if not inputs:
        report.record("GEN-06", True)
    services = dict(node.get_service_names_and_types_by_node(name, namespace))
    if kind.managed:
        missing = [f"{fqn}/{s[2:]}" for s, t in LIFECYCLE_SERVICES if services.get(f"{fqn}/{s[2:]}") != [t]]
        report.record("GEN-09", not missing, f"lifecycle services missing: {', '.join(missing)}")
    for service, type_name in kind.services:
        number = {"request_state": "MST-03", "reset_faults": "SUP-03"}[service]
        full = f"{namespace.rstrip('/')}/{service}"
        report.record(number, services.get(full) == [type_name], f"no service {full} of type {type_name}")
    return sole


def _absolute(name: str) -> str:
    return name if name.startswith("/") else f"{topics.NAMESPACE}/{name}"


def check_stream(report: Report, kind: Kind, out: Output, mine: list[Arrival], ctx: Context) -> None:
    """GEN-07 (rate), GEN-08 (stamps), the sequence and content requirements of one output. On
    simulated time a period is measured to within one step of the simulation clock
    (``ctx.clock_step_s``): a timer runs only when /clock moves."""
    where = out.topic.absolute
    if out.topic.qos.durability == DurabilityPolicy.TRANSIENT_LOCAL and mine:
        mine = mine[1:]  # the latched sample may be from before the kit joined
    if not mine:
        if out.min_hz is not None:  # an on-change topic may stay quiet
            report.record("GEN-07", False, f"{where}: no message from the node")
        return
    stamps = np.array([to_seconds(a.msg.header.stamp) for a in mine])
    if out.min_hz is not None and len(mine) >= 2:
        mean_period = float(np.mean(np.diff(stamps)))
        slowest, fastest = 1.0 / out.min_hz + ctx.clock_step_s, 1.0 / out.max_hz - ctx.clock_step_s
        report.record("GEN-07", fastest <= mean_period <= slowest,
                      f"{where}: mean period {mean_period:.4f} s, allowed {fastest:.4g}..{slowest:.4g} s")
        # As the stamp tolerance: a sped-up simulation magnifies a late timer by its clock rate.
        rate = max(1.0, max(a.clock_rate for a in mine))
        largest = out.max_gap_s * rate + ctx.clock_step_s
        gap = float(np.max(np.diff(stamps)))
        report.record("GEN-07", gap <= largest, f"{where}: gap of {gap:.3f} s between samples (at most "
                                                f"{out.max_gap_s:g} s x clock rate {rate:.2f} + clock step "
                                                f"{ctx.clock_step_s:g} s)")
    elif out.min_hz is not None:
        report.record("GEN-07", False, f"{where}: only {len(mine)} messages")
    bad = [p for a, s in zip(mine, stamps, strict=True) if (p := stamp_problem(s, a.now_s, a.clock_rate))]
    report.record("GEN-08", not bad, f"{where}: {len(bad)} of {len(mine)} stamps out of tolerance, first: "
                                     f"{bad[0] if bad else ''}")
    backwards = int(np.sum(np.diff(stamps) < 0))
    report.record("GEN-08", backwards == 0, f"{where}: stamps went back {backwards} times")
    if out.sequence:
        sequences = [a.msg.sequence for a in mine]
        steps = [(b - a) % SEQUENCE_MODULUS for a, b in zip(sequences, sequences[1:], strict=False)]
        wrong = [(a, b) for a, b, s in zip(sequences, sequences[1:], steps, strict=False) if s != 1]
        report.record(out.sequence, not wrong, f"{where}: sequence steps other than +1: {wrong[:5]}")
    if out.checker:
        problems: dict[str, str] = {}
        for arrival in mine:
            for number, problem in out.checker(arrival.msg, ctx):
                problems.setdefault(number, f"{where}: {problem}")
        for number in out.content:
            report.record(number, number not in problems, problems.get(number, ""))


def run_passive(probe: Probe, report: Report, kind: Kind, fqn: str, ctx: Context, watch: Watch,
                duration_s: float, discovery_timeout_s: float = DISCOVERY_TIMEOUT_S) -> bool:
    """Watch ``fqn`` for ``duration_s``; False when the node never appeared."""
    for number in kind.not_applicable:
        report.skip(number, f"does not apply to kind {kind.name} ({kind.spec})")
    present = wait_until(lambda: node_present(probe, fqn), discovery_timeout_s)
    report.record("GEN-01", present, f"no node {fqn} in the graph after {discovery_timeout_s:g} s")
    if not present:
        return False
    if kind.any_name:
        report.record("GEN-01", split_name(fqn)[1] == topics.NAMESPACE,
                      f"{fqn} is not in the {topics.NAMESPACE} namespace")
    if probe.use_sim_time and not wait_until(lambda: probe.now_s() > 0, discovery_timeout_s):
        report.record("GEN-08", False, "no /clock: the stamps cannot be judged on simulated time")
    mark = watch.mark()
    wait_until(lambda: [a for a in probe.snapshot(watch.components) if a.msg.node_name == fqn], 5.0)
    time.sleep(duration_s)
    sole = check_graph(probe, report, kind, fqn)
    check_component_info(report, kind, fqn, probe.snapshot(watch.components))
    for out in kind.outputs:
        mine = own_messages(kind, out, watch.since(out.topic.name, mark), ctx, out.topic.name in sole)
        if mine is None:
            report.skip("GEN-07", f"{out.topic.absolute} has other publishers: its messages cannot be attributed")
            continue
        if not mine and out.min_hz is None:
            continue  # on change: nothing changed
        check_stream(report, kind, out, mine, ctx)
    if kind.name == ComponentInfo.KIND_SLAVE and not any(
            a.msg.module_id == ctx.module_id for a in watch.since(topics.CELL_MEASUREMENTS.name, mark)):
        report.record("SLV-01", False, f"no sample with module_id {ctx.module_id}")
    return True


def kind_named(name: str) -> Kind:
    aliases = {"supervisor": "safety", "safety_supervisor": "safety", "current-sensor": "current_sensor",
               "cloud_bridge": "bridge"}
    name = aliases.get(name, name)
    if name not in KINDS:
        raise ValueError(f"unknown kind {name!r}: one of {', '.join(KINDS)}")
    return KINDS[name]
