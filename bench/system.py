"""CPU, memory and message rates of the whole simulated BMS, per process, at a pack and a speed.

Runs the real launch, ``bms launch [--composed] sim pack:=P speed:=S gui:=false record:=false
cloud:=false`` (state in a temporary directory), waits until the lifecycle manager reports
``active``, lets it settle, then measures over a wall-clock window:

- CPU of every process of the launch in % of one core: utime + stime from /proc/PID/stat over the
  window (steady state); the CPU spent from the start until the window opens is reported apart
  (start-up, in CPU seconds). CPU time is what a process really used, so the figures hold on a
  loaded machine; wall-clock rates do not (see docs/performance.md);
- RSS of every process at the end of the window;
- messages per second per topic (every /bms topic and /clock), counted by a monitor node in this
  process, and the messages per second each BMS node must take (its subscriptions' rates, /clock
  included) with the rclpy floor: that rate times the measured CPU cost of one received message;
- cell samples stamped inside the window: received, lost (sequence gaps and samples the plant
  never sent for the simulated time that passed) and late (older than the module stale timeout
  when this monitor took them, by /clock: an upper bound, the monitor's own lag included; not
  part of the verdict);
- supervisor periods evaluated (SafetyStatus sequence against 20 Hz of simulated time), the
  highest safety level seen and the master's operating states;
- the speed achieved (simulated seconds per wall second): the plant holds simulated time back
  while BMS nodes lag, so a speed that does not hold shows here too.

``--find-max-speed`` runs the ladder of speeds for each pack and reports the highest that holds:
no lost sample, no warning or fault, at least 99 % of supervisor periods evaluated and at least
95 % of the requested speed achieved.

    source env.sh && ROS_DOMAIN_ID=126 python bench/system.py --pack nmc_16x12 --speed 1 [--composed]
    source env.sh && python bench/system.py --find-max-speed --packs demo nmc_16x12 nmc_64x16

The monitor node costs CPU of its own (shown as "monitor"); it is not part of the BMS figures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from std_msgs.msg import String

from bms_common import topics
from bms_common.pack_config import load_pack_config
from bms_interfaces.msg import CellMeasurements, PackState, SafetyStatus
from bms_safety.limits import load_limits

CLK_TCK = os.sysconf("SC_CLK_TCK")
EVALUATION_HZ = 20.0  # the supervisor's evaluation rate (ARCHITECTURE.md, safety_status)
STATE_NAMES = {0: "STANDBY", 1: "PRECHARGE", 2: "DRIVE", 3: "CHARGE", 4: "ERROR"}
# Processes that are not the BMS: the simulated plant (sim_host) and the launcher itself.
NOT_BMS = {"sim_host", "launcher"}


# --- processes ------------------------------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def descendants(pid: int) -> list[int]:
    tree = _children()
    found, todo = [], list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo += tree.get(child, [])
    return found


def cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def label(pid: int) -> str:
    """The node executable(s) a process runs: its script name, or the container's node labels."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    args = [a.decode(errors="replace") for a in argv if a]
    if "bms_tools.container" in args:
        names = [json.loads(args[i + 1]).get("label", "?") for i, a in enumerate(args[:-1]) if a == "--node"]
        return "container(" + "+".join(names) + ")"
    for arg in args[:3]:
        name = Path(arg).name
        if name in ("bms",):
            return "launcher"
        if not name.startswith("python") and name != "-m":
            return name
    return Path(args[0]).name if args else "?"


# --- monitor --------------------------------------------------------------------------------------
@dataclass
class ModuleCount:
    first_seq: int = -1
    last_seq: int = -1
    received: int = 0
    gaps: int = 0
    late: int = 0
    first_stamp_s: float = float("nan")
    last_stamp_s: float = float("nan")


@dataclass
class Counts:
    per_topic: dict[str, int] = field(default_factory=dict)
    modules: dict[int, ModuleCount] = field(default_factory=dict)
    status_first_seq: int = -1
    status_last_seq: int = -1
    max_level: int = 0
    states: list[str] = field(default_factory=list)
    clock_s: float = float("nan")


