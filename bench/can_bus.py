"""CAN backend figures (bms_can, docs/can.md), on the Unix-socket python-can interface:

1. throughput: a sender process puts cell voltage pages on the bus as fast as it can; the
   driver's receive thread (decode with cantools, page store) counts what it sustains and the
   CPU it spends;
2. CPU at the real rate: the board emulator sends a 16 x 12 pack at 10 Hz, the driver receives;
3. latency from a frame on the bus to the CellMeasurements message: the board executable on the
   CAN AFE driver (one module) over real DDS; the message's stamp is the arrival of its oldest
   page, so stamp -> delivery is the frame-to-message latency (the 0.1 s sample timer included);
4. bus load of a 16 x 12 pack at 10 Hz on a 500 kbit/s bus, from the emulator's and the BMS's
   frames, with nominal and worst-case bit stuffing.

    source env.sh && python bench/can_bus.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bms_can.afe_driver import PackPages
from bms_can.channel import CanChannel
from bms_can.config import parse_can_config
from bms_can.emulator import BoardEmulator
from bms_common import topics
from bms_common.pack_config import load_pack_config
from bms_common.testing import NodeProcess, RosHarness, executable, isolate_dds, params, wait_for
from bms_interfaces.msg import CellMeasurements

BITRATE = 500_000
SOURCES = {"current": "ivt_i", "pack_voltage": "ivt_u1", "dc_link_voltage": "ivt_u2",
           "insulation_resistance": "iso165c", "hvil": "contactor_feedback"}
SENDER = """
import sys, time, can
from pathlib import Path
from bms_can.config import parse_can_config
from bms_can.protocol import Protocol
p = Protocol(parse_can_config({}, Path("bench")))
frames = [p.cell_voltages(page, [3.7, 3.71, 3.72, 3.73], [1, 1, 1, 1]) for page in range(48)]
bus = can.Bus(interface="unix", channel=sys.argv[1])
rate, seconds = float(sys.argv[2]), float(sys.argv[3])
time.sleep(0.5)  # the receiver connects to this new participant
start = time.monotonic()
for n in range(int(rate * seconds)):
    if n % 10 == 0:
        time.sleep(max(0.0, start + n / rate - time.monotonic()))  # paced in bursts of 10
    bus.send(frames[n % 48])
