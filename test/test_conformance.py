"""`bms conformance` with the kit starting the node itself (docs/standard/conformance.md): the
example slave written from the specification conforms, its deliberately broken variants fail
with exactly the requirement numbers of their defect, and every node of the project conforms to
its kind, the bridge and the GUI included, the master, the estimator and the supervisor also under
malformed input. Each run is a `bms conformance` process in a ROS domain of its own, so the runs go in
parallel."""

from __future__ import annotations

import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bms_common.testing import executable

EXAMPLE = executable("bms_example_slave", "slave")
# The kit and the node agree on a short balancing timeout so SLV-11 takes a second, not five.
SLAVE_ARGS = "-p balancing_timeout_s:=1.0"
BROKEN = {
    "millivolts": {"SLV-03"},
    "stuck_sequence": {"SLV-04", "SLV-07"},
    "no_lifecycle": {"GEN-09", "GEN-10", "GEN-11", "GEN-12"},
    "ignore_peers": {"GEN-19"},
}


def bms() -> str:
    return shutil.which("bms") or f"{sys.prefix}/bin/bms"


def conformance(kind: str, command: str, junit: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([bms(), "conformance", kind, "--command", command, "--junit", str(junit), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)


def finish(run: subprocess.Popen) -> tuple[int, str]:
    try:
        out, _ = run.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        run.kill()
        out, _ = run.communicate()
        pytest.fail(f"bms conformance did not end within 240 s:\n{out[-3000:]}")
    return run.returncode, out


def outcome(junit: Path) -> tuple[set[str], set[str]]:
    """(failed, passed) requirement numbers of a JUnit report."""
    failed, passed = set(), set()
    for case in ET.parse(junit).getroot().iter("testcase"):
        number = case.get("name").split()[0]
        if case.find("failure") is not None:
            failed.add(number)
        elif case.find("skipped") is None:
            passed.add(number)
    return failed, passed


def test_the_example_slave_conforms_and_its_broken_variants_fail_with_their_numbers(tmp_path: Path):
    runs = {"": conformance("slave", f"{EXAMPLE} --ros-args -p module_id:=2 {SLAVE_ARGS}", tmp_path / "ok.xml",
                            "--module", "2", "--balancing-timeout", "1")}
    for defect in BROKEN:
        runs[defect] = conformance("slave", f"{EXAMPLE} --ros-args -p module_id:=2 {SLAVE_ARGS} -p defect:={defect}",
                                   tmp_path / f"{defect}.xml", "--module", "2", "--balancing-timeout", "1")
    results = {defect: finish(run) for defect, run in runs.items()}
    code, out = results[""]
    assert code == 0 and "CONFORMS" in out, out
    failed, passed = outcome(tmp_path / "ok.xml")
    assert not failed and {"GEN-10", "GEN-12", "SLV-07", "SLV-08", "SLV-11", "SLV-12"} <= passed, out
    for defect, numbers in BROKEN.items():
        code, out = results[defect]
        failed, _ = outcome(tmp_path / f"{defect}.xml")
        assert code == 1 and failed == numbers, f"{defect}: failed {sorted(failed)}, expected {sorted(numbers)}\n{out}"


# The project's node of each kind, as the launch files start it (the safety path with autostart).
PROJECT = {
    "slave": (f"{executable('bms_slave', 'board')} --ros-args -p afe_backend:=sim -p modules:=1 {SLAVE_ARGS}",
              ("--module", "1", "--balancing-timeout", "1")),
    # The board's simulated current sensor (it needs an AFE backend too: module 0's node stays unconfigured).
    "current_sensor": (f"{executable('bms_slave', 'board')} --ros-args -p afe_backend:=sim -p modules:=0 "
                       "-p current_sensor_backend:=sim", ()),
    "master": (f"{executable('bms_master', 'master')}", ()),
    "estimator": (f"{executable('bms_estimation', 'estimator')} --ros-args -p state_dir:=none", ()),
    "contactor": (f"{executable('bms_master', 'contactor')} --ros-args -p autostart:=true", ()),
    "safety": (f"{executable('bms_safety', 'supervisor')} --ros-args -p autostart:=true -p state_dir:=none", ()),
}


# Besides the general ones: the managed kinds' and each kind's own intrusive checks (the
# malformed input of the pack data's consumers), the unmanaged kinds' topics and services.
MUST_PASS = {"master": {"GEN-07", "GEN-12", "MST-07"}, "estimator": {"GEN-07", "GEN-12", "EST-05"},
             "safety": {"GEN-07", "GEN-12", "SUP-07"}, "bridge": {"GEN-06", "GEN-19", "BRG-01"},
             "gui": {"GEN-06", "GEN-19", "GUI-01"}}


def unmanaged(state: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """The bridge with its broker unreachable (port 9: nothing listens), which it must survive,
    and the GUI on an ephemeral port without a browser; their state under ``state``."""
    return {
        "bridge": (f"{executable('bms_bridge', 'cloud_bridge')} --ros-args -p broker_port:=9 "
                   f"-p state_dir:={state / 'bridge'}", ("--duration", "1")),
        "gui": (f"{executable('bms_gui', 'gui')} --ros-args -p port:=0 -p runs_dir:={state / 'runs'} "
                f"-p users_file:={state / 'gui_users'} -p audit_log:={state / 'gui_audit.log'}", ("--duration", "1")),
    }


def test_every_node_of_the_project_conforms_to_its_kind(tmp_path: Path):
    runs = {kind: conformance(kind, command, tmp_path / f"{kind}.xml", *extra)
            for kind, (command, extra) in {**PROJECT, **unmanaged(tmp_path)}.items()}
    results = {kind: finish(run) for kind, run in runs.items()}
    for kind, (code, out) in results.items():
        failed, passed = outcome(tmp_path / f"{kind}.xml")
        assert code == 0 and not failed, f"{kind}:\n{out}"
        assert {"GEN-02", "GEN-04", "GEN-13"} | MUST_PASS.get(kind, {"GEN-07", "GEN-12"}) <= passed, f"{kind}:\n{out}"