class Monitor:
    """Counts every /bms topic and /clock; follows cell samples, safety status and pack state."""

    def __init__(self, stale_s: float) -> None:
        self.context = rclpy.Context()
        rclpy.init(args=[], context=self.context)
        self.node = Node("system_bench_monitor", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.stale_s = stale_s
        self.counting = False  # topic rates: messages that arrive while the window is open
        # Cell samples count by their stamp (simulated time): those stamped inside the window,
        # however late the monitor itself takes them (its own lag must not count as a loss).
        self.window_sim = (float("inf"), float("inf"))
        self.newest_stamp: dict[int, float] = {}  # module -> stamp of its newest sample taken
        self.counts = Counts()
        self.status = ""
        self.lock = threading.Lock()
        self.subscribed: set[str] = set()
        self.node.create_subscription(String, "/bms/lifecycle_manager/status", self._on_status, topics.LATCHED)
        self.node.create_subscription(Clock, "/clock", self._on_clock, 10)
        # Deep enough to hold every sample of a window while this monitor lags behind.
        self.node.create_subscription(CellMeasurements, topics.CELL_MEASUREMENTS.absolute, self._on_cells,
                                      QoSProfile(depth=20000, reliability=ReliabilityPolicy.RELIABLE))
        self.node.create_subscription(SafetyStatus, topics.SAFETY_STATUS.absolute, self._on_safety, 10)
        self.node.create_subscription(PackState, topics.PACK_STATE.absolute, self._on_pack_state, 10)
        self.subscribed |= {"/clock", topics.CELL_MEASUREMENTS.absolute, topics.SAFETY_STATUS.absolute,
                            topics.PACK_STATE.absolute}
        self.running = True
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()

    def _spin(self) -> None:
        while self.running:
            self.executor.spin_once(timeout_sec=0.1)

    def subscribe_all(self) -> None:
        """Count every other topic of the graph (raw: no deserialization)."""
        import importlib

        def get_message(type_name: str) -> type:
            package, kind, name = type_name.split("/")
            return getattr(importlib.import_module(f"{package}.{kind}"), name)

        for name, types in self.node.get_topic_names_and_types():
            if name in self.subscribed or not (name.startswith("/bms/") or name in ("/battery_state", "/diagnostics")):
                continue
            infos = self.node.get_publishers_info_by_topic(name)
            best_effort = any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos)
            qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT if best_effort
                             else ReliabilityPolicy.RELIABLE)
            try:
                msg_type = get_message(types[0])
            except (AttributeError, ModuleNotFoundError, ValueError):
                continue
            self.node.create_subscription(msg_type, name, lambda _m, n=name: self._count(n), qos, raw=True)
            self.subscribed.add(name)

    def subscribers_of(self) -> dict[str, list[str]]:
        """Topic -> the nodes that subscribe to it (this monitor left out)."""
        out: dict[str, list[str]] = {}
        for name, _types in self.node.get_topic_names_and_types():
            nodes = [i.node_name for i in self.node.get_subscriptions_info_by_topic(name)
                     if i.node_name != self.node.get_name()]
            if nodes:
                out[name] = nodes
        return out

    def _count(self, name: str) -> None:
        if self.counting:
            with self.lock:
                self.counts.per_topic[name] = self.counts.per_topic.get(name, 0) + 1

    def _on_status(self, msg: String) -> None:
        self.status = msg.data

    def _on_clock(self, msg: Clock) -> None:
        self.counts.clock_s = msg.clock.sec + msg.clock.nanosec * 1e-9
        self._count("/clock")

    def _on_cells(self, msg: CellMeasurements) -> None:
        self._count(topics.CELL_MEASUREMENTS.absolute)
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self.newest_stamp[msg.module_id] = stamp
        if not self.window_sim[0] <= stamp < self.window_sim[1]:
            return
        with self.lock:
            m = self.counts.modules.setdefault(msg.module_id, ModuleCount())
            if m.last_seq >= 0 and msg.sequence > m.last_seq + 1:
                m.gaps += msg.sequence - m.last_seq - 1
            if m.first_seq < 0:
                m.first_seq, m.first_stamp_s = msg.sequence, stamp
            m.last_seq, m.last_stamp_s = max(m.last_seq, msg.sequence), stamp
            m.received += 1
            if self.counts.clock_s - stamp > self.stale_s:
                m.late += 1

    def _on_safety(self, msg: SafetyStatus) -> None:
        if not self.counting:
            return
        self._count(topics.SAFETY_STATUS.absolute)
        c = self.counts
        if c.status_first_seq < 0:
            c.status_first_seq = msg.sequence
        c.status_last_seq = max(c.status_last_seq, msg.sequence)
        c.max_level = max(c.max_level, msg.level)

    def _on_pack_state(self, msg: PackState) -> None:
        if not self.counting:
            return
        self._count(topics.PACK_STATE.absolute)
        name = STATE_NAMES.get(msg.operating_state, str(msg.operating_state))
        if not self.counts.states or self.counts.states[-1] != name:
            self.counts.states.append(name)

    def reset(self) -> None:
        with self.lock:
            self.counts = Counts(clock_s=self.counts.clock_s)

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=5.0)
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


