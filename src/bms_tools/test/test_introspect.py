"""bms topic list/echo/hz and bms node list against a live publisher."""

from __future__ import annotations

import re
import subprocess

from bms_common.component_info import host_name
from bms_common.testing import NodeProcess, wait_for
from bms_common.version import INTERFACE_VERSION


def run_all(commands: dict[str, list[str]]) -> dict[str, str]:
    """Start every command at once (each pays rclpy start-up) and collect the outputs."""
    processes = {name: subprocess.Popen(["bms", *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True) for name, argv in commands.items()}
    outputs = {}
    for name, process in processes.items():
        out, _ = process.communicate(timeout=30)
        assert process.returncode == 0, f"bms {' '.join(commands[name])}:\n{out}"
        outputs[name] = out
    return outputs


def test_topic_and_node_tools(publisher: NodeProcess) -> None:
    out = run_all({
        "list": ["topic", "list", "-t", "--wait", "20"],
        "echo": ["topic", "echo", "safety_status", "-n", "2", "--timeout", "15"],
        "hz": ["topic", "hz", "/bms/pack_measurement", "--duration", "3", "--timeout", "15"],
        "nodes": ["node", "list", "--wait", "20"],
    })
    # Discovery of another process's endpoints takes a variable time under load; the listing is
    # only as complete as the graph when it settles, so ask again until the publisher shows.
    pattern = r"/bms/cell_measurements\s+\[bms_interfaces/msg/CellMeasurements\]"

    def complete_listing() -> str | None:
        listing = run_all({"list": ["topic", "list", "-t"]})["list"]
        return listing if re.search(pattern, listing) else None

    listing = out["list"] if re.search(pattern, out["list"]) else wait_for(
        complete_listing, 60, "the publisher's topics in `bms topic list`")
    assert "/diagnostics" in listing and "/rosout" not in listing
    assert out["echo"].count("\n---") == 2
    assert "header:\n  stamp:\n    sec:" in out["echo"] and "faults:" in out["echo"]
    rates = [float(r) for r in re.findall(r"average rate: ([\d.]+) Hz", out["hz"])]
    # The publisher runs at 50 Hz; a stall of the loaded machine can pull a later window down,
    # so one window matching shows the measurement is right.
    assert rates and min(abs(r - 50.0) for r in rates) < 5.0, out["hz"]
    assert "std dev:" in out["hz"]
    assert re.search(r"/bms/sample_publisher\s+host=" + re.escape(host_name()) + r" kind=simulation vendor=open-bms "
                     r"implementation=sample_publisher version=\S+ interface=" + re.escape(INTERFACE_VERSION) + r" hardware=test-rig-1",
                     out["nodes"]), out["nodes"]
