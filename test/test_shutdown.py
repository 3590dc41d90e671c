"""Shutdown of the simulated system: orderly whatever order the processes go in.

`ros2 launch` sends SIGINT to every process at once; `bms launch` stops the lifecycle manager
first. Either way every process ends within 3 s, the supervisor and the estimator persist their
state, and nothing that the shutdown itself causes (inputs that stop) is latched: the next start
with the same state directory comes up without a fault.
"""

from __future__ import annotations

import re
import signal
import sys
import time
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_prefix

from bms_common.testing import NodeProcess, wait_for

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from start_stop import start, stop  # noqa: E402

PROBE = Path(__file__).parent / "helpers" / "probe_lifecycle_node.py"
MANAGER = Path(get_package_prefix("bms_common")) / "lib" / "bms_common" / "lifecycle_manager"

EXIT_LIMIT_S = 3.0
PERSISTED = ["estimator.npz", "safety_supervisor.json"]


def test_sigint_to_every_process_at_once(tmp_path: Path) -> None:
    state, bag = tmp_path / "state", tmp_path / "bag"
    launch = start(state, tmp_path / "launch.log", "record:=true", f"bag:={bag}")
    stopped = stop(launch, state, all_at_once=True)
    log = launch.output()
    assert set(stopped.exit_s) == {"sim_host", "safety_supervisor", "contactor", "master", "estimator",
                                   "recorder", "lifecycle_manager"}, log[-3000:]
    assert (bag / "metadata.yaml").is_file(), log[-3000:]
    # Cleanly: each ends with 0 even though `bms launch` signals what still runs once the
    # lifecycle manager (on_exit=shutdown) has ended, a second SIGINT as under a terminal's Ctrl-C.
    assert re.findall(r"\[launch\] (\S+): exited with code (?!0$)(.*)", log, re.MULTILINE) == [], log[-3000:]
    slow = {label: round(s, 2) for label, s in stopped.exit_s.items() if s > EXIT_LIMIT_S}
    assert not slow, f"ended later than {EXIT_LIMIT_S} s after SIGINT: {slow}\n{log[-3000:]}"
    assert stopped.persisted_after_stop == PERSISTED, log[-3000:]
    assert stopped.latched == [] and stopped.raised_while_stopping == [], log[-3000:]


def test_start_stop_cycles_with_one_state_directory(tmp_path: Path) -> None:
    """Each start finds a state directory without a latched fault and reaches DRIVE; the stops
    alternate between `bms launch`'s ordered shutdown and SIGINT to everything at once. (Exit
    times are the test above's and bench/start_stop.py's.)"""
    state = tmp_path / "state"
    for cycle in range(10):
        log_path = tmp_path / f"launch_{cycle}.log"
        launch = start(state, log_path)
        assert "restored latched" not in launch.output(), f"cycle {cycle}: {log_path}"
        stopped = stop(launch, state, all_at_once=cycle % 2 == 1)
        where = f"cycle {cycle} ({'all at once' if cycle % 2 else 'ordered'}): {log_path}"
        assert stopped.launch_code == 0, where
        assert stopped.latched == [] and stopped.raised_while_stopping == [], (
            f"{where}: latched {stopped.latched}, raised while stopping {stopped.raised_while_stopping}")


def start_probes(tmp_path: Path, hang_on: dict[str, str]) -> list[NodeProcess]:
    return [NodeProcess([sys.executable, str(PROBE), name, "--ros-args", "-p", f"journal:={tmp_path / 'journal'}",
                         *(["-p", f"hang_on:={hang_on[name]}"] if name in hang_on else [])],
                        tmp_path / f"{name}.log")
            for name in ("alpha", "bravo")]


@pytest.mark.parametrize("second_signal", [False, True], ids=["deadline", "sigterm"])
def test_manager_shutdown_is_bounded_when_a_node_does_not_answer(tmp_path: Path, second_signal: bool) -> None:
    """bravo never answers 'deactivate' (as a node already exiting under ros2 launch): the manager
    gives up after shutdown_timeout_s, or at once at a second signal, and exits 0."""
    probes = start_probes(tmp_path, {"bravo": "deactivate"})
    timeout_s = 20.0 if second_signal else 1.0
    manager = NodeProcess([str(MANAGER), "--ros-args", "-r", "__ns:=/bms", "-p", "node_names:=[alpha, bravo]",
                           "-p", f"shutdown_timeout_s:={timeout_s}"], tmp_path / "manager.log")
    try:
        wait_for(lambda: "]: active" in manager.output(), 60, "the manager to bring alpha and bravo up")
        manager.proc.send_signal(signal.SIGINT)
        if second_signal:
            wait_for(lambda: "bravo deactivate" in (tmp_path / "journal").read_text(), 10, "bravo to hang")
            manager.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = manager.proc.wait(timeout=EXIT_LIMIT_S + 5)
        took_s = time.monotonic() - signalled
    finally:
        manager.stop()
        for probe in probes:
            probe.stop()
    assert code == 0, manager.output()
    assert took_s <= EXIT_LIMIT_S, (took_s, manager.output())
    assert "/bms/bravo: no answer to 'deactivate'" in manager.output()
    assert "/bms/alpha: 'deactivate' skipped" in manager.output()
