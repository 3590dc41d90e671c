"""``bms replay-check BAG``: replay a run's measurements into fresh estimator and supervisor
nodes and compare their outputs with the recorded ones (docs/replay.md)."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

EXIT_PASS, EXIT_DIVERGED, EXIT_ERROR = 0, 1, 2


def _run(args: argparse.Namespace) -> int:
    from bms_common.testing import claim_domain_id
    from bms_tools.bags.progress import Progress
    from bms_tools.bags.reading import BagError
    from bms_tools.launcher.command import parse_arguments
    from bms_tools.replay.compare import compare, format_report
    from bms_tools.replay.feed import read_feed
    from bms_tools.replay.session import ReplaySession

    try:
        estimator_params = parse_arguments(args.estimator_param, "--estimator-param values")
        supervisor_params = parse_arguments(args.supervisor_param, "--supervisor-param values")
        feed = read_feed(args.bag, args.clock_step)
    except (ValueError, BagError) as error:
        print(f"bms replay-check: {error}")
        return EXIT_ERROR
    if not feed.inputs:
        print(f"bms replay-check: {args.bag} holds no measurements to replay")
        return EXIT_ERROR
    # A private domain: a live system on the caller's domain must not talk to the fresh nodes.
    domain_id = args.domain_id if args.domain_id >= 0 else claim_domain_id()
    log_dir = Path(args.log_dir or tempfile.mkdtemp(prefix="bms-replay-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    session = ReplaySession(args.pack, estimator_params, supervisor_params, log_dir, domain_id)
    try:
        progress = Progress()
        replayed = session.run(feed, lambda done, total: progress.update(f"clock step {done}/{total}"))
        progress.finish(f"replayed {len(feed.inputs)} messages over {len(feed.clock_ns)} clock steps "
                        f"in {time.monotonic() - started:.1f} s (node logs in {log_dir})")
    except (RuntimeError, AssertionError) as error:
        print(f"bms replay-check: {error}")
        return EXIT_ERROR
    finally:
        session.close()
    reports = compare(feed.recorded, replayed)
    format_report(reports)
    passed = all(report.passed for report in reports)
    print("verdict: PASS" if passed else "verdict: DIVERGED")
    return EXIT_PASS if passed else EXIT_DIVERGED


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("replay-check", help="replay a bag into fresh estimator and supervisor "
                                                 "nodes and compare their outputs with the recorded ones")
    parser.add_argument("bag", type=Path, help="bag directory")
    parser.add_argument("--pack", default="demo", help="pack configuration the run used (default demo)")
    parser.add_argument("--estimator-param", action="append", default=[], metavar="NAME:=VALUE",
                        help="parameter for the fresh estimator (repeatable)")
    parser.add_argument("--supervisor-param", action="append", default=[], metavar="NAME:=VALUE",
                        help="parameter for the fresh supervisor (repeatable)")
    parser.add_argument("--clock-step", type=float, default=0.05,
                        help="clock step in s when the bag has no /clock (default 0.05, the simulation's)")
    parser.add_argument("--domain-id", type=int, default=-1,
                        help="ROS_DOMAIN_ID for the replay (default: a free one)")
    parser.add_argument("--log-dir", default="", help="where the fresh nodes' logs go (default a temp dir)")
    parser.set_defaults(handler=_run)
