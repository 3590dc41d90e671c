"""Start the simulated system with `bms launch`, stop it, and check what a restart would see.

Shared by test/test_shutdown.py (a few cycles) and bench/start_stop.py (many). Two ways to stop:
``ordered`` is Ctrl-C to `bms launch` (lifecycle manager first); ``all_at_once`` sends SIGINT
to every process of the launch at the same moment, as `ros2 launch` does.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bms_common.testing import NodeProcess, wait_for
from bms_safety.persistence import load_state, state_file

STARTED = re.compile(r"\[launch\] (\S+): started, pid (\d+)")
# The supervisor logs every fault or warning it raises: "CODE level N module M cell C: ...".
RAISED = re.compile(r"^\[safety_supervisor\] \[(?:WARN|ERROR)\] \[[\d.]+\] \[[\w.]+\]: (\w+) level \d", re.MULTILINE)
MANAGER = "lifecycle_manager"


@dataclass
class Stopped:
    """What one stop did: seconds from its SIGINT to exit per process label, the launcher's exit
    code, and what the state directory holds afterwards. In an ordered stop `bms launch` signals
    the other processes once the lifecycle manager has ended, so theirs count from then."""

    exit_s: dict[str, float] = field(default_factory=dict)
    launch_code: int | None = None
    latched: list[str] = field(default_factory=list)
    raised_while_stopping: list[str] = field(default_factory=list)
    persisted_after_stop: list[str] = field(default_factory=list)


def bms() -> str:
    return shutil.which("bms") or f"{sys.prefix}/bin/bms"


def start(state_dir: Path, log_path: Path, *arguments: str) -> NodeProcess:
    """`bms launch sim` at speed 5 without a recorder; returns once the master is in DRIVE."""
    launch = NodeProcess([bms(), "launch", "sim", "gui:=false", "speed:=5", "record:=false", f"state_dir:={state_dir}",
                          *arguments], log_path)
    try:
        wait_for(lambda: "-> DRIVE" in launch.output() or "-> ERROR" in launch.output() or not launch.alive(),
                 120, f"the master to reach DRIVE; log {log_path}")
        assert launch.alive(), f"bms launch ended during start-up:\n{launch.output()[-3000:]}"
        assert "-> DRIVE" in launch.output(), f"the master went to ERROR instead of DRIVE; log {log_path}"
    except AssertionError:
        launch.stop()
        raise
    return launch


def process_ids(launch: NodeProcess) -> dict[str, int]:
    return {label: int(pid) for label, pid in STARTED.findall(launch.output())}


def running(pid: int) -> bool:
    """True until the process has ended (a zombie its parent has not reaped yet has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def written(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


def stop(launch: NodeProcess, state_dir: Path, all_at_once: bool, timeout_s: float = 30.0) -> Stopped:
    pids = process_ids(launch)
    stopped = Stopped()
    raised_before = len(RAISED.findall(launch.output()))
    # What was written before the signal: a file written after it is another inode (state files
    # are replaced atomically) or has another modification time. (Comparing with time.time()
    # failed once: the kernel stamps files with a coarse clock, up to a tick behind, and the
    # estimator saved within that tick.)
    before = {path.name: written(path) for path in state_dir.iterdir()}
    targets = pids.values() if all_at_once else [launch.pid]
    for pid in targets:
        os.kill(pid, signal.SIGINT)
    started = time.monotonic()
    signalled = dict.fromkeys(pids, started if all_at_once else None)
    signalled[MANAGER] = started
    left = dict(pids)
    while left and time.monotonic() - started < timeout_s:
        for label, pid in list(left.items()):
            if not running(pid):
                now = time.monotonic()
                stopped.exit_s[label] = now - (signalled[label] or started)
                if label == MANAGER:
                    signalled = {name: at or now for name, at in signalled.items()}
                del left[label]
        time.sleep(0.01)
    # `bms launch` ends by itself once its processes have. Another SIGINT would be a second
    # Ctrl-C (skip the waits: SIGTERM and SIGKILL at once), or reach it while Python tears down.
    wait_for(lambda: not launch.alive(), timeout_s, "bms launch to end after its processes")
    stopped.launch_code = launch.stop(timeout_s=timeout_s)
    state, problem = load_state(state_file(state_dir))
    assert problem is None, problem
    stopped.latched = [record.code for record in state.latched]
    stopped.raised_while_stopping = RAISED.findall(launch.output())[raised_before:]
    stopped.persisted_after_stop = sorted(path.name for path in state_dir.iterdir()
                                          if before.get(path.name) != written(path))
    return stopped
