"""The contract's rules for using a CellMeasurements sample, shared by every consumer.

docs/interfaces.md ("Using a sample") states them; the supervisor, the master and the estimator
all apply them through this module, so a sample one of them rejects is rejected by all:

- A sample is usable only if its module id is in the pack, its arrays have the pack's lengths
  (``cell_flags`` may be empty), its stamp is a finite time within the stamp tolerance of the
  receiver's clock at arrival, and its sequence number follows the module's last usable one (a
  repeat is a duplicate; a backwards number is a restart only with a newer stamp). A rejected
  sample is no sample: its module goes stale as if silent.
- A value outside the physical range of the pack (its limit table's ``plausibility`` section)
  is not a measurement (3300 is millivolts, not volts): consumers treat it as unmeasured.

No ROS imports: algorithms and tests use it directly.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from .pack_config import ConfigError, PackConfig, read_yaml_mapping, resolve_config

# Tolerated difference between a sample's stamp and the receiver's clock when it arrives. Behind:
# a sample older than a module's stale timeout is stale on arrival. Ahead: a clock offset the
# receiver cannot explain. Like staleness, both hold on the wall clock too (docs/safety.md,
# "Time"): a simulation at speed S turns a delivery delay (behind) or a receiver that handles
# /clock late (ahead; pacing lets it lag the plant by 0.3 s) into S times as much simulated
# time, so both tolerances are multiplied by the receiver's clock rate (simulated seconds per
# wall second, at least 1; 1 on hardware).
STAMP_AHEAD_TOLERANCE_S = 0.25
STAMP_BEHIND_TOLERANCE_S = 1.0
RATE_WINDOW_S = 1.0  # wall seconds over which the clock rate is measured
SEQUENCE_MODULUS = 2**32  # sequence numbers are uint32 on the wire and wrap

# AFE diagnostic bits: the one Python definition, for the drivers that set them (bms_slave.afe
# re-exports them) and the consumers that read them. They are the CellMeasurements constants (a
# test keeps them equal); their meaning to a consumer: docs/interfaces.md, "AFE flags".
CELL_OK, CELL_OPEN_WIRE, CELL_ADC_MISMATCH, CELL_OUT_OF_RANGE = 0, 1, 2, 4  # cell_flags, uint8
MODULE_OK, MODULE_AFE_COMM_ERROR, MODULE_AFE_SELF_TEST, MODULE_THERMISTOR_FAULT = 0, 1, 2, 4  # module_flags

# Kinds of rejection (SampleGate.check), each a plausibility fault of its own in the supervisor.
UNKNOWN_MODULE, MALFORMED, SEQUENCE, STAMP = "unknown_module", "malformed", "sequence", "stamp"


@dataclass(frozen=True)
class PhysicalRanges:
    """Values outside these are not measurements (per chemistry, from the pack's limit table)."""

    cell_voltage_min_v: float = 1.0
    cell_voltage_max_v: float = 5.0
    temperature_min_degc: float = -40.0
    temperature_max_degc: float = 125.0

    def bad_voltages(self, voltages_v: np.ndarray) -> np.ndarray:
        """Finite readings outside the range (NaN is unmeasured, not implausible)."""
        v = np.asarray(voltages_v, dtype=np.float64)
        return np.isfinite(v) & ((v < self.cell_voltage_min_v) | (v > self.cell_voltage_max_v))

    def bad_temperatures(self, temperatures_degc: np.ndarray) -> np.ndarray:
        t = np.asarray(temperatures_degc, dtype=np.float64)
        return np.isfinite(t) & ((t < self.temperature_min_degc) | (t > self.temperature_max_degc))


def physical_ranges(pack: PackConfig) -> PhysicalRanges:
    """The ranges of the limit table the pack names (its ``plausibility`` section)."""
    path = resolve_config("limits", pack.limits)
    section = read_yaml_mapping(path).get("plausibility")
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: plausibility section missing")
    keys = ("cell_voltage_min_v", "cell_voltage_max_v", "temperature_min_degc", "temperature_max_degc")
    try:
        return PhysicalRanges(*(float(section[key]) for key in keys))
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: plausibility.{keys} must all be numbers ({exc})") from None


def stamp_problem(stamp_s: float, now_s: float, rate: float = 1.0) -> str | None:
    """Why a stamp is unusable at the receiver's clock ``now_s`` running at ``rate`` (simulated
    seconds per wall second), or None."""
    if not math.isfinite(stamp_s):
        return f"stamp is not a finite time ({stamp_s!r})"
    ahead_s = STAMP_AHEAD_TOLERANCE_S * max(1.0, rate)
    if stamp_s > now_s + ahead_s:
        return (f"stamped {stamp_s - now_s:.3f} s ahead of the receiver's clock ({now_s:.3f} s; "
                f"tolerance {ahead_s:g} s)")
    behind_s = STAMP_BEHIND_TOLERANCE_S * max(1.0, rate)
    if stamp_s < now_s - behind_s:
        return (f"stamped {now_s - stamp_s:.3f} s behind the receiver's clock ({now_s:.3f} s; "
                f"tolerance {behind_s:g} s)")
    return None


class ClockRate:
    """Simulated seconds per wall second of a node clock, over the last ``RATE_WINDOW_S``."""

    def __init__(self) -> None:
        self._points: deque[tuple[float, float]] = deque()  # (wall_s, now_s)
        self.rate = 1.0

    def observe(self, now_s: float, wall_s: float) -> float:
        points = self._points
        if points and now_s < points[-1][1]:
            points.clear()  # the clock went back (a restarted simulation): measure afresh
        points.append((wall_s, now_s))
        while len(points) > 2 and wall_s - points[1][0] >= RATE_WINDOW_S:
            points.popleft()
        wall_span_s = wall_s - points[0][0]
        if wall_span_s >= RATE_WINDOW_S / 2:
            self.rate = (now_s - points[0][1]) / wall_span_s
        return self.rate


class StampGate:
    """The stamp rule alone, for a message of no module (a pack measurement): usable only when
    its stamp is a finite time within the stamp tolerance of the receiver's clock at arrival,
    widened by that clock's rate as for module samples."""

    def __init__(self) -> None:
        self.clock_rate = ClockRate()

    def check(self, stamp_s: float, now_s: float, wall_s: float | None = None) -> str | None:
        """Why the stamp is unusable, or None; ``wall_s`` (monotonic) gives the clock rate."""
        if not math.isfinite(stamp_s):
            return f"stamp is not a finite time ({stamp_s!r})"
        rate = 1.0 if wall_s is None else self.clock_rate.observe(now_s, wall_s)
        return stamp_problem(stamp_s, now_s, rate)


class SampleGate:
    """The usability rule of every consumer, with the per-module sequence state it needs."""

    def __init__(self, modules: int, cells: int, sensors: int) -> None:
        self.modules, self.cells, self.sensors = modules, cells, sensors
        self.sequence = np.full(modules, -1, dtype=np.int64)
        self.stamp_s = np.full(modules, -math.inf)
        self.clock_rate = ClockRate()

    def check(self, module_id: object, stamp_s: float, voltages: int, temperatures: int, cell_flags: int,
              sequence: object, now_s: float | None, wall_s: float | None = None) -> tuple[str, str] | None:
        """(kind, description) of the first rule the sample breaks, or None when usable; a usable
        sample advances the module's sequence. ``now_s``: the receiver's clock at arrival (None
        skips the stamp tolerance: replay of stored samples, arrival is the stamp); ``wall_s``: the
        wall clock (monotonic) then, for the clock rate (None: rate 1)."""
        if isinstance(module_id, bool) or not isinstance(module_id, int | np.integer) \
                or not 0 <= module_id < self.modules:
            return UNKNOWN_MODULE, (f"message from module_id {module_id!r}, but the pack has modules "
                                    f"0..{self.modules - 1}; check the slave's module_id parameter")
        m = int(module_id)
        if voltages != self.cells or temperatures != self.sensors or cell_flags not in (0, self.cells):
            return MALFORMED, (f"module {m}: expected {self.cells} cell voltages and {self.sensors} "
                               f"temperatures, got {voltages} and {temperatures}"
                               + (f" ({cell_flags} cell flags)" if cell_flags not in (0, self.cells) else ""))
        if not math.isfinite(stamp_s):
            return MALFORMED, f"module {m}: stamp is not a finite time ({stamp_s!r})"
        if isinstance(sequence, bool) or not isinstance(sequence, int | np.integer) or sequence < 0:
            return MALFORMED, f"module {m}: sequence must be an unsigned integer, got {sequence!r}"
        rate = 1.0 if now_s is None or wall_s is None else self.clock_rate.observe(now_s, wall_s)
        if now_s is not None and (problem := stamp_problem(stamp_s, now_s, rate)):
            return STAMP, f"module {m}: sample {problem}: dropped"
        last = int(self.sequence[m])
        if last >= 0:
            step = (int(sequence) - last) % SEQUENCE_MODULUS
            if step == 0:
                return SEQUENCE, f"module {m}: sequence {sequence} repeated (duplicate sample dropped)"
            # A slave that restarted counts from 0 again; its stamps still move forward.
            if step >= SEQUENCE_MODULUS // 2 and not stamp_s > self.stamp_s[m]:
                return SEQUENCE, f"module {m}: sequence {sequence} after {last} (out-of-order sample dropped)"
        self.sequence[m] = int(sequence) % SEQUENCE_MODULUS
        self.stamp_s[m] = stamp_s
        return None
