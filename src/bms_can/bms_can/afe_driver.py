"""AFE driver over CAN (entry point ``can`` of ``bms_slave.afe_backends``).

The slave boards send the foxBMS-compatible pages (cell voltages 4 per page, temperatures 6 per
page, pack-wide and module-major) and, as an extension, a BoardStatus frame per module with an
alive counter and a CRC. :class:`PackPages` keeps the latest page of everything in the process
(one per bus); each module's :class:`CanAfe` reads its cells from it without blocking:

- the reading's stamp is that of the module's oldest fresh page;
- a page older than its timeout makes its values NaN and sets MODULE_AFE_COMM_ERROR; when no
  page of the module is fresh the AFE counts as silent (AfeCommunicationError: no message);
- a value flagged invalid is NaN with CELL_ADC_MISMATCH (a temperature: MODULE_THERMISTOR_FAULT);
  a voltage of 0 mV or above the AFE range (5 V; the raw maximum is 8191 mV) is NaN with
  CELL_OUT_OF_RANGE; a raw extreme temperature (-128 or 127 degC) is NaN with
  MODULE_THERMISTOR_FAULT;
- a stale BoardStatus, more than ``max_consecutive_errors`` counter or CRC errors in a row, or a
  burst of error frames on the bus set MODULE_AFE_COMM_ERROR.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np

from bms_common.pack_config import PackConfig
from bms_slave.afe import (
    AFE_CELL_FLAG_DTYPE,
    CELL_ADC_MISMATCH,
    CELL_OUT_OF_RANGE,
    MODULE_AFE_COMM_ERROR,
    MODULE_THERMISTOR_FAULT,
    AfeBackend,
    AfeCommunicationError,
    AfeDiagnostics,
    AfeReading,
)
from bms_slave.measurement import AFE_RANGE_V

from .channel import CanChannel, shared_channel
from .config import CanConfig, load_can_config
from .protocol import CELLS_PER_PAGE, SENSORS_PER_PAGE, CounterCheck, Frame, FrameError, check_pack_fits

RAW_TEMPERATURE_EXTREMES_DEGC = (-128.0, 127.0)


def _pages(count: int, per_page: int) -> int:
    return -(-count // per_page)


class PackPages:
    """The latest decoded pages and board status of every module of the pack on one bus."""

    def __init__(self, pack: PackConfig, config: CanConfig, channel: CanChannel) -> None:
        check_pack_fits(pack)
        self.pack, self.config, self.channel = pack, config, channel
        cells, sensors = pack.cell_count, pack.modules * pack.sensors_per_module
        padded_cells = _pages(cells, CELLS_PER_PAGE) * CELLS_PER_PAGE
        padded_sensors = _pages(sensors, SENSORS_PER_PAGE) * SENSORS_PER_PAGE
        self.voltage_v = np.full(padded_cells, np.nan)
        self.voltage_valid = np.zeros(padded_cells, dtype=bool)
        self.voltage_stamp_s = np.full(padded_cells // CELLS_PER_PAGE, -math.inf)
        self.temperature_degc = np.full(padded_sensors, np.nan)
        self.temperature_valid = np.zeros(padded_sensors, dtype=bool)
        self.temperature_stamp_s = np.full(padded_sensors // SENSORS_PER_PAGE, -math.inf)
        modules = pack.modules
        self.status_stamp_s = np.full(modules, -math.inf)
        self.status_flags = np.zeros(modules, dtype=np.uint8)
        self.status_balancing = np.zeros(modules, dtype=np.int64)
        self.status_afe_errors = np.zeros(modules, dtype=np.int64)
        self.counters = [CounterCheck(config.max_consecutive_errors) for _ in range(modules)]
        self.unknown_pages = 0
        self.lock = threading.Lock()
        channel.subscribe("cell_voltages", self._on_voltages, self._on_error)
        channel.subscribe("cell_temperatures", self._on_temperatures, self._on_error)
        channel.subscribe("board_status", self._on_status, self._on_error)

    def _on_voltages(self, frame: Frame, stamp_s: float) -> None:
        page = frame.index
        if page >= len(self.voltage_stamp_s):
            self.unknown_pages += 1
            return
        s = frame.signals
        cells = slice(page * CELLS_PER_PAGE, (page + 1) * CELLS_PER_PAGE)
        with self.lock:
            self.voltage_v[cells] = [s[f"Cell{n}_Voltage"] for n in range(CELLS_PER_PAGE)]
            self.voltage_valid[cells] = [bool(s[f"Cell{n}_Valid"]) for n in range(CELLS_PER_PAGE)]
            self.voltage_stamp_s[page] = stamp_s

    def _on_temperatures(self, frame: Frame, stamp_s: float) -> None:
        page = frame.index
        if page >= len(self.temperature_stamp_s):
            self.unknown_pages += 1
            return
        s = frame.signals
        sensors = slice(page * SENSORS_PER_PAGE, (page + 1) * SENSORS_PER_PAGE)
        with self.lock:
            self.temperature_degc[sensors] = [s[f"Sensor{n}_Temperature"] for n in range(SENSORS_PER_PAGE)]
            self.temperature_valid[sensors] = [bool(s[f"Sensor{n}_Valid"]) for n in range(SENSORS_PER_PAGE)]
            self.temperature_stamp_s[page] = stamp_s

    def _on_status(self, frame: Frame, stamp_s: float) -> None:
        module = frame.index
        if module >= self.pack.modules:
            return
        s = frame.signals
        with self.lock:
            self.counters[module].update(int(s["Counter"]))
            self.status_stamp_s[module] = stamp_s
            self.status_flags[module] = int(s["ModuleFlags"])
            self.status_balancing[module] = int(s["Balancing"])
            self.status_afe_errors[module] = int(s["AfeErrors"])

    def _on_error(self, error: FrameError) -> None:
        if error.unknown_page:
            self.unknown_pages += 1
        elif error.kind == "board_status" and error.index < self.pack.modules:
            with self.lock:
                self.counters[error.index].error()


class CanAfe(AfeBackend):
    def __init__(self, pages: PackPages, module_id: int) -> None:
        pack = pages.pack
        self.pages, self.module_id = pages, module_id
        self._cells = slice(module_id * pack.cells_per_module, (module_id + 1) * pack.cells_per_module)
        n = pack.sensors_per_module
        self._sensors = slice(module_id * n, (module_id + 1) * n)
        self._voltage_pages = np.arange(self._cells.start, self._cells.stop) // CELLS_PER_PAGE
        self._temperature_pages = np.arange(self._sensors.start, self._sensors.stop) // SENSORS_PER_PAGE
        self._balance_counter = 0
        self.samples = 0
        self.silent_samples = 0
        self.last_problem = ""

    @property
    def cell_count(self) -> int:
        return self.pages.pack.cells_per_module

    @property
    def sensor_count(self) -> int:
        return self.pages.pack.sensors_per_module

    def read(self, now_s: float | None = None) -> AfeReading:
        now_s = time.time() if now_s is None else now_s
        p, timeouts = self.pages, self.pages.config.timeouts_s
        with p.lock:
            voltage = p.voltage_v[self._cells].copy()
            voltage_valid = p.voltage_valid[self._cells].copy()
            voltage_stamp = p.voltage_stamp_s[self._voltage_pages]
            temperature = p.temperature_degc[self._sensors].copy()
            temperature_valid = p.temperature_valid[self._sensors].copy()
            temperature_stamp = p.temperature_stamp_s[self._temperature_pages]
            status_stamp = p.status_stamp_s[self.module_id]
            status_flags = int(p.status_flags[self.module_id])
            balancing = int(p.status_balancing[self.module_id])
            counter_failed = p.counters[self.module_id].failed
        voltage_fresh = now_s - voltage_stamp <= timeouts["cell_voltages"]
        if not voltage_fresh.any():
            self.silent_samples += 1
            self.last_problem = "no fresh cell voltage page"
            raise AfeCommunicationError(
                f"module {self.module_id}: no cell voltage page within {timeouts['cell_voltages']:g} s")
        temperature_fresh = now_s - temperature_stamp <= timeouts["cell_temperatures"]
        cell_flags = np.zeros(self.cell_count, dtype=AFE_CELL_FLAG_DTYPE)
        module_flags = 0
        problems = []

        invalid = ~voltage_valid & voltage_fresh
        cell_flags[invalid] |= CELL_ADC_MISMATCH
        extreme = (voltage <= AFE_RANGE_V[0]) | (voltage > AFE_RANGE_V[1])
        cell_flags[extreme & voltage_fresh] |= CELL_OUT_OF_RANGE
        voltage[~voltage_fresh | invalid | extreme] = np.nan
        if not voltage_fresh.all():
            module_flags |= MODULE_AFE_COMM_ERROR
            problems.append("stale cell voltage page")

        bad_temperature = ~temperature_valid | np.isin(temperature, RAW_TEMPERATURE_EXTREMES_DEGC)
        if (bad_temperature & temperature_fresh).any():
            module_flags |= MODULE_THERMISTOR_FAULT
        temperature[~temperature_fresh | bad_temperature] = np.nan
        if not temperature_fresh.all():
            module_flags |= MODULE_AFE_COMM_ERROR
            problems.append("stale temperature page")

        if p.config.board_status:
            if now_s - status_stamp > timeouts["board_status"]:
                module_flags |= MODULE_AFE_COMM_ERROR
                problems.append("no BoardStatus")
                balancing = 0
            elif counter_failed:
                module_flags |= MODULE_AFE_COMM_ERROR
                problems.append("BoardStatus counter or CRC errors")
            module_flags |= status_flags
        if p.channel.error_burst(now_s):
            module_flags |= MODULE_AFE_COMM_ERROR
            problems.append("error frames on the bus")
        self.last_problem = ", ".join(problems)
        self.samples += 1
        return AfeReading(
            stamp_s=float(voltage_stamp[voltage_fresh].min()),
            cell_voltage_v=voltage,
            temperature_degc=temperature,
            balancing=np.array([bool(balancing >> n & 1) for n in range(self.cell_count)]),
            cell_flags=cell_flags,
            module_flags=module_flags,
        )

    def set_balancing(self, mask: np.ndarray) -> None:
        bits = sum(1 << n for n, on in enumerate(np.asarray(mask, dtype=bool)) if on)
        self._balance_counter += 1
        channel = self.pages.channel
        channel.send(channel.protocol.balancing_command(self.module_id, self._balance_counter, bits))

    def diagnostics(self) -> AfeDiagnostics:
        stats = self.pages.channel.stats
        return AfeDiagnostics(
            hardware_id=f"can:{self.pages.channel.name}:module_{self.module_id}",
            ok=not self.last_problem,
            message=f"{self.last_problem or 'ok'}; bus: {stats}",
            samples=self.samples,
            communication_errors=self.silent_samples + self.pages.counters[self.module_id].errors
            + stats.send_errors,
        )


_pages_by_pack: dict[tuple[str, str], PackPages] = {}
_lock = threading.Lock()


def shared_pages(pack: PackConfig, config: CanConfig) -> PackPages:
    with _lock:
        channel = shared_channel(config)
        key = (channel.name, str(pack.source))
        if key not in _pages_by_pack:
            _pages_by_pack[key] = PackPages(pack, config, channel)
        return _pages_by_pack[key]


def make_afe(pack: PackConfig, module_id: int) -> CanAfe:
    """Entry point of ``bms_slave.afe_backends``: the AFE of one module on the configured bus."""
    if not 0 <= module_id < pack.modules:
        raise ValueError(f"module {module_id} is not in pack {pack.name} (0..{pack.modules - 1})")
    check_pack_fits(pack)  # before the bus is opened
    return CanAfe(shared_pages(pack, load_can_config()), module_id)
