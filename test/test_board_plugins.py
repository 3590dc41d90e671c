"""The `board` executable (launch/boards.launch.xml) finds hardware drivers by entry point. A driver
package is installed into a temporary directory here, as a supplier would ship one; the board
hosts its module nodes and current sensor and they publish what the driver reads."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from bms_common import topics
from bms_common.testing import NodeProcess, executable, params, wait_for
from bms_interfaces.msg import CellMeasurements, PackMeasurement

DRIVER = '''
import time
import numpy as np
from bms_slave.afe import AfeBackend, AfeDiagnostics, AfeReading
from bms_slave.pack_sensor import PackSensorBackend, PackSensorReading


class BenchAfe(AfeBackend):
    """A bench supply on every cell input: 3.7 V plus 1 mV per cell index and module."""

    def __init__(self, pack, module_id):
        self.pack, self.module_id, self.samples = pack, module_id, 0

    @property
    def cell_count(self):
        return self.pack.cells_per_module

    @property
    def sensor_count(self):
        return self.pack.sensors_per_module

    def read(self):
        self.samples += 1
        cells = self.pack.cells_per_module
        return AfeReading(time.time(), 3.7 + 0.001 * (np.arange(cells) + self.module_id),
                          np.full(self.pack.sensors_per_module, 24.0), np.zeros(cells, bool),
                          np.zeros(cells, np.uint8), 0)

    def set_balancing(self, mask):
        pass

    def diagnostics(self):
        return AfeDiagnostics(f"bench-afe-{self.module_id}", True, "", self.samples, 0)


class BenchShunt(PackSensorBackend):
    def __init__(self, pack):
        self.pack = pack

    def read(self):
        return PackSensorReading(time.time(), -12.5, 170.0, 170.0, 5e6, True)


def make_afe(pack, module_id):
    return BenchAfe(pack, module_id)


def make_sensor(pack):
    return BenchShunt(pack)
'''


@pytest.fixture
def driver_path(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "bench_driver-1.0.dist-info").mkdir(parents=True)
    (site / "bench_driver.py").write_text(DRIVER)
    (site / "bench_driver-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: bench-driver\nVersion: 1.0\n")
    (site / "bench_driver-1.0.dist-info" / "entry_points.txt").write_text(textwrap.dedent("""\
        [bms_slave.afe_backends]
        bench = bench_driver:make_afe

        [bms_slave.pack_sensor_backends]
        bench_shunt = bench_driver:make_sensor
        """))
    return site


def board(tmp_path: Path, site: Path, *ros_args: str) -> NodeProcess:
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    return NodeProcess([executable("bms_slave", "board"), "--ros-args", "-r", "__ns:=/bms", *ros_args],
                       tmp_path / "board.log", env)


def test_board_hosts_the_modules_of_an_installed_driver(ros, tmp_path: Path, driver_path: Path) -> None:
    cells = ros.collect(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.CELL_MEASUREMENTS.qos)
    pack = ros.collect(PackMeasurement, topics.PACK_MEASUREMENT.name, topics.RELIABLE)
    process = board(tmp_path, driver_path, *params(afe_backend="bench", current_sensor_backend="bench_shunt",
                                                  modules="1, 3", autostart=True))
    try:
        wait_for(lambda: not process.alive() or (
            {m.module_id for m in ros.snapshot(topics.CELL_MEASUREMENTS.name)} == {1, 3}
            and len(ros.snapshot(topics.PACK_MEASUREMENT.name)) >= 3),
            30, "module 1 and 3 samples and pack measurements from the board")
        assert process.alive(), process.output()
    finally:
        # Its nodes must not go on publishing into the tests that follow (same domain).
        assert process.stop() == 0, process.output()
    sample = next(m for m in list(cells) if m.module_id == 3)
    assert np.allclose(sample.cell_voltages_v, 3.7 + 0.001 * (np.arange(12) + 3), atol=1e-6)
    assert pack[-1].current_a == pytest.approx(-12.5)
    assert all(m.module_id in (1, 3) for m in list(cells))  # only the modules it was given


def test_a_driver_that_is_not_installed_is_named_with_the_installed_ones(tmp_path: Path, driver_path: Path) -> None:
    process = board(tmp_path, driver_path, *params(afe_backend="ltc6813"))
    try:
        wait_for(lambda: not process.alive(), 30, "the board to stop")
    finally:
        process.stop()
    assert process.proc.returncode == 2
    assert "no driver 'ltc6813' in entry point group bms_slave.afe_backends (installed: bench, can)" in process.output()
