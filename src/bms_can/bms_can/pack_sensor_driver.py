"""Pack sensing over CAN (entry point ``can`` of ``bms_slave.pack_sensor_backends``).

Where each PackMeasurement field comes from is configured (``sources`` in config/can/*.yaml;
a field without a source stops the start with a message naming it):
- current_a: IVT-S result I (0x521), or a LEM CAB 500 (0x3C2);
- pack_voltage_v, dc_link_voltage_v: IVT-S voltage channels U1 / U2 / U3 (by default U1 on the
  battery side of the contactors, U2 on the DC link);
- insulation_resistance_ohm: the iso165C info frame (0x37), NaN while the monitor marks it not
  valid or its alive bit stops toggling;
- hvil_closed: the HV board's ContactorFeedback frame (never assumed true: a stale or faulty
  feedback reads as open).
A result older than its timeout, with an error bit set, or whose counter failed more than
``max_consecutive_errors`` times in a row is NaN. A silent current source is no reading at all
(the node publishes nothing, so the supervisor sees the sensor go stale).
"""

from __future__ import annotations

import math
import threading
import time

from bms_common.pack_config import PackConfig
from bms_slave.pack_sensor import PackSensorBackend, PackSensorReading

from .channel import CanChannel, shared_channel
from .config import CanConfig, load_can_config, require_sources
from .protocol import IVT_ERROR_SIGNALS, IVT_RESULTS, CounterCheck, Frame, FrameError


class CurrentSensorSilent(RuntimeError):
    """No current from the configured source within its timeout."""


class CanPackSensor(PackSensorBackend):
    def __init__(self, config: CanConfig, channel: CanChannel) -> None:
        self.config, self.channel = config, channel
        self.sources = require_sources(config)
        self._lock = threading.Lock()
        results = len(IVT_RESULTS)
        self._ivt_value = [math.nan] * results
        self._ivt_ok = [False] * results
        self._ivt_stamp = [-math.inf] * results
        self._ivt_counters = [CounterCheck(config.max_consecutive_errors) for _ in range(results)]
        self._insulation_ohm = math.nan
        self._insulation_stamp = -math.inf
        self._insulation_alive: bool | None = None
        self._insulation_frozen = 0
        self._lem_current_a = math.nan
        self._lem_stamp = -math.inf
        self._hvil = False
        self._feedback_stamp = -math.inf
        self._feedback_counter = CounterCheck(config.max_consecutive_errors)
        channel.subscribe("ivt", self._on_ivt, self._on_ivt_error)
        channel.subscribe("insulation_info", self._on_insulation)
        channel.subscribe("lem_cab500", self._on_lem)
        channel.subscribe("contactor_feedback", self._on_feedback, lambda _: self._feedback_counter.error())

    def _on_ivt(self, frame: Frame, stamp_s: float) -> None:
        s, n = frame.signals, frame.index
        with self._lock:
            self._ivt_counters[n].update(int(s["Counter"]))
            self._ivt_value[n] = float(s["Value"])
            self._ivt_ok[n] = not any(s[name] for name in IVT_ERROR_SIGNALS)
            self._ivt_stamp[n] = stamp_s

    def _on_ivt_error(self, error: FrameError) -> None:
        with self._lock:
            self._ivt_counters[error.index].error()

    def _on_lem(self, frame: Frame, stamp_s: float) -> None:
        with self._lock:
            self._lem_current_a = math.nan if frame.signals["Error"] else float(frame.signals["Current"])
            self._lem_stamp = stamp_s

    def _on_insulation(self, frame: Frame, stamp_s: float) -> None:
        s = frame.signals
        with self._lock:
            alive = bool(s["Alive"])
            self._insulation_frozen = self._insulation_frozen + 1 if alive == self._insulation_alive else 0
            self._insulation_alive = alive
            frozen = self._insulation_frozen > self.config.max_consecutive_errors
            usable = s["ResistanceValid"] and not s["DeviceError"] and not frozen
            self._insulation_ohm = float(s["InsulationResistance"]) if usable else math.nan
            self._insulation_stamp = stamp_s

    def _on_feedback(self, frame: Frame, stamp_s: float) -> None:
        with self._lock:
            self._feedback_counter.update(int(frame.signals["Counter"]))
            self._hvil = bool(frame.signals["HvilClosed"])
            self._feedback_stamp = stamp_s

    def _ivt(self, source: str, now_s: float) -> float:
        n = IVT_RESULTS.index(source.removeprefix("ivt_").upper())
        fresh = now_s - self._ivt_stamp[n] <= self.config.timeouts_s["ivt"]
        usable = fresh and self._ivt_ok[n] and not self._ivt_counters[n].failed
        return self._ivt_value[n] if usable else math.nan

    def read(self, now_s: float | None = None) -> PackSensorReading:
        now_s = time.time() if now_s is None else now_s
        timeouts, sources = self.config.timeouts_s, self.sources
        with self._lock:
            if sources["current"] == "lem_cab500":
                current_stamp, current_a, timeout_s = self._lem_stamp, self._lem_current_a, timeouts["lem_cab500"]
            else:
                current_stamp, current_a, timeout_s = self._ivt_stamp[0], self._ivt("ivt_i", now_s), timeouts["ivt"]
            if now_s - current_stamp > timeout_s:
                raise CurrentSensorSilent(
                    f"no current from {sources['current']} within {timeout_s:g} s on {self.channel.name}")
            insulation_fresh = now_s - self._insulation_stamp <= timeouts["insulation"]
            feedback_fresh = now_s - self._feedback_stamp <= timeouts["contactor_feedback"]
            return PackSensorReading(
                stamp_s=current_stamp,
                current_a=current_a,
                pack_voltage_v=self._ivt(sources["pack_voltage"], now_s),
                dc_link_voltage_v=self._ivt(sources["dc_link_voltage"], now_s),
                insulation_resistance_ohm=self._insulation_ohm if insulation_fresh else math.nan,
                hvil_closed=self._hvil and feedback_fresh and not self._feedback_counter.failed,
            )


def make_sensor(pack: PackConfig) -> CanPackSensor:
    """Entry point of ``bms_slave.pack_sensor_backends``."""
    config = load_can_config()
    require_sources(config)
    return CanPackSensor(config, shared_channel(config))
