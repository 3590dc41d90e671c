"""Replay for debugging, end to end: a run of the full simulated system is recorded, then
`bms replay-check` feeds it to fresh nodes (three times: the same verdict and the same report),
catches a deliberately changed estimator parameter, and `bms launch replay` plays it into fresh
nodes through the replay launch file."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from bms_common.testing import NodeProcess, wait_for
from bms_tools.bags.reading import open_raw

SIM_SECONDS = 15
SPEED = 5
REPLAY_TIMEOUT_S = 120


def bms() -> str:
    return shutil.which("bms") or f"{sys.prefix}/bin/bms"


def record_run(root: Path, *launch_options: str, seconds: float = SIM_SECONDS) -> Path:
    """A bag of the full simulated system (fresh state, so the estimator starts from the
    measurements as a fresh one does). At speed 5: at 10 a loaded 2-core CI machine made the
    recorded nodes skip most of their ticks, which is a different run, not a different node."""
    launcher = NodeProcess([bms(), "launch", *launch_options, "sim", "gui:=false", f"speed:={SPEED}", f"duration:={seconds}",
                            f"bag:={root / 'bag'}", f"state_dir:={root / 'state'}"], root / "launch.log")
    try:
        wait_for(lambda: not launcher.alive(), 120, "the recorded run to end")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; launch log ends:\n{launcher.output()[-3000:]}") from None
    finally:
        launcher.stop()
    assert launcher.proc.returncode == 0, launcher.output()[-3000:]
    return root / "bag"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return record_run(tmp_path_factory.mktemp("recorded"))


def replay_check(bag: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([bms(), "replay-check", str(bag), *options], capture_output=True, text=True,
                          timeout=REPLAY_TIMEOUT_S, stdin=subprocess.DEVNULL)


def test_unchanged_system_passes_three_times_with_the_same_report(recorded: Path) -> None:
    runs = [replay_check(recorded) for _ in range(3)]
    for run in runs:
        assert run.returncode == 0, run.stdout + run.stderr
        assert "verdict: PASS" in run.stdout
        for topic in ("/bms/cell_states", "/bms/power_limits", "/bms/safety_status"):
            assert f"{topic}: ok" in run.stdout, run.stdout
    # Lockstep replay: not just the verdict, every largest error is the same on every run.
    assert runs[0].stdout == runs[1].stdout == runs[2].stdout


def test_a_composed_run_behaves_like_fresh_isolated_nodes(tmp_path: Path) -> None:
    # sim_host, master and estimator in one container process: the recorded outputs must be
    # what the nodes produce in processes of their own.
    bag = record_run(tmp_path, "--composed", seconds=10)
    assert "hosting 9 nodes" in (tmp_path / "launch.log").read_text()  # recorder included
    run = replay_check(bag)
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_changed_estimator_parameter_is_caught(recorded: Path) -> None:
    # Resistance learning off: R0 stays at its prior, and SOC and power limits move with it.
    run = replay_check(recorded, "--estimator-param", "tuning.learn_r0:=false")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "verdict: DIVERGED" in run.stdout
    assert "/bms/power_limits: DIVERGED" in run.stdout
    assert "first divergence at t=" in run.stdout
    assert "/bms/safety_status: ok" in run.stdout  # the supervisor was not changed


def test_a_parameter_the_node_does_not_have_is_an_error(recorded: Path) -> None:
    run = replay_check(recorded, "--estimator-param", "tuning.learn_r_0:=false")
    assert run.returncode == 2, run.stdout + run.stderr
    assert "has no parameter tuning.learn_r_0" in run.stdout


def test_replay_launch_feeds_the_bag_to_fresh_nodes(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "replayed"
    launcher = NodeProcess([bms(), "launch", "replay", f"bag:={recorded}", "rate:=1", "record:=true",
                            f"output:={out}"], tmp_path / "launch.log")
    try:
        wait_for(lambda: not launcher.alive(), 90, "the replay launch to play the bag and end")
    finally:
        launcher.stop()
    assert launcher.proc.returncode == 0, launcher.output()[-3000:]

    def stamps(bag: Path) -> dict[str, list[float]]:
        found: dict[str, list[float]] = defaultdict(list)
        reader = open_raw(bag)
        try:
            for connection, _, raw in reader.messages():
                if connection.topic.startswith("/bms/"):
                    # header.stamp: after the 4-byte encapsulation, int32 sec and uint32 nanosec
                    sec = int.from_bytes(raw[4:8], "little", signed=True)
                    found[connection.topic].append(sec + int.from_bytes(raw[8:12], "little") * 1e-9)
        finally:
            reader.close()
        return found

    recorded_stamps, replayed = stamps(recorded), stamps(out)
    first, last = min(recorded_stamps["/bms/cell_measurements"]), max(recorded_stamps["/bms/cell_measurements"])
    for topic in ("/bms/cell_states", "/bms/power_limits", "/bms/safety_status"):
        assert len(replayed[topic]) >= 5, f"{topic}: {len(replayed[topic])} messages from the fresh nodes"
        # The fresh nodes ran on the bag's clock: their stamps lie in the recorded run's time.
        assert first - 1.0 <= min(replayed[topic]) and max(replayed[topic]) <= last + 1.0, topic
