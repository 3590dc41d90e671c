"""CPU and memory of the GUI node with browsers connected (issue 13 benchmark).

Starts the gui node and a synthetic publisher of the contract topics (MODULES x CELLS cells at
10 Hz, pack, state, limits, safety and estimates), connects BROWSERS headless chromium pages
(Debian's chromium, no network), lets them settle, then samples the gui process's CPU time
(utime + stime from /proc) and VmRSS over the measuring window. Prints one line of figures.

    source env.sh && python bench/gui.py                      # 16 x 12, three browsers, 30 s
    source env.sh && python bench/gui.py --modules 200 --cells 16 --seconds 30
Use a ROS_DOMAIN_ID of your own (the script uses the environment's, loopback discovery).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
BROWSER_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]


def publish(modules: int, cells: int, rate_hz: float) -> None:
    """The synthetic pack: runs until killed."""
    import math

    import rclpy

    from bms_common import topics
    from bms_interfaces.msg import (
        CellMeasurements,
        CellStates,
        CurrentLimits,
        PackMeasurement,
        PackState,
        SafetyStatus,
    )

    rclpy.init()
    node = rclpy.create_node("gui_bench_pack", namespace="/bms")
    pubs = {t.name: node.create_publisher(m, t.name, t.qos) for t, m in (
        (topics.CELL_MEASUREMENTS, CellMeasurements), (topics.PACK_MEASUREMENT, PackMeasurement),
        (topics.PACK_STATE, PackState), (topics.CURRENT_LIMITS, CurrentLimits),
        (topics.SAFETY_STATUS, SafetyStatus), (topics.CELL_STATES, CellStates))}
    sequence = [0]

    def tick() -> None:
        sequence[0] += 1
        now = node.get_clock().now()
        stamp, t = now.to_msg(), now.nanoseconds / 1e9
        for module in range(modules):
            msg = CellMeasurements(module_id=module, sequence=sequence[0])
            msg.header.stamp = stamp
            msg.cell_voltages_v = [3.7 + 0.05 * math.sin(t / 10 + module + c / 7) for c in range(cells)]
            msg.temperatures_degc = [25.0 + module % 5] * max(1, cells // 4)
            msg.balancing = [c % 5 == 0 for c in range(cells)]
            pubs[topics.CELL_MEASUREMENTS.name].publish(msg)
        pack = PackMeasurement(current_a=-50 * math.sin(t / 5), pack_voltage_v=3.7 * modules * cells,
                               dc_link_voltage_v=3.7 * modules * cells, insulation_resistance_ohm=5e6,
                               hvil_closed=True, sequence=sequence[0])
        pack.header.stamp = stamp
        pubs[topics.PACK_MEASUREMENT.name].publish(pack)
        state = PackState(operating_state=PackState.STATE_DRIVE, module_status=[1] * modules,
                          min_cell_voltage_v=3.65, max_cell_voltage_v=3.75, max_temperature_degc=29.0)
        state.header.stamp = stamp
        pubs[topics.PACK_STATE.name].publish(state)
        limits = CurrentLimits(max_charge_current_a=50.0, max_discharge_current_a=200.0)
        limits.header.stamp = stamp
        pubs[topics.CURRENT_LIMITS.name].publish(limits)
        safety = SafetyStatus(level=0, sequence=sequence[0], contactors_allowed=True)
        safety.header.stamp = stamp
        pubs[topics.SAFETY_STATUS.name].publish(safety)
        estimates = CellStates(module_count=modules, cells_per_module=cells, pack_soc=0.6, pack_soh=0.98)
        estimates.header.stamp = stamp
        estimates.soc = [0.6] * (modules * cells)
        estimates.soh = [0.98] * (modules * cells)
        estimates.internal_resistance_ohm = [0.001] * (modules * cells)
        pubs[topics.CELL_STATES.name].publish(estimates)

    node.create_timer(1.0 / rate_hz, tick)
    rclpy.spin(node)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", type=int, default=16)
    parser.add_argument("--cells", type=int, default=12)
    parser.add_argument("--rate", type=float, default=10.0, help="data rate [Hz]")
    parser.add_argument("--browsers", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=30.0, help="measuring window")
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--screenshot", default="", help="save the first browser's page here at the end")
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        publish(args.modules, args.cells, args.rate)
        return 0
    from playwright.sync_api import sync_playwright

    from bms_common.testing import executable

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = Path("log")
    log.mkdir(exist_ok=True)
    pack = subprocess.Popen([sys.executable, __file__, "--publish", "--modules", str(args.modules),
                             "--cells", str(args.cells), "--rate", str(args.rate)],
                            stdout=open(log / "gui-bench-pack.log", "w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    gui = subprocess.Popen([executable("bms_gui", "gui"), "--ros-args", "-r", "__ns:=/bms", "-p", f"port:={port}",
                            "-p", "users_file:=/nonexistent", "-p", "audit_log:=log/gui-bench-audit.log"],
                           stdout=open(log / "gui-bench.log", "w"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the gui node did not answer within 60 s (log/gui-bench.log)") from None
                time.sleep(0.3)
        with sync_playwright() as playwright:
            browsers = [playwright.chromium.launch(executable_path=shutil.which("chromium"), args=BROWSER_ARGS)
                        for _ in range(args.browsers)]
            for browser in browsers:
                page = browser.new_page(viewport={"width": 1280, "height": 1400})
                page.goto(url)
            time.sleep(args.settle)
            cpu0, t0 = cpu_seconds(gui.pid), time.monotonic()
            rss = []
            while time.monotonic() - t0 < args.seconds:
                time.sleep(1.0)
                rss.append(rss_mib(gui.pid))
            cpu = (cpu_seconds(gui.pid) - cpu0) / (time.monotonic() - t0)
            seen = browsers[0].contexts[0].pages[0].evaluate(
                "[bms.grid ? bms.grid.modules * bms.grid.cells : 0, bms.status ? bms.status.intake_msgs_per_s : 0]"
            ) if browsers else [0, 0]
            if args.screenshot and browsers:
                browsers[0].contexts[0].pages[0].screenshot(path=args.screenshot, full_page=True)
            for browser in browsers:
                browser.close()
        print(f"gui node, {args.modules} x {args.cells} cells at {args.rate:g} Hz, {args.browsers} browsers "
              f"(a browser sees {seen[0]} cells; the node takes {seen[1]:.0f} of {(args.modules + 5) * args.rate:.0f} "
              f"msg/s asked): CPU {100 * cpu:.1f} % of one core, "
              f"RSS {max(rss):.0f} MiB max ({min(rss):.0f} min) over {args.seconds:g} s")
        if pack.poll() is not None:
            raise SystemExit(f"the synthetic publisher ended with {pack.returncode}")
    finally:
        for proc in (gui, pack):
            proc.terminate()
            proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