# --- one run --------------------------------------------------------------------------------------
@dataclass
class Trial:
    pack: str
    speed: float
    mode: str
    status: str = ""
    startup_s: float = 0.0
    window_s: float = 0.0
    sim_s: float = 0.0
    cpu_pct: dict[str, float] = field(default_factory=dict)
    startup_cpu_s: dict[str, float] = field(default_factory=dict)
    rss: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    node_intake: dict[str, float] = field(default_factory=dict)
    samples_expected: int = 0
    samples_received: int = 0
    samples_lost: int = 0
    samples_late: int = 0
    periods_expected: int = 0
    periods_evaluated: int = 0
    max_level: int = 0
    states: list[str] = field(default_factory=list)
    monitor_cpu_pct: float = 0.0

    @property
    def achieved_speed(self) -> float:
        return self.sim_s / self.window_s if self.window_s else 0.0

    @property
    def period_fraction(self) -> float:
        return self.periods_evaluated / self.periods_expected if self.periods_expected else 0.0

    def holds(self) -> bool:
        return (self.status == "active" and self.samples_lost == 0 and self.max_level == 0
                and "ERROR" not in self.states and self.period_fraction >= 0.99
                and self.achieved_speed >= 0.95 * self.speed)


def run_trial(monitor: Monitor, pack: str, speed: float, composed: bool, window_s: float, settle_s: float,
              timeout_s: float, log: Path) -> Trial:
    trial = Trial(pack, speed, "composed" if composed else "isolated")
    state_dir = tempfile.mkdtemp(prefix="bms-system-bench-")
    argv = ["bms", "launch", *(["--composed"] if composed else []), "sim", f"pack:={pack}", f"speed:={speed}",
            "gui:=false", "record:=false", "cloud:=false", f"state_dir:={state_dir}"]
    monitor.status = ""
    monitor.counting = False
    monitor.window_sim = (float("inf"), float("inf"))
    monitor.newest_stamp = {}
    start = time.monotonic()
    with log.open("a") as out:
        out.write(f"\n=== {' '.join(argv)}\n")
        out.flush()
        launch = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while monitor.status != "active" and time.monotonic() - start < timeout_s and launch.poll() is None:
            time.sleep(0.2)
        trial.status = monitor.status or "(no status)"
        trial.startup_s = time.monotonic() - start
        if trial.status != "active":
            return trial
        monitor.subscribe_all()
        time.sleep(settle_s)
        pids = descendants(launch.pid) + [launch.pid]
        labels = {pid: label(pid) for pid in pids}
        before = {pid: cpu_ticks(pid) for pid in pids}
        mon_before = time.process_time()
        monitor.reset()
        monitor.counting = True
        t0, sim0 = time.monotonic(), monitor.counts.clock_s
        monitor.window_sim = (sim0, float("inf"))
        time.sleep(window_s)
        monitor.counting = False
        trial.window_s = time.monotonic() - t0
        sim1 = monitor.counts.clock_s
        monitor.window_sim = (sim0, sim1)
        trial.sim_s = sim1 - sim0
        after = {pid: cpu_ticks(pid) for pid in pids}
        trial.monitor_cpu_pct = 100 * (time.process_time() - mon_before) / trial.window_s
        # Let the monitor take the samples stamped inside the window that it has not taken yet
        # (on a loaded machine it lags); it sees the end of the window when every module's
        # newest sample is stamped past it.
        modules = load_pack_config(pack).modules
        drain_end = time.monotonic() + 90.0
        while time.monotonic() < drain_end and not (len(monitor.newest_stamp) >= modules and all(
                stamp >= sim1 - 0.15 for stamp in list(monitor.newest_stamp.values()))):
            time.sleep(0.2)
        for pid in pids:
            name = labels[pid]
            trial.cpu_pct[name] = trial.cpu_pct.get(name, 0.0) + 100 * (after[pid] - before[pid]) / CLK_TCK / trial.window_s
            trial.startup_cpu_s[name] = trial.startup_cpu_s.get(name, 0.0) + before[pid] / CLK_TCK
            trial.rss[name] = trial.rss.get(name, 0.0) + rss_mib(pid)
        c = monitor.counts
        trial.rates = {t: n / trial.window_s for t, n in sorted(c.per_topic.items())}
        # Cell samples by stamp, not by when this monitor took them (it may lag behind).
        trial.rates[topics.CELL_MEASUREMENTS.absolute] = sum(m.received for m in c.modules.values()) / trial.window_s
        for topic, nodes in monitor.subscribers_of().items():
            for node in nodes:
                trial.node_intake[node] = trial.node_intake.get(node, 0.0) + trial.rates.get(topic, 0.0)
        cfg = load_pack_config(pack)
        per_module = round(trial.sim_s * 10)  # 10 Hz samples (sim_host's sample_period_s default)
        trial.samples_expected = per_module * cfg.modules
        trial.samples_received = sum(m.received for m in c.modules.values())
        # A sequence gap, or fewer samples than the simulated time asks for (one spare for the
        # window's edges): the larger of the two per module; a module never heard lost them all.
        trial.samples_lost = sum(max(m.gaps, per_module - 1 - m.received) for m in c.modules.values()) \
            + per_module * (cfg.modules - len(c.modules))
        trial.samples_late = sum(m.late for m in c.modules.values())
        trial.periods_expected = round(trial.sim_s * EVALUATION_HZ)
        trial.periods_evaluated = c.status_last_seq - c.status_first_seq + 1 if c.status_first_seq >= 0 else 0
        trial.max_level, trial.states = c.max_level, list(c.states)
        return trial
    finally:
        if launch.poll() is None:
            os.kill(launch.pid, signal.SIGINT)
        try:
            launch.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(launch.pid, signal.SIGKILL)
            launch.wait()