print(bus.overruns, time.monotonic() - start)
bus.shutdown()
"""


def frame_bits(dlc: int) -> tuple[int, int]:
    """Bits of a standard-id data frame on the wire: nominal, and with worst-case stuffing."""
    nominal = 47 + 8 * dlc
    return nominal, nominal + (34 + 8 * dlc - 1) // 4


def config_for(channel: str, tmp: Path) -> Path:
    path = tmp / "can.yaml"
    path.write_text(f"bus: {{interface: unix, channel: {channel}}}\nsources: {SOURCES}\n")
    return path


def throughput(channel: str, rates: list[float], seconds: float) -> None:
    config = parse_can_config({"bus": {"interface": "unix", "channel": channel}}, Path("bench"))
    receiver = CanChannel(config)
    PackPages(load_pack_config("nmc_16x12"), config, receiver)
    clock = time.pthread_getcpuclockid(receiver._thread.ident)  # noqa: SLF001 - the receive thread's CPU
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    for rate in rates:
        before, cpu0 = receiver.stats.received, time.clock_gettime(clock)
        sender = subprocess.run([sys.executable, "-c", SENDER, channel, str(rate), str(seconds)],
                                capture_output=True, text=True, check=True, env=env)
        lost, sent_s = sender.stdout.split()
        expected = before + int(rate * seconds) - int(lost)
        wait_for(lambda expected=expected: receiver.stats.received >= expected, 10, "the frames")
        cpu = time.clock_gettime(clock) - cpu0
        received = receiver.stats.received - before
        print(f"1. throughput at {rate:,.0f} frames/s offered ({float(sent_s):.1f} s): {received} received, "
              f"{lost} lost to a full buffer; receive thread CPU {100 * cpu / float(sent_s):.0f} % of a core, "
              f"{1e6 * cpu / max(received, 1):.0f} us per frame")
    receiver.close()


def real_rate(channel: str, seconds: float) -> None:
    config = parse_can_config({"bus": {"interface": "unix", "channel": channel}}, Path("bench"))
    pack = load_pack_config("nmc_16x12")
    receiver = CanChannel(config)
    PackPages(pack, config, receiver)
    emulator = BoardEmulator(pack, config, profile="drive")
    before = receiver.stats.received
    _emulate(emulator, seconds)
    frames = receiver.stats.received - before
    # The receive thread's CPU alone: its thread's clock (Linux), not the emulator's.
    cpu = time.clock_gettime(time.pthread_getcpuclockid(receiver._thread.ident))  # noqa: SLF001
    print(f"2. real rate: 16 x 12 pack at 10 Hz: {frames / seconds:,.0f} frames/s, driver receive thread "
          f"CPU {100 * cpu / seconds:.1f} % of a core")
    receiver.close()
    emulator.close()


def _emulate(emulator: BoardEmulator, seconds: float) -> None:
    start = time.monotonic()
    steps = 0
    while time.monotonic() - start < seconds:
        steps += 1
        emulator.step(time.time())
        time.sleep(max(0.0, start + steps * emulator.step_s - time.monotonic()))  # real-time pacing


def latency(channel: str, tmp: Path, samples: int) -> None:
    isolate_dds()
    env = {"BMS_CAN_CONFIG": str(config_for(channel, tmp))}
    ros = RosHarness("can_bench")
    cells = ros.collect(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.CELL_MEASUREMENTS.qos)
    arrivals: list[float] = []
    ros.node.create_subscription(CellMeasurements, topics.CELL_MEASUREMENTS.name,
                                 lambda m: arrivals.append(time.time() - m.header.stamp.sec
                                                           - m.header.stamp.nanosec * 1e-9),
                                 topics.CELL_MEASUREMENTS.qos)
    emulator = NodeProcess([executable("bms_can", "emulator"), "--pack", "demo"], tmp / "emulator.log", env)
    board = NodeProcess([executable("bms_slave", "board"), "--ros-args", "-r", "__ns:=/bms",
                         *params(afe_backend="can", modules="0", autostart=True)], tmp / "board.log", env)
    try:
        wait_for(lambda: len(cells) >= samples, 30 + samples * 0.2, f"{samples} CellMeasurements")
    finally:
        board.stop()
        emulator.stop()
        ros.close()
    ms = 1e3 * np.asarray(arrivals[5:])
    print(f"3. latency frame on the bus -> CellMeasurements delivered ({len(ms)} samples): median "
          f"{np.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms, max {ms.max():.1f} ms "
          f"(the 0.1 s sample timer is in it: a page waits up to one period)")


def bus_load() -> None:
    pack = load_pack_config("nmc_16x12")
    pages_v = -(-pack.cell_count // 4)
    pages_t = -(-pack.modules * pack.sensors_per_module // 6)
    per_second = [  # (frames per second, data bytes)
        (10 * pages_v, 8), (10 * pages_t, 8), (10 * pack.modules, 8),   # boards: pages, BoardStatus
        (10 * 4 + 4, 6), (10, 8), (10, 5), (1, 6),                       # IVT-S, LEM, HV feedback, iso165C
        (10, 4), (10, 8), (pack.modules, 8),                             # BMS: contactors, limits, balancing 1 Hz
    ]
    frames = sum(n for n, _ in per_second)
    nominal = sum(n * frame_bits(dlc)[0] for n, dlc in per_second)
    worst = sum(n * frame_bits(dlc)[1] for n, dlc in per_second)
    print(f"4. bus load, {pack.modules} x {pack.cells_per_module} pack at 10 Hz ({pages_v} voltage + {pages_t} "
          f"temperature pages per sample): {frames} frames/s, {nominal / 1e3:.1f} kbit/s nominal = "
          f"{100 * nominal / BITRATE:.1f} % of 500 kbit/s, {100 * worst / BITRATE:.1f} % with worst-case stuffing")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[1000.0, 2000.0, 4000.0, 8000.0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--samples", type=int, default=100)
    args = parser.parse_args()
    channel = tempfile.mkdtemp(prefix="bmscan-bench-")
    tmp = Path(tempfile.mkdtemp(prefix="bmscan-bench-run-"))
    try:
        throughput(channel, args.rates, args.seconds)
        real_rate(channel, args.seconds)
        latency(channel, tmp, args.samples)
        bus_load()
    finally:
        shutil.rmtree(channel, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
