"""Shutdown of the simulated system: orderly whatever order the processes go in.

`ros2 launch` sends SIGINT to every process at once; `bms launch` stops the lifecycle manager
first. Either way every process ends within 3 s, the supervisor and the estimator persist their
state, and nothing that the shutdown itself causes (inputs that stop) is latched: the next start
with the same state directory comes up without a fault.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "helpers"))
from start_stop import start, stop  # noqa: E402

EXIT_LIMIT_S = 3.0
PERSISTED = ["estimator.npz", "safety_supervisor.json"]


def test_sigint_to_every_process_at_once(tmp_path: Path) -> None:
    state = tmp_path / "state"
    launch = start(state, tmp_path / "launch.log")
    stopped = stop(launch, state, all_at_once=True)
    log = launch.output()
    assert set(stopped.exit_s) >= {"sim_host", "safety_supervisor", "contactor", "master", "estimator",
                                   "lifecycle_manager"}, log[-3000:]
    slow = {label: round(s, 2) for label, s in stopped.exit_s.items() if s > EXIT_LIMIT_S}
    assert not slow, f"ended later than {EXIT_LIMIT_S} s after SIGINT: {slow}\n{log[-3000:]}"
    assert stopped.persisted_after_stop == PERSISTED, log[-3000:]
    assert stopped.latched == [] and stopped.logged == [], log[-3000:]


def test_start_stop_cycles_with_one_state_directory(tmp_path: Path) -> None:
    """Each start finds a state directory without a latched fault and reaches DRIVE; the stops
    alternate between `bms launch`'s ordered shutdown and SIGINT to everything at once."""
    state = tmp_path / "state"
    for cycle in range(10):
        log_path = tmp_path / f"launch_{cycle}.log"
        launch = start(state, log_path)
        assert "restored latched" not in launch.output(), f"cycle {cycle}: {log_path}"
        stopped = stop(launch, state, all_at_once=cycle % 2 == 1)
        where = f"cycle {cycle} ({'all at once' if cycle % 2 else 'ordered'}): {log_path}"
        assert stopped.launch_code == 0, where
        assert max(stopped.exit_s.values()) <= EXIT_LIMIT_S, f"{where}: {stopped.exit_s}"
        assert stopped.latched == [] and stopped.logged == [], f"{where}: {stopped.latched} {stopped.logged}"
