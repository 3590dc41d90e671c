"""Simulation throughput as real processes and nodes: real-time factor, CPU per module-sample, RSS.

Runs, for each pack, the simulation host (plant + one lifecycle node per module + current sensor,
one process), the lifecycle manager that activates them, and a subscriber process that receives
every CellMeasurements (standing in for the master), all over real DDS on loopback. The
simulation runs as fast as it can (``speed`` far above what the machine reaches) for
``--sim-seconds`` of simulated time; the plant reports the real-time factor it achieved.

    source env.sh && python bench/simulation.py            # 16 x 12 and 64 x 16, 10 Hz sampling
    python bench/simulation.py --sim-seconds 120 --speed 20 # pace at 20x and check it holds
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from bms_common.testing import NodeProcess, isolate_dds, params, start_node, wait_for

COUNTER = """
import sys, rclpy
from bms_common import topics
from bms_interfaces.msg import CellMeasurements
rclpy.init()
node = rclpy.create_node("bench_counter", namespace="/bms")
count = [0]
node.create_subscription(CellMeasurements, topics.CELL_MEASUREMENTS.name,
                         lambda m: count.__setitem__(0, count[0] + 1), topics.RELIABLE)
from rclpy.experimental import EventsExecutor
ex = EventsExecutor(); ex.add_node(node)
try:
    while rclpy.ok():
        ex.spin_once(timeout_sec=0.5)
        print(count[0], flush=True)
except KeyboardInterrupt:
    pass
"""

PACK = """chemistry: NMC
modules: {modules}
cells_per_module: {cells}
nominal_capacity_ah: 60.0
temperature_sensors: {sensors}
simulation: {{seed: 3, initial_soc: 0.6}}
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(modules: int, cells: int, sim_seconds: float, speed: float, workdir: Path) -> dict[str, float]:
    sensors = [list(range(k, min(k + 4, cells))) for k in range(0, cells, 4)]
    pack = workdir / f"bench_{modules}x{cells}.yaml"
    pack.write_text(PACK.format(modules=modules, cells=cells, sensors=sensors))
    counter = NodeProcess([sys.executable, "-c", COUNTER], workdir / "counter.log")
    host = start_node(workdir, "bms_slave", "sim_host",
                      *params(pack=str(pack), speed=speed, duration=sim_seconds, profile="drive"),
                      log=f"sim_{modules}x{cells}")
    manager = start_node(workdir, "bms_common", "lifecycle_manager", *params(pack=str(pack)),
                         "-p", "node_names:=[module_*, current_sensor]", log="manager")
    def received() -> int:
        return int((counter.output().split() or ["0"])[-1])

    try:
        wait_for(lambda: "active" in manager.output(), 120, "modules active")
        wait_for(lambda: received() > 0, 60, "the first samples at the counter")
        cpu_start, received_start = cpu_seconds(host.pid), received()
        rss = sum(rss_mib(p.pid) for p in (counter, host, manager))
        cpu_end, received_end = cpu_start, received_start
        while host.alive():  # the host's CPU can only be read while it lives
            try:
                cpu_end = cpu_seconds(host.pid)
            except (FileNotFoundError, ProcessLookupError):
                break
            received_end = received()
            time.sleep(0.2)  # sampling interval of the measurement, not synchronisation
        match = re.search(r"simulated ([\d.]+) s in ([\d.]+) s wall: ([\d.]+)x", host.output())
        if not match:
            raise RuntimeError(f"no real-time factor in the plant's log:\n{host.output()[-2000:]}")
        wait_for(lambda: received() >= received_end, 5, "the counter")
        total = received()
    finally:
        for proc in (manager, host, counter):
            proc.stop()
    samples = max(received_end - received_start, 1)
    return {"rtf": float(match.group(3)), "wall_s": float(match.group(2)), "rss_mib": rss,
            "cpu_us_per_module_sample": 1e6 * (cpu_end - cpu_start) / samples, "received": total,
            "expected": modules * sim_seconds / 0.1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sim-seconds", type=float, default=60.0)
    parser.add_argument("--speed", type=float, default=1000.0, help="pacing; 1000 = as fast as possible")
    parser.add_argument("--packs", default="16x12,64x16")
    args = parser.parse_args()
    isolate_dds()
    print(f"{'pack':>8} {'RTF':>7} {'wall s':>7} {'CPU us/module-sample':>21} {'RSS MiB':>8} {'received':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.packs.split(","):
            modules, cells = (int(x) for x in spec.split("x"))
            r = run(modules, cells, args.sim_seconds, args.speed, Path(tmp))
            print(f"{spec:>8} {r['rtf']:>6.1f}x {r['wall_s']:>7.1f} {r['cpu_us_per_module_sample']:>21.0f} "
                  f"{r['rss_mib']:>8.0f} {r['received']:>5}/{r['expected']:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