# --- the rclpy floor ------------------------------------------------------------------------------
_PROBE = r"""
import sys, time, rclpy
from rclpy.executors import SingleThreadedExecutor
from std_msgs.msg import Float64MultiArray
rclpy.init()
node = rclpy.create_node("per_message_probe_sub")
got = [0]
node.create_subscription(Float64MultiArray, "/per_message_probe", lambda m: got.__setitem__(0, got[0] + 1), 100)
ex = SingleThreadedExecutor(); ex.add_node(node)
print("ready", flush=True)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end:
    ex.spin_once(timeout_sec=0.05)
print(got[0], time.process_time(), flush=True)
"""


def per_message_cost_us(count: int = 2000, rate_hz: float = 500.0) -> float:
    """CPU of one received small message in a node on the SingleThreadedExecutor, as the sim-time
    nodes run (bms_common.lifecycle.make_executor): a subscriber process's CPU over a paced burst
    minus its CPU over an idle stretch of the same length, per message."""
    from std_msgs.msg import Float64MultiArray

    duration = count / rate_hz
    results = []
    for publish in (False, True):
        probe = subprocess.Popen([sys.executable, "-c", _PROBE, str(duration + 3.0)], stdout=subprocess.PIPE,
                                 text=True)
        probe.stdout.readline()
        context = rclpy.Context()
        rclpy.init(args=[], context=context)
        node = Node("per_message_probe_pub", context=context)
        pub = node.create_publisher(Float64MultiArray, "/per_message_probe", 100)
        time.sleep(1.5)  # discovery
        msg = Float64MultiArray(data=[0.0] * 16)
        start = time.monotonic()
        for k in range(count if publish else 0):
            pub.publish(msg)
            time.sleep(max(0.0, start + (k + 1) / rate_hz - time.monotonic()))
        got, cpu = probe.communicate(timeout=duration + 30)[0].split()
        results.append((int(got), float(cpu)))
        node.destroy_node()
        rclpy.shutdown(context=context)
    (_, idle_cpu), (got, busy_cpu) = results
    return 1e6 * (busy_cpu - idle_cpu) / max(got, 1)


