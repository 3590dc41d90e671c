"""Soak of the estimator alone on a simulated clock, as fast as it keeps up (issue 19, liveness).

Starts the estimator (demo pack, 48 cells, ``use_sim_time``, ``autostart``, no persistence) and
feeds it through the contract (test/helpers/estimator_feed.py): /clock in 0.1 s steps, one sample
per module and a current sample per step, never more than 2 s of simulated time ahead of its
PowerLimits. Prints the speed it sustained, the outputs, the largest lag and any stall (no
PowerLimits for 10 s of wall time while the clock and the samples went on), and what the
estimator logged about its timer (bms_common.timer_watchdog).

    .venv/bin/python bench/estimator_soak.py                      # 8 simulated hours
    .venv/bin/python bench/estimator_soak.py --hours 1 --executor events   # the executor with the stall
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test" / "helpers"))
from estimator_feed import EstimatorFeed  # noqa: E402

from bms_common.testing import isolate_dds, params, start_node  # noqa: E402


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0, help="simulated hours")
    parser.add_argument("--lead-s", type=float, default=0.5,
                        help="how far the clock may run ahead of the outputs (simulated s); more is faster "
                             "but bursty: samples queue up and arrive before their /clock")
    parser.add_argument("--executor", choices=["", "single", "events"], default="",
                        help="BMS_EXECUTOR for the estimator ('' = its default choice)")
    args = parser.parse_args()
    domain = isolate_dds()
    if args.executor:
        os.environ["BMS_EXECUTOR"] = args.executor
    tmp = Path(tempfile.mkdtemp(prefix="estimator-soak-"))
    print(f"estimator alone, {args.hours:g} simulated hours, executor {args.executor or 'default'}, "
          f"domain {domain}, log {tmp / 'estimator.log'}", flush=True)
    estimator = start_node(tmp, "bms_estimation", "estimator",
                           *params(use_sim_time=True, autostart=True, state_dir="none"))
    feed = EstimatorFeed()
    try:
        feed.wait_for_estimator()
        cpu_before = cpu_s(estimator.pid)
        result = feed.run(args.hours * 3600.0, max_lead_s=args.lead_s, report_every_s=60.0)
        cpu = cpu_s(estimator.pid) - cpu_before
        rss_kib = next(int(line.split()[1]) for line in Path(f"/proc/{estimator.pid}/status").read_text().splitlines()
                       if line.startswith("VmRSS"))
    finally:
        feed.close()
        estimator.stop()
    time.sleep(0.1)
    log = (tmp / "estimator.log").read_text(errors="replace") if (tmp / "estimator.log").exists() else ""
    watchdog = [line for line in log.splitlines() if "has not run for" in line or "runs again" in line]
    burst = {what: sum(what in line for line in log.splitlines()) for what in
             ("samples waiting, oldest dropped", "ahead of the receiver's clock", "behind the receiver's clock",
              "without a current sample from their time")}
    print(f"simulated {result.simulated_s:.0f} s in {result.wall_s:.0f} s of wall time: {result.speed:.1f}x")
    print(f"PowerLimits received {result.outputs} (one per tick; a tick after a clock jump of several periods "
          f"steps them all), "
          f"newest stamped {result.newest_output_s:.1f} s, largest lag behind the clock {result.max_lag_s:.2f} s")
    print(f"estimator CPU {cpu:.0f} s ({1000 * cpu / max(result.outputs, 1):.2f} ms per tick), RSS {rss_kib / 1024:.0f} MiB")
    print(f"stalls: {len(result.stalls)}" + "".join(f"\n  clock {c:.1f} s, outputs stopped at {o:.1f} s"
                                                    for c, o in result.stalls))
    print("log lines (throttled, at most one per 5 s each) of a feed too bursty to use every sample cleanly: "
          + ", ".join(f"{what!r} {count}" for what, count in burst.items()))
    print(f"watchdog lines in the estimator's log: {len(watchdog)}" + "".join(f"\n  {w}" for w in watchdog[:5]))
    return 1 if result.stalls else 0


if __name__ == "__main__":
    sys.exit(main())
