"""The lifecycle manager brings real lifecycle nodes (own processes, real DDS) up and down."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_prefix
from std_msgs.msg import String

from bms_common import topics
from bms_common.testing import NodeProcess, wait_for

PROBE = Path(__file__).parent / "helpers" / "probe_lifecycle_node.py"
MANAGER = Path(get_package_prefix("bms_common")) / "lib" / "bms_common" / "lifecycle_manager"


def journal_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    entries = [line.split() for line in path.read_text().splitlines()]
    return [f"{name} {transition}" for _, name, transition in sorted(entries)]


@pytest.fixture
def probes(tmp_path):
    started: list[NodeProcess] = []

    def start(names: list[str], fail: dict[str, str] | None = None) -> Path:
        journal = tmp_path / "journal.txt"
        for name in names:
            args = [sys.executable, str(PROBE), name, "--ros-args", "-p", f"journal:={journal}"]
            if fail and name in fail:
                args += ["-p", f"fail_on:={fail[name]}"]
            started.append(NodeProcess(args, tmp_path / f"{name}.log"))
        return journal

    yield start
    for proc in started:
        proc.stop()


def start_manager(tmp_path: Path, names: list[str]) -> NodeProcess:
    return NodeProcess(
        [str(MANAGER), "--ros-args", "-r", "__ns:=/bms", "-p", f"node_names:=[{', '.join(names)}]",
         "-p", "transition_timeout_s:=10.0"],
        tmp_path / "manager.log",
    )


def test_brings_up_in_order_and_down_in_reverse(ros, probes, tmp_path):
    status = ros.collect(String, "/bms/lifecycle_manager/status", topics.LATCHED)
    journal = probes(["alpha", "bravo", "charlie"])
    manager = start_manager(tmp_path, ["alpha", "bravo", "charlie"])
    try:
        wait_for(lambda: any(m.data == "active" for m in ros.snapshot("/bms/lifecycle_manager/status")),
                 30, "manager status 'active'")
        assert journal_lines(journal) == [
            "alpha configure", "bravo configure", "charlie configure",
            "alpha activate", "bravo activate", "charlie activate",
        ]
        assert manager.stop() == 0, manager.output()
    finally:
        manager.stop()
    assert journal_lines(journal)[6:] == [
        "charlie deactivate", "bravo deactivate", "alpha deactivate",
        "charlie cleanup", "bravo cleanup", "alpha cleanup",
    ]
    assert status[-1].data == "shut down"


def test_failed_transition_stops_bring_up_and_undoes_it(probes, tmp_path):
    journal = probes(["alpha", "bravo", "charlie"], fail={"bravo": "activate"})
    manager = start_manager(tmp_path, ["alpha", "bravo", "charlie"])
    try:
        wait_for(lambda: not manager.alive(), 30, "manager to exit after the failed activation")
    finally:
        manager.stop()
    assert manager.proc.returncode == 1
    assert "/bms/bravo: transition 'activate' failed" in manager.output()
    lines = journal_lines(journal)
    assert "charlie activate" not in lines
    assert lines == [
        "alpha configure", "bravo configure", "charlie configure",
        "alpha activate", "bravo activate",
        "alpha deactivate",
        "charlie cleanup", "bravo cleanup", "alpha cleanup",
    ]
    # The status topic says it too, but the manager may exit before a fresh subscriber has even
    # discovered it; its log is the dependable record.
    assert "failed: /bms/bravo: transition 'activate' failed" in manager.output()


def test_missing_node_is_reported(ros, tmp_path):
    manager = NodeProcess(
        [str(MANAGER), "--ros-args", "-r", "__ns:=/bms", "-p", "node_names:=[ghost]",
         "-p", "service_wait_timeout_s:=1.0"],
        tmp_path / "manager.log",
    )
    try:
        wait_for(lambda: not manager.alive(), 20, "manager to give up on a node that does not exist")
    finally:
        manager.stop()
    assert manager.proc.returncode == 1
    assert "/bms/ghost: lifecycle services not available" in manager.output()
