"""boards.launch.xml end to end on CAN: the board emulator (bms_can) is the pack on a Unix-socket
python-can bus, and the whole system runs on the CAN drivers (AFE, current sensor, contactors,
limits frame) until DRIVE; a board that then stops sending raises the supervisor's stale fault
and the contactors open."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from bms_common import topics
from bms_common.testing import NodeProcess, executable, wait_for
from bms_interfaces.msg import CellMeasurements, ContactorState, PackMeasurement, PackState, SafetyStatus

# Timeouts longer than the defaults: a loaded test machine may stall a process for a moment, and
# this test is about the system working on CAN, not about how quickly staleness is seen.
CAN_CONFIG = """\
bus: {{interface: unix, channel: {channel}}}
timeouts_s: {{cell_voltages: 2, cell_temperatures: 3, board_status: 2, ivt: 2, contactor_feedback: 2,
             contactor_command: 2, limits: 2}}
sources: {{current: ivt_i, pack_voltage: ivt_u1, dc_link_voltage: ivt_u2,
          insulation_resistance: iso165c, hvil: contactor_feedback}}
"""


class EmulatorProcess(NodeProcess):
    """The board emulator as a NodeProcess (registered, so a session ends it if this test cannot;
    stopped by SIGINT, then SIGKILL) with a pipe to its standard input for wire faults."""

    def __init__(self, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.argv, self.log_path = list(argv), log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT,
                                     text=True, start_new_session=True, env={**os.environ, **env})
        NodeProcess.started.append(self)

    def command(self, line: str) -> None:
        self.proc.stdin.write(f"{line}\n")
        self.proc.stdin.flush()

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 10.0) -> int:
        if self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
        return super().stop(sig, timeout_s)


@pytest.fixture
def can_bus(tmp_path: Path):
    channel = tempfile.mkdtemp(prefix="bmscan-")  # short: socket paths are limited to 107 bytes
    config = tmp_path / "can.yaml"
    config.write_text(CAN_CONFIG.format(channel=channel))
    yield config
    shutil.rmtree(channel, ignore_errors=True)


def test_boards_launch_reaches_drive_on_the_emulator_and_opens_on_a_silent_board(ros, tmp_path, can_bus) -> None:
    states = ros.collect(PackState, topics.PACK_STATE.name, topics.RELIABLE)
    safety = ros.collect(SafetyStatus, topics.SAFETY_STATUS.name, topics.LATCHED)
    contactors = ros.collect(ContactorState, topics.CONTACTOR_STATE.name, topics.LATCHED)
    cells = ros.collect(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.CELL_MEASUREMENTS.qos)
    pack = ros.collect(PackMeasurement, topics.PACK_MEASUREMENT.name, topics.RELIABLE)
    env = {"BMS_CAN_CONFIG": str(can_bus)}
    emulator = EmulatorProcess([executable("bms_can", "emulator"), "--pack", "demo"], tmp_path / "emulator.log", env)
    launch = NodeProcess(
        [shutil.which("bms") or f"{sys.prefix}/bin/bms", "launch", "boards", "gui:=false", "afe_backend:=can",
         "current_sensor_backend:=can", "contactor_backend:=can", "mode:=DRIVE", "record:=false",
         f"state_dir:={tmp_path / 'state'}"], tmp_path / "launch.log", env)
    try:
        wait_for(lambda: not launch.alive() or any(s.operating_state == PackState.STATE_DRIVE for s in list(states)),
                 180, "DRIVE on CAN data alone")
        assert launch.alive(), launch.output()[-3000:]
        wait_for(lambda: len(ros.snapshot(topics.PACK_MEASUREMENT.name)) > 5, 30, "pack measurements")
        sample = next(m for m in reversed(list(cells)) if m.module_id == 0)
        assert 3.0 < np.min(sample.cell_voltages_v) and np.max(sample.cell_voltages_v) < 4.3
        measurement = list(pack)[-1]
        assert measurement.hvil_closed and measurement.insulation_resistance_ohm > 1e6
        assert abs(measurement.pack_voltage_v - 48 * float(np.mean(sample.cell_voltages_v))) < 5.0

        emulator.command("fault silence 1")
        wait_for(lambda: any(f.code == "STALE_MODULE" and f.module_id == 1 and m.level == SafetyStatus.LEVEL_FAULT
                             for m in list(safety)[-5:] for f in m.faults), 60, "STALE_MODULE for module 1")
        wait_for(lambda: (c := list(contactors)[-1]) and not (c.main_plus_closed or c.main_minus_closed
                                                              or c.precharge_closed), 30, "contactors open")

        # Bad frames of every kind: the board's nodes flag them and keep publishing.
        for fault in ("invalid 0", "bad_crc 2", "wrong_length 3", "unknown_page 2", "error_burst bus"):
            emulator.command(f"fault {fault}")
        seen = len(cells)
        wait_for(lambda: any(m.module_id == 0 and np.isnan(m.cell_voltages_v).all()
                             and set(m.cell_flags) == {CellMeasurements.CELL_ADC_MISMATCH} for m in list(cells)[seen:])
                 and any(m.module_id == 2 and m.module_flags & CellMeasurements.MODULE_AFE_COMM_ERROR
                         for m in list(cells)[seen:]), 30, "flagged samples of modules 0 and 2")
        assert launch.alive(), launch.output()[-3000:]
    finally:
        launch.stop(timeout_s=60)
        emulator.stop(timeout_s=10)  # SIGINT, then SIGKILL
    assert launch.proc.returncode == 0, launch.output()[-3000:]
