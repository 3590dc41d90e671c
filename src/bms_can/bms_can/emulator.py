"""Board emulator (``ros2 run bms_can emulator`` or ``lib/bms_can/emulator``; no ROS needed): the
slave boards, an IVT-S, an iso165C insulation monitor and the contactor / HV board of one pack on
a CAN bus, driven by the simulation's plant (cell physics, HV circuit, load) and measurement
models, so the values on CAN are the simulation's within the encoding resolution.

The HV board energises the coils the ContactorCommand frame asks for and releases them all when
commands stop for ``timeouts_s.contactor_command`` or their counter / CRC fail; the load obeys
the Limits frame and draws nothing without a fresh one. Wire faults (bms_can.wire_faults) are
set with ``--fault KIND:TARGET`` or while running by lines on standard input
(``fault silence 1``, ``clear silence 1``, ``clear``).
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading
import time

import can
import numpy as np

from bms_common.pack_config import PackConfig, load_pack_config
from bms_slave.afe import AfeReading
from bms_slave.pack_sensor import PackSensorReading
from bms_slave.plant import PROFILE_NAMES, PackPlant
from bms_slave.sim_afe import SimulatedAfe
from bms_slave.sim_pack_sensor import SimulatedPackSensor

from .channel import CanChannel
from .config import CanConfig, load_can_config
from .protocol import (
    CELLS_PER_PAGE,
    SENSORS_PER_PAGE,
    TEMPERATURE_PAGES,
    VOLTAGE_PAGES,
    CounterCheck,
    Frame,
    check_pack_fits,
)
from .wire_faults import WireFaults, parse_target

SLOW_EVERY = 10          # IVT-S T/W/As/Wh and the iso165C info frame: every 10th sample (1 s)
ERROR_BURST = 20


class BoardEmulator:
    def __init__(self, pack: PackConfig, config: CanConfig, profile: str = "drive",
                 profile_current_a: float = 0.0, sample_period_s: float = 0.1, step_s: float = 0.05) -> None:
        check_pack_fits(pack)
        self.pack, self.config = pack, config
        self.plant = PackPlant(pack)
        self.plant.set_profile(self.plant.make_profile(profile, profile_current_a))
        self.plant.set_current_limits(0.0, 0.0)
        self.afes = [SimulatedAfe.create(self.plant, pack, self.plant.sim, m) for m in range(pack.modules)]
        self.sensor = SimulatedPackSensor(self.plant, self.plant.sim)
        self.channel = CanChannel(config)
        self.protocol = self.channel.protocol
        self.faults = WireFaults()
        self.sample_period_s, self.step_s = sample_period_s, step_s
        self.samples = 0
        self.counters: dict[int | str, int] = {}
        self.charge_as = self.energy_ws = 0.0
        self.last_command_s = self.last_limits_s = -math.inf
        self.command_check = CounterCheck(config.max_consecutive_errors)
        self.channel.subscribe("contactor_command", self._on_command, lambda _: self.command_check.error())
        self.channel.subscribe("limits", self._on_limits)
        self.channel.subscribe("balancing_command", self._on_balancing)
        self.last_readings: dict[int, AfeReading] = {}
        self.last_pack_reading: PackSensorReading | None = None
        self._lock = threading.Lock()  # the bus thread's commands against the plant's step

    # --- what the BMS sends ------------------------------------------------------------------
    def _on_command(self, frame: Frame, stamp_s: float) -> None:
        s = frame.signals
        with self._lock:
            self.command_check.update(int(s["Counter"]))
            self.last_command_s = stamp_s
            self.plant.hv.command_contactors(bool(s["MainPlus"]), bool(s["MainMinus"]), bool(s["Precharge"]))

    def _on_limits(self, frame: Frame, stamp_s: float) -> None:
        s = frame.signals
        with self._lock:
            self.last_limits_s = stamp_s
            self.plant.set_current_limits(max(0.0, s["ChargeCurrentLimit"]), max(0.0, s["DischargeCurrentLimit"]))

    def _on_balancing(self, frame: Frame, stamp_s: float) -> None:
        module = frame.index
        if 0 <= module < self.pack.modules:
            bits = int(frame.signals["Balance"])
            mask = np.array([bool(bits >> n & 1) for n in range(self.pack.cells_per_module)])
            with self._lock:
                self.plant.set_module_balancing(module, mask)

    # --- the world ---------------------------------------------------------------------------
    def step(self, now_s: float) -> None:
        """Advance the plant one step; every sample period put the boards' frames on the bus."""
        timeouts = self.config.timeouts_s
        with self._lock:
            if now_s - self.last_command_s > timeouts["contactor_command"] or self.command_check.failed:
                self.plant.hv.command_contactors(False, False, False)  # the HV board's own watchdog
            if now_s - self.last_limits_s > timeouts["limits"]:
                self.plant.set_current_limits(0.0, 0.0)
            self.plant.step(self.step_s)
            truth = self.plant.pack_truth()
        self.charge_as += truth.current_a * self.step_s
        self.energy_ws += truth.current_a * truth.pack_voltage_v * self.step_s
        if round(self.plant.time_s / self.step_s) % round(self.sample_period_s / self.step_s) == 0:
            self.send_samples()

    def _next(self, target: int | str, sender: str = "") -> int:
        """The next counter of a sender (default: the target itself), as its faults make it."""
        key = sender or target
        self.counters[key] = self.counters.get(key, 0) + 1
        return self.faults.counter(target, self.counters[key])

    def _send(self, target: int | str, msg: can.Message, has_crc: bool = False) -> None:
        if not self.faults.has("silence", target):
            self.channel.send(self.faults.mangle(target, msg, has_crc))

    def send_samples(self) -> None:
        self.samples += 1
        self._send_modules()
        self._send_pack_sensors(slow=self.samples % SLOW_EVERY == 1)
        if self.faults.has("error_burst", "bus"):
            for _ in range(ERROR_BURST):
                self.channel.send(can.Message(arbitration_id=0x4, is_error_frame=True, data=bytes(8)))

    def _send_modules(self) -> None:
        pack, p = self.pack, self.protocol
        cells, sensors = pack.cells_per_module, pack.sensors_per_module
        voltage = np.zeros(-(-pack.cell_count // CELLS_PER_PAGE) * CELLS_PER_PAGE)
        voltage_ok = np.zeros(voltage.size, dtype=bool)
        temperature = np.zeros(-(-pack.modules * sensors // SENSORS_PER_PAGE) * SENSORS_PER_PAGE)
        temperature_ok = np.zeros(temperature.size, dtype=bool)
        for m, afe in enumerate(self.afes):
            reading = afe.read()
            self.last_readings[m] = reading
            v = np.nan_to_num(reading.cell_voltage_v, nan=0.0).clip(0.0, 8.191)
            t = np.nan_to_num(reading.temperature_degc, nan=0.0).round().clip(-128, 127)
            ok_v = ~np.isnan(reading.cell_voltage_v) & ~self.faults.has("invalid", m)
            ok_t = ~np.isnan(reading.temperature_degc) & ~self.faults.has("invalid", m)
            if self.faults.has("raw_extreme", m):
                v[0], t[0] = 8.191, 127
            voltage[m * cells:(m + 1) * cells], voltage_ok[m * cells:(m + 1) * cells] = v, ok_v
            temperature[m * sensors:(m + 1) * sensors], temperature_ok[m * sensors:(m + 1) * sensors] = t, ok_t
            bits = sum(1 << n for n, on in enumerate(reading.balancing) if on)
            self._send(m, p.board_status(m, self._next(m), int(reading.module_flags), bits, 0), has_crc=True)
        for page in range(voltage.size // CELLS_PER_PAGE):
            owner = page * CELLS_PER_PAGE // cells
            part = slice(page * CELLS_PER_PAGE, (page + 1) * CELLS_PER_PAGE)
            self._send(owner, p.cell_voltages(page, voltage[part], voltage_ok[part]))
        for page in range(temperature.size // SENSORS_PER_PAGE):
            owner = page * SENSORS_PER_PAGE // sensors
            part = slice(page * SENSORS_PER_PAGE, (page + 1) * SENSORS_PER_PAGE)
            self._send(owner, p.cell_temperatures(page, temperature[part], temperature_ok[part]))
        for m in range(pack.modules):
            if self.faults.has("unknown_page", m):
                self._send(m, p.cell_voltages(VOLTAGE_PAGES - 1, [3.7] * 4, [True] * 4))
                self._send(m, p.cell_temperatures(TEMPERATURE_PAGES - 1, [25] * 6, [True] * 6))

    def _send_pack_sensors(self, slow: bool) -> None:
        p, reading = self.protocol, self.sensor.read()
        self.last_pack_reading = reading
        error = self.faults.has("invalid", "ivt")
        values = [reading.current_a, reading.pack_voltage_v, reading.dc_link_voltage_v, reading.dc_link_voltage_v,
                  self.plant.sim.ambient_degc, reading.current_a * reading.pack_voltage_v,
                  self.charge_as, self.energy_ws / 3600.0]
        for result in range(8 if slow else 4):
            counter = self._next("ivt", f"ivt{result}")
            self._send("ivt", p.ivt_result(result, counter, values[result], error=error))
        self._send("lem", p.lem_cab500(reading.current_a, error=self.faults.has("invalid", "lem")))
        hv = self.plant.hv
        coils, aux = hv.commanded, hv.feedback()
        self._send("hv", p.contactor_feedback(
            self._next("hv"), (coils.main_plus, coils.main_minus, coils.precharge),
            (aux.main_plus, aux.main_minus, aux.precharge), hv.hvil_closed), has_crc=True)
        if slow:
            self._send("iso", p.insulation_info(reading.insulation_resistance_ohm, True, False, False,
                                                self.samples // SLOW_EVERY % 2 == 1))

    def close(self) -> None:
        self.channel.close()


def run(emulator: BoardEmulator, stop: threading.Event, speed: float = 1.0, duration_s: float = 0.0) -> None:
    """Step in real time (times ``speed``) until ``stop`` is set or ``duration_s`` simulated."""
    start = time.monotonic()
    steps = 0
    while not stop.is_set():
        steps += 1
        emulator.step(time.time())
        if duration_s and emulator.plant.time_s >= duration_s:
            return
        stop.wait(max(0.0, start + steps * emulator.step_s / speed - time.monotonic()))


def _read_commands(emulator: BoardEmulator, stop: threading.Event) -> None:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            print(f"emulator: {emulator.faults.command(line)}", flush=True)
        except ValueError as exc:
            print(f"emulator: {exc}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="emulator", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", default="demo", help="pack configuration name or path")
    parser.add_argument("--can-config", default=None, help="CAN configuration (default: $BMS_CAN_CONFIG or 'default')")
    parser.add_argument("--profile", default="drive", choices=PROFILE_NAMES)
    parser.add_argument("--profile-current", type=float, default=0.0, help="A, for constant and cccv")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=0.0, help="simulated seconds; 0 = until stopped")
    parser.add_argument("--fault", action="append", default=[], metavar="KIND:TARGET")
    argv = sys.argv[1:] if argv is None else argv
    if "--ros-args" in argv:  # started by a launch file's <node>: it is not a ROS node
        argv = argv[:argv.index("--ros-args")]
    args = parser.parse_args(argv)
    try:
        emulator = BoardEmulator(load_pack_config(args.pack), load_can_config(args.can_config),
                                 args.profile, args.profile_current)
        for spec in args.fault:
            kind, _, target = spec.partition(":")
            emulator.faults.set(kind, parse_target(target or "bus"))
    except ValueError as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=_read_commands, args=(emulator, stop), daemon=True).start()
    print(f"emulator: pack {emulator.pack.name} on {emulator.channel.name}", flush=True)
    try:
        run(emulator, stop, args.speed, args.duration)
    finally:
        emulator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