# --- report ---------------------------------------------------------------------------------------
def print_trial(t: Trial, message_us: float | None) -> None:
    print(f"\n## {t.pack} at speed {t.speed:g}, {t.mode}: status {t.status}, start-up {t.startup_s:.1f} s wall")
    if t.status != "active":
        return
    print(f"window {t.window_s:.1f} s wall, {t.sim_s:.1f} s simulated: speed achieved {t.achieved_speed:.2f}")
    print(f"{'process':<52} {'CPU %':>7} {'start-up CPU s':>15} {'RSS MiB':>8}")
    bms_cpu = bms_rss = 0.0
    for name in sorted(t.cpu_pct, key=lambda n: -t.cpu_pct[n]):
        print(f"{name:<52} {t.cpu_pct[name]:>7.1f} {t.startup_cpu_s[name]:>15.1f} {t.rss[name]:>8.1f}")
        if name not in NOT_BMS and not name.startswith("container(sim_host"):
            bms_cpu += t.cpu_pct[name]
            bms_rss += t.rss[name]
    print(f"{'all processes':<52} {sum(t.cpu_pct.values()):>7.1f} {sum(t.startup_cpu_s.values()):>15.1f} "
          f"{sum(t.rss.values()):>8.1f}")
    if t.mode == "isolated":
        print(f"{'BMS nodes (all but sim_host and the launcher)':<52} {bms_cpu:>7.1f} {'':>15} {bms_rss:>8.1f}")
    print(f"{'monitor (this benchmark, not counted)':<52} {t.monitor_cpu_pct:>7.1f}")
    print(f"\n{'topic':<40} {'msg/s':>8}")
    for topic, rate in t.rates.items():
        print(f"{topic:<40} {rate:>8.1f}")
    print(f"\n{'node':<40} {'msg/s in':>9} {'floor % of a core':>18}")
    for node, rate in sorted(t.node_intake.items(), key=lambda kv: -kv[1]):
        floor = f"{rate * message_us / 1e4:>18.1f}" if message_us else f"{'-':>18}"
        print(f"{node:<40} {rate:>9.1f} {floor}")
    if message_us:
        print(f"floor = messages taken per second x {message_us:.0f} us per received message (measured)")
    print(f"\ncell samples: expected {t.samples_expected}, received {t.samples_received}, lost {t.samples_lost}, "
          f"late at the monitor {t.samples_late} (upper bound: includes the monitor's own lag)")
    print(f"supervisor periods evaluated: {t.periods_evaluated} of {t.periods_expected} "
          f"({100 * t.period_fraction:.1f} %); highest safety level {t.max_level}; master states "
          f"{' -> '.join(t.states) or '-'}")
    print(f"holds: {'yes' if t.holds() else 'no'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", default="nmc_16x12")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--composed", action="store_true", help="also run the launch in composed mode")
    parser.add_argument("--window", type=float, default=30.0, help="wall seconds measured in steady state")
    parser.add_argument("--settle", type=float, default=5.0, help="wall seconds after 'active' before the window")
    parser.add_argument("--timeout", type=float, default=180.0, help="wall seconds to wait for 'active'")
    parser.add_argument("--find-max-speed", action="store_true")
    parser.add_argument("--packs", nargs="+", default=["demo", "nmc_16x12", "nmc_64x16"])
    parser.add_argument("--speeds", nargs="+", type=float, default=[1, 2, 5, 10, 20, 40, 80])
    parser.add_argument("--no-floor", action="store_true", help="skip measuring the per-message cost")
    parser.add_argument("--log", default="/tmp/bms-system-bench.log", help="the launches' output goes here")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; launch output in {args.log}")
    message_us = None if args.no_floor else per_message_cost_us()
    if message_us:
        print(f"rclpy per received message (SingleThreadedExecutor, small message): {message_us:.0f} us CPU")
    log = Path(args.log)
    stale_s = load_limits(load_pack_config(args.pack).limits).timeouts.module_stale_s
    monitor = Monitor(stale_s)
    try:
        if not args.find_max_speed:
            for composed in (False, True) if args.composed else (False,):
                print_trial(run_trial(monitor, args.pack, args.speed, composed, args.window, args.settle,
                                      args.timeout, log), message_us)
            return 0
        best: dict[str, float] = {}
        for pack in args.packs:
            monitor.stale_s = load_limits(load_pack_config(pack).limits).timeouts.module_stale_s
            best[pack] = 0.0
            for speed in args.speeds:
                trial = run_trial(monitor, pack, speed, False, args.window, args.settle, args.timeout, log)
                print_trial(trial, message_us)
                if not trial.holds():
                    break
                best[pack] = speed
        print("\n## highest speed that holds (isolated launch)")
        for pack, speed in best.items():
            print(f"{pack:<12} {speed:g}x" if speed else f"{pack:<12} none of {args.speeds}")
        return 0
    finally:
        monitor.close()


if __name__ == "__main__":
    sys.exit(main())
