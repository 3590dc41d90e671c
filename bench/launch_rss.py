"""Total memory (RSS) of a launch in isolated and in composed mode (issue 7 benchmark).

Runs ``bms launch FILE ARGS`` and then ``bms launch --composed FILE ARGS``; each time waits until
the lifecycle manager reports ``active`` (or the timeout passes), lets the system settle, sums
VmRSS over every process the launcher started (read from /proc, no psutil), then stops the
launch with SIGINT as Ctrl-C would.

    source env.sh && python bench/launch_rss.py launch/sim.launch.xml pack:=16x12 [--timeout 120]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import rclpy
from rclpy.node import Node
from std_msgs.msg import String

from bms_common import topics
from bms_common.testing import children_of


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    tree = children_of()
    found, todo = [], list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo += tree.get(child, [])
    return found


class StatusWatch:
    """Follows the lifecycle manager's latched status topic."""

    def __init__(self, topic: str) -> None:
        self.node = Node("launch_rss_bench")
        self.last = ""
        self.node.create_subscription(String, topic, self._on_status, topics.LATCHED)
        self._thread = threading.Thread(target=rclpy.spin, args=(self.node,), daemon=True)
        self._thread.start()

    def _on_status(self, msg: String) -> None:
        self.last = msg.data


def measure(argv: list[str], watch: StatusWatch, timeout_s: float, settle_s: float) -> tuple[int, int, str]:
    """Returns (processes, total RSS in KiB, last status)."""
    watch.last = ""
    launch = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while watch.last != "active" and time.monotonic() < deadline and launch.poll() is None:
            time.sleep(0.2)
        time.sleep(settle_s)  # a benchmark, not a test: let buffers and caches reach steady state
        pids = descendants(launch.pid)
        return len(pids), sum(rss_kib(pid) for pid in pids), watch.last or "(no status)"
    finally:
        if launch.poll() is None:
            os.kill(launch.pid, signal.SIGINT)
        try:
            launch.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(launch.pid, signal.SIGKILL)
            launch.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="launch file or NAME")
    parser.add_argument("arguments", nargs="*", metavar="name:=value")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for 'active'")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to wait after 'active'")
    parser.add_argument("--status-topic", default="/bms/lifecycle_manager/status")
    args = parser.parse_args()
    rclpy.init(args=[])
    watch = StatusWatch(args.status_topic)
    results = {}
    try:
        for mode, extra in (("isolated", []), ("composed", ["--composed"])):
            argv = ["bms", "launch", *extra, args.file, *args.arguments]
            count, kib, status = measure(argv, watch, args.timeout, args.settle)
            results[mode] = kib
            print(f"{mode:9s} {count:3d} processes  {kib / 1024:8.1f} MiB  (status: {status})", flush=True)
    finally:
        watch.node.destroy_node()
        rclpy.shutdown()
    if results["composed"]:
        print(f"ratio isolated / composed: {results['isolated'] / results['composed']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
