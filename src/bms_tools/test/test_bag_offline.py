"""info, export and plot on a recorded bag."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bms_tools.cli import main


def test_info_summarises_topics(recorded_bag: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bag", "info", str(recorded_bag)]) == 0
    out = capsys.readouterr().out
    assert "storage:    mcap (rosbag2 metadata version 9)" in out
    assert "duration:" in out and "messages:" in out
    assert "/bms/cell_measurements" in out and "bms_interfaces/msg/CellMeasurements" in out


def test_info_explains_a_wrong_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bag", "info", str(tmp_path)]) == 2
    assert "not a rosbag2 directory" in capsys.readouterr().out


def test_export_writes_wide_csv(recorded_bag: Path, tmp_path: Path) -> None:
    assert main(["bag", "export", str(recorded_bag), "-o", str(tmp_path),
                 "--topics", "cell_measurements", "safety_status"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bms__cell_measurements.csv",
                                                          "bms__safety_status.csv"]
    with open(tmp_path / "bms__cell_measurements.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {"timestamp_ns", "header.stamp.sec", "module_id", "cell_voltages_v_0",
                     "cell_voltages_v_11", "temperatures_degc_3"} <= set(rows[0])
    assert 3.5 < float(rows[0]["cell_voltages_v_0"]) < 3.7
    with open(tmp_path / "bms__safety_status.csv") as handle:
        header = next(csv.reader(handle))
    assert "faults_1.code" in header


def test_plot_writes_pngs_and_names_the_missing(recorded_bag: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bag", "plot", str(recorded_bag), "-o", str(tmp_path)]) == 0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["cell_voltages.png", "pack_current.png", "safety_level.png", "temperatures.png"]
    assert all((tmp_path / name).read_bytes()[:4] == b"\x89PNG" for name in pngs)
    assert "skipped soc.png: no /bms/cell_states messages" in capsys.readouterr().out
