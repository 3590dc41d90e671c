"""Every launch file of the project parses with `bms launch --dry-run --strict`, isolated and composed, with
every executable it names installed; composed mode keeps the safety path apart."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LAUNCH_DIR = Path(__file__).resolve().parents[1] / "launch"
# The arguments a launch file requires (no default), with a value for the dry run.
REQUIRED = {"replay": ["bag:=/tmp/some-run/bag"], "boards": ["afe_backend:=x", "current_sensor_backend:=y"]}


def dry_run(*args: str) -> subprocess.CompletedProcess:
    bms = shutil.which("bms") or f"{sys.prefix}/bin/bms"
    return subprocess.run([bms, "launch", "--dry-run", "--strict", *args], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def launch_files() -> list[str]:
    return sorted(path.name.removesuffix(".launch.xml") for path in LAUNCH_DIR.glob("*.launch.xml"))


def test_the_three_compositions_exist() -> None:
    assert {"sim", "boards", "replay"} <= set(launch_files())


@pytest.mark.parametrize("mode", ["isolated", "composed"])
@pytest.mark.parametrize("name", launch_files())
def test_launch_file_parses(name: str, mode: str) -> None:
    run = dry_run(*(["--composed"] if mode == "composed" else []), name, *REQUIRED.get(name, []))
    assert run.returncode == 0, run.stdout + run.stderr
    header, *lines = run.stdout.splitlines()
    assert header.endswith(f"processes ({mode})"), header
    commands = [line for line in lines if line.startswith("[")]
    assert commands, run.stdout
    labels = {line[1:line.index("]")] for line in commands}
    assert "lifecycle_manager" in labels  # the manager is a node of every composition


@pytest.mark.parametrize("name", [n for n in launch_files() if n in REQUIRED])
def test_a_missing_required_argument_names_file_and_line(name: str) -> None:
    run = dry_run(name)
    assert run.returncode != 0
    assert f"{name}.launch.xml:" in run.stderr + run.stdout
    assert "is required" in run.stderr + run.stdout


def test_composed_sim_keeps_supervisor_contactor_and_manager_in_their_own_processes() -> None:
    run = dry_run("--composed", "sim")
    assert run.returncode == 0, run.stderr
    processes = {line[1:line.index("]")]: line for line in run.stdout.splitlines() if line.startswith("[")}
    assert {"safety_supervisor", "contactor", "lifecycle_manager", "container"} <= set(processes)
    for module in ("bms_slave.sim_host", "bms_master.master_node", "bms_estimation.estimator_node"):
        assert module in processes["container"]
    for apart in ("bms_safety", "contactor_node", "lifecycle_manager"):
        assert apart not in processes["container"]
