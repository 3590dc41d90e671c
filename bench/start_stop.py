"""Start-stop cycles of the simulated system with one state directory (issue 20 benchmark).

Each cycle runs `bms launch sim speed:=5 record:=false` until the master is in DRIVE, then stops
it, alternating Ctrl-C to `bms launch` (ordered) and SIGINT to every process at once (as
`ros2 launch` does). Prints per cycle the start time and the slowest process's exit, then a
summary: cycles whose stop raised a fault or warning, or left one latched (the next start
would begin in FAULT),
processes slower than 3 s, exit-time percentiles.

    source env.sh && python bench/start_stop.py [--cycles 100] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bms_common.testing import isolate_dds

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test" / "helpers"))
from start_stop import start, stop  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cycles", type=int, default=100)
    parser.add_argument("--keep", type=Path, help="directory for state and logs (default: a temporary one)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bms-start-stop-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"ROS_DOMAIN_ID {isolate_dds()} (a private one), logs in {root}", flush=True)
    state = root / "state"
    exits: list[float] = []
    bad: list[str] = []
    for cycle in range(args.cycles):
        all_at_once = cycle % 2 == 1
        mode = "all at once" if all_at_once else "ordered"
        log = root / f"launch_{cycle}.log"
        began = time.monotonic()
        try:
            launch = start(state, log)
        except AssertionError as exc:
            bad.append(f"cycle {cycle} ({mode}): did not start: {str(exc).splitlines()[0]}")
            print(f"cycle {cycle:3d} {mode:11s}: did not start ({log})", flush=True)
            continue
        start_s = time.monotonic() - began
        restored = "restored latched" in launch.output()
        stopped = stop(launch, state, all_at_once)
        slowest = max(stopped.exit_s, key=stopped.exit_s.get)
        exits += stopped.exit_s.values()
        print(f"cycle {cycle:3d} {mode:11s}: DRIVE after {start_s:5.1f} s, slowest exit {slowest} "
              f"{stopped.exit_s[slowest]:.2f} s, code {stopped.launch_code}", flush=True)
        problems = ["restored a latch at start"] if restored else []
        problems += [f"latched {stopped.latched}"] if stopped.latched else []
        problems += [f"raised while stopping {stopped.raised_while_stopping}"] if stopped.raised_while_stopping else []
        problems += [f"exit code {stopped.launch_code}"] if stopped.launch_code != 0 else []
        problems += [f"{label} {s:.2f} s" for label, s in stopped.exit_s.items() if s > 3.0]
        if problems:
            bad.append(f"cycle {cycle} ({mode}, {log}): {'; '.join(problems)}")
    quantiles = statistics.quantiles(exits, n=100)
    print(f"\n{args.cycles} cycles, {len(exits)} process exits: median {statistics.median(exits):.2f} s, "
          f"p99 {quantiles[98]:.2f} s, max {max(exits):.2f} s; cycles with a problem: {len(bad)}")
    for line in bad:
        print(f"  {line}")
    print(f"state and logs in {root}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
