"""The simulated system spread over four namespaced hosts (test/test_multihost.py, docs/deployment.md).

  master   plant (sim_host, hosting no slave node), supervisor, master, estimator, lifecycle manager
  hv       contactor node (the contactor driver's own board)
  slave1   board process: module nodes 0 and 1 (simulated AFEs on the plant's cells over /sim) and
           the current sensor node (the simulated sensor on the plant's /sim/pack_truth)
  slave2   board process: module nodes 2 and 3

Every process runs inside its host's namespace with the README's multi-host discovery settings;
:meth:`System.start` refuses to start one anywhere else and checks where it really runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from netns import Network

from bms_common.component_info import HOST_ENV
from bms_common.testing import executable, params, wait_for

HOSTS = ("master", "hv", "slave1", "slave2")
SLAVE_MODULES = {"slave1": (0, 1), "slave2": (2, 3)}
SENSOR_HOST = "slave1"  # the slave board that carries the current sensor, as on a real pack
PROBE = Path(__file__).resolve().parent / "multihost_probe.py"


def assert_inside(network: Network, host: str, proc: subprocess.Popen, name: str) -> None:
    """The process runs in the host's namespace (so its DDS traffic stays in the test network)."""
    # `ip netns exec` enters the namespace, then execs the command in the same process.
    where = wait_for(lambda: network.host_of(proc.pid) or proc.poll() is not None, 10,
                     f"{name} to enter the namespace of host {host}")
    if where != host:
        raise AssertionError(f"{name} (pid {proc.pid}) runs in {where!r}, not in host {host}'s namespace")


class HostProcess:
    """One process inside a host's namespace, in a process group of its own; output to a log file."""

    def __init__(self, network: Network, host: str, name: str, argv: Sequence[str], env: dict[str, str],
                 log_dir: Path, stdin: bool = False) -> None:
        self.host, self.name = host, name
        self.log_path = log_dir / f"{host}-{name}.log"
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(network.exec_argv(host, argv), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     start_new_session=True, env=env, text=True)
        try:
            assert_inside(network, host, self.proc, name)
        except AssertionError:
            self.stop()
            raise

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 10.0) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._log.close()


class Probe(HostProcess):
    """multihost_probe.py on a host: its JSON lines as events, commands through stdin."""

    def events(self, topic: str, since: float = 0.0) -> list[dict[str, Any]]:
        out = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                event = json.loads(line)
                if event["topic"] == topic and event["t"] >= since:
                    out.append(event)
        return out

    def first(self, topic: str, since: float, match: Callable[[dict], bool], timeout_s: float,
              what: str) -> dict[str, Any]:
        return wait_for(lambda: next((e for e in self.events(topic, since) if match(e)), None), timeout_s,
                        f"{what} (seen by the probe on host {self.host})")

    def command(self, line: str, timeout_s: float = 20.0) -> dict[str, Any]:
        since = time.monotonic()
        self.send(line)
        return self.first("answer", since, lambda e: e["command"] == line, timeout_s, f"an answer to {line!r}")


class System:
    """The four hosts' processes, started with one discovery mode. ``stop()`` ends them all."""

    def __init__(self, network: Network, discovery: str, log_dir: Path, speed: float = 1.0) -> None:
        self.network, self.discovery, self.log_dir, self.speed = network, discovery, log_dir, speed
        self.env = {**os.environ, **network.discovery_env(discovery)}
        self.processes: dict[tuple[str, str], HostProcess] = {}
        self.state_dir = log_dir / "state"

    def start(self, host: str, name: str, argv: Sequence[str], kind: type[HostProcess] = HostProcess,
              **extra_env: str) -> HostProcess:
        if host not in self.network.hosts:
            raise ValueError(f"{name}: no host {host!r} in the test network; a process with SUBNET discovery or "
                             "static peers runs only inside a test namespace")
        env = {**self.env, HOST_ENV: host, **extra_env}
        process = kind(self.network, host, name, argv, env, self.log_dir,
                       stdin=kind is Probe)
        self.processes[(host, name)] = process
        return process

    def node(self, host: str, package: str, name: str, *ros_args: str, log: str | None = None) -> HostProcess:
        return self.start(host, log or name, [executable(package, name), "--ros-args", "-r", "__ns:=/bms", *ros_args])

    def probe(self, host: str) -> Probe:
        process = self.start(host, "probe", [sys.executable, str(PROBE), "--ros-args", "-p", "use_sim_time:=true"],
                             kind=Probe)
        assert isinstance(process, Probe)
        return process

    def start_master_host(self) -> None:
        pack, state = "demo", str(self.state_dir)
        external = ", ".join(str(m) for ms in SLAVE_MODULES.values() for m in ms)
        self.node("master", "bms_slave", "sim_host",
                  *params(pack=pack, speed=self.speed, profile="drive", wait_for_manager=True,
                          external_modules=external, current_sensor=False))
        self.node("master", "bms_safety", "supervisor",
                  *params(pack=pack, state_dir=state, autostart=True, use_sim_time=True))
        self.node("master", "bms_master", "master", *params(pack=pack, startup_request="DRIVE", use_sim_time=True))
        self.node("master", "bms_estimation", "estimator", *params(pack=pack, state_dir=state, use_sim_time=True))
        self.node("master", "bms_common", "lifecycle_manager", *params(pack=pack),
                  "-p", "node_names:=[module_*, current_sensor, estimator, master]")

    def start_hv_host(self) -> None:
        self.node("hv", "bms_master", "contactor", *params(backend="sim", autostart=True, use_sim_time=True))

    def start_slave_host(self, host: str, *ros_args: str) -> None:
        modules = ", ".join(map(str, SLAVE_MODULES[host]))
        sensor = params(current_sensor_backend="sim") if host == SENSOR_HOST else []
        self.node(host, "bms_slave", "board", *params(pack="demo", modules=modules, afe_backend="sim",
                                                        use_sim_time=True), *sensor, *ros_args)

    def start_all(self) -> None:
        self.start_master_host()
        self.start_hv_host()
        for host in SLAVE_MODULES:
            self.start_slave_host(host)

    def stop_host(self, host: str, sig: int = signal.SIGINT) -> None:
        for (where, name), process in list(self.processes.items()):
            if where == host:
                process.stop(sig)
                del self.processes[(where, name)]

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop()
        self.processes.clear()

    def logs(self, last_chars: int = 1500) -> str:
        return "\n".join(f"--- {h}/{n}:\n{p.output()[-last_chars:]}" for (h, n), p in self.processes.items())
