"""``bms conformance KIND``: passive checks of a running node (``--node``), or passive and
intrusive checks of a node the kit starts (``--command``) in a ROS domain of its own."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from bms_tools.conformance.kinds import KINDS, Context, module_of, node_name
from bms_tools.conformance.requirements import INTRUSIVE, REQUIREMENTS

# How long a passive run looks for a simulation clock (a /clock publisher, or the node itself
# subscribing to /clock) before judging on the system clock.
CLOCK_WAIT_S = 5.0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "conformance", help="check a node against the requirements of its kind (docs/standard/)",
        description="Checks a node against the numbered requirements of its kind (docs/standard/) and prints "
                    "PASS/FAIL per requirement; exit code 1 on any failure. --node: passive checks of a "
                    "running node, safe on a live pack. --command: the kit starts the node itself in a "
                    "ROS domain of its own and also drives its lifecycle and feeds it malformed input.")
    parser.add_argument("kind", choices=sorted(KINDS) + ["supervisor"], help="component kind")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--node", help="fully qualified name of a running node, e.g. /bms/module_2")
    target.add_argument("--command", help="command that starts the node (the kit adds --ros-args -r __ns:=/bms)")
    parser.add_argument("--module", type=int, default=None, help="slave: the module id (with --command)")
    parser.add_argument("--pack", default="demo", help="pack configuration the node serves (default demo)")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds of observation (default 3)")
    parser.add_argument("--balancing-timeout", type=float, default=5.0,
                        help="slave: the node's balancing_timeout_s (default 5)")
    parser.add_argument("--use-sim-time", action="store_true",
                        help="passive: judge stamps and rates on /clock (automatic when /clock is published)")
    parser.add_argument("--clock-step", type=float, default=0.05,
                        help="with --use-sim-time: the step of /clock, sim_host's step_s (default 0.05)")
    parser.add_argument("--junit", type=Path, help="also write the report as JUnit XML to this file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bms_common.pack_config import ConfigError, load_pack_config
    from bms_common.plausibility import physical_ranges
    from bms_tools.conformance.passive import kind_named
    from bms_tools.conformance.report import Report

    kind = kind_named(args.kind)
    try:
        pack = load_pack_config(args.pack)
        ranges = physical_ranges(pack)
    except ConfigError as error:
        print(f"bms conformance: {error}", file=sys.stderr)
        return 2
    module = args.module if args.command else module_of(args.node)
    if kind.name == "slave" and (module is None or not 0 <= module < pack.modules):
        print(f"bms conformance: a slave needs its module id: --node /bms/module_<id> or --module <id> "
              f"(0..{pack.modules - 1} in pack {pack.name})", file=sys.stderr)
        return 2
    ctx = Context(pack, ranges, module)
    fqn = args.node or node_name(kind, module)
    if args.command:
        report = Report(args.command, kind.name)
        _private_domain()
        from bms_tools.conformance.intrusive import run_intrusive

        try:
            run_intrusive(report, kind, fqn, ctx, args.command, args.duration, args.balancing_timeout)
        except OSError as error:
            print(f"bms conformance: cannot start {args.command!r}: {error}", file=sys.stderr)
            return 2
    else:
        report = Report(fqn, kind.name)
        from bms_tools.conformance.passive import DISCOVERY_TIMEOUT_S, Watch, node_present, run_passive
        from bms_tools.conformance.probe import Probe, wait_until

        probe = Probe()
        try:
            # Discovery first (the node, and with it the graph), then the clock.
            wait_until(lambda: node_present(probe, fqn), DISCOVERY_TIMEOUT_S)
            if args.use_sim_time or wait_until(lambda: _on_simulated_time(probe, fqn), CLOCK_WAIT_S):
                print("bms conformance: /clock is published: stamps and rates judged on simulated time",
                      file=sys.stderr)
                probe.use_simulated_time()
                ctx.clock_step_s = args.clock_step
            run_passive(probe, report, kind, fqn, ctx, Watch(probe, kind), args.duration)
        finally:
            probe.close()
    for number, requirement in REQUIREMENTS.items():
        if number.startswith(("GEN-", f"{kind.prefix}-")):
            report.skip(number, "intrusive: only on a node the kit starts (--command)"
                        if requirement.mode == INTRUSIVE and not args.command
                        else "not reached: an earlier requirement failed")
    print(report.text())
    print(f"requirements: docs/standard/general.md and {kind.spec}")
    if args.junit:
        report.write_junit(args.junit)
    return 1 if report.failed else 0


def _on_simulated_time(probe, fqn: str) -> bool:
    """Whether the node runs on a simulation clock: /clock is published, or the node subscribes
    to it (use_sim_time), which discovery may show before the simulation's publisher."""
    if probe.node.count_publishers("/clock") > 0:
        return True
    return any(f"{info.node_namespace.rstrip('/')}/{info.node_name}" == fqn
               for info in probe.node.get_subscriptions_info_by_topic("/clock"))


def _private_domain() -> None:
    """A ROS domain no other session on this machine holds, loopback only, for the kit and the
    node it starts (children inherit the environment)."""
    from bms_common.testing import isolate_dds

    domain = isolate_dds()
    print(f"bms conformance: private ROS_DOMAIN_ID {domain}, loopback only", file=sys.stderr)
    os.environ.setdefault("ROS_LOG_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), "bms-conformance-logs"))
