"""Packet loss between hosts: its effect on sample delivery and on the detection of a real outage.

Brings the system up on the four namespaced hosts of test/test_multihost.py (SUBNET discovery,
root needed), then for each loss rate drops that share of the packets slave1 sends (nftables
``numgen random`` in its namespace) for ``--seconds`` of wall time and reports the longest gap
between two samples of its modules and whether a STALE_MODULE fault was raised; with ``--unplug``
it finally unplugs slave1 under the last loss rate and reports the detection time. A false
stale fault latches and opens the pack; the bench resets and drives again before the next rate.

    source env.sh && sudo -E .venv/bin/python bench/multihost_loss.py --loss 0 20 40 60
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "test" / "helpers"))

from multihost import HOSTS, SLAVE_MODULES, Probe, System  # noqa: E402
from netns import Network, ensure_nftables  # noqa: E402

from bms_common.testing import isolate_dds, wait_for  # noqa: E402
from bms_interfaces.msg import PackState  # noqa: E402

HOST = "slave1"


def drive(probe: Probe, since: float) -> None:
    if probe.events("pack")[-1]["state"] == PackState.STATE_DRIVE:
        return
    wait_for(lambda: probe.command("reset")["ok"], 120, "reset_faults to succeed")
    wait_for(lambda: probe.command("request STANDBY")["ok"], 60, "STANDBY")
    wait_for(lambda: probe.command("request DRIVE")["ok"], 60, "DRIVE accepted")
    probe.first("pack", since, lambda e: e["state"] == PackState.STATE_DRIVE, 120, "DRIVE")


def measure(system: System, probe: Probe, percent: int, seconds: float) -> str:
    mine = [str(m) for m in SLAVE_MODULES[HOST]]
    probe.command("gaps")
    since = time.monotonic()
    system.network.set_loss(HOST, percent)
    seen = {"worst": 0.0, "samples": 0}

    def collect() -> bool:
        answer = probe.command("gaps")
        seen["worst"] = max([seen["worst"]] + [answer["max_gap_s"].get(m, 0.0) for m in mine])
        seen["samples"] += sum(answer["samples"].get(m, 0) for m in mine)
        return time.monotonic() - since >= seconds

    try:
        wait_for(collect, seconds + 60, f"{seconds} s under {percent} % loss", poll_s=1.0)
    finally:
        system.network.set_loss(HOST, 0)
    worst, samples = seen["worst"], seen["samples"]
    stale = [e for e in probe.events("safety", since) if set(map(str, e["stale"])) & set(mine)]
    line = (f"{percent:3d} %  samples {samples:5d}  longest gap {worst:5.2f} s  "
            f"false STALE_MODULE {'yes' if stale else 'no'}")
    drive(probe, time.monotonic())
    return line


def unplug(system: System, probe: Probe, percent: int) -> str:
    mine = list(SLAVE_MODULES[HOST])
    system.network.set_loss(HOST, percent)
    cut = time.monotonic()
    system.network.set_link(HOST, up=False)
    try:
        stale = probe.first("safety", cut, lambda e: e["stale"] == mine, 60, f"STALE_MODULE {mine}")
    finally:
        system.network.set_link(HOST, up=True)
        system.network.set_loss(HOST, 0)
    silent_s = stale["stamp"] - max(stale["last_arrival"][str(m)] for m in mine)
    return (f"unplugged under {percent} % loss: STALE_MODULE {silent_s:.2f} s simulated after the last arrival, "
            f"{stale['t'] - cut:.2f} s wall after the cut")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", type=int, nargs="+", default=[0, 20, 40, 60], metavar="PERCENT")
    parser.add_argument("--seconds", type=float, default=30.0, help="wall time per loss rate")
    parser.add_argument("--unplug", action="store_true", help="unplug slave1 under the last loss rate")
    args = parser.parse_args()
    if not ensure_nftables():
        print("nft is missing: install Debian's nftables", file=sys.stderr)
        return 2
    isolate_dds()
    network = Network(HOSTS).up()
    system = System(network, "subnet", Path(tempfile.mkdtemp(prefix="bms-multihost-")))
    try:
        probe = system.probe("master")
        start = time.monotonic()
        system.start_all()
        probe.first("pack", start, lambda e: e["state"] == PackState.STATE_DRIVE, 180, "DRIVE across hosts")
        print(f"DRIVE {time.monotonic() - start:.1f} s after start; {HOST} sends modules "
              f"{SLAVE_MODULES[HOST]}; stale timeout 1 s", flush=True)
        for percent in args.loss:
            print(measure(system, probe, percent, args.seconds), flush=True)
        if args.unplug:
            print(unplug(system, probe, args.loss[-1]), flush=True)
    finally:
        system.stop()
        network.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
