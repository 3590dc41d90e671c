"""Limit tables: three levels per quantity, event reactions, plausibility and timeout parameters.

A table lives under ``config/limits/<name>.yaml`` (``PackConfig.limits`` names it). Loading
validates every key and raises :class:`ConfigError` naming the file, the key and the value, so a
user fixes the table without reading code. No ROS imports: tests and tools load tables directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bms_common.pack_config import ConfigError, read_yaml_mapping, resolve_config

from .codes import FAULT_CODES, LEVEL_BY_NAME, Level

LEVEL_KEYS = ("mol", "rsl", "msl")
THRESHOLD_LEVELS = (Level.WARNING, Level.ALARM, Level.FAULT)


@dataclass(frozen=True)
class Quantity:
    """Schema of one limited quantity: its fault code, which side is bad, unit and sane range."""

    code: str
    direction: str  # "high": fault above threshold; "low": fault below
    unit: str  # suffix of threshold_<unit> and hysteresis_<unit>
    lo: float
    hi: float


QUANTITIES: dict[str, Quantity] = {
    "cell_voltage_high": Quantity("CELL_OV", "high", "v", 3.0, 5.0),
    "cell_voltage_low": Quantity("CELL_UV", "low", "v", 1.0, 4.0),
    "cell_voltage_spread_high": Quantity("CELL_SPREAD", "high", "v", 0.001, 2.0),
    "temperature_charge_high": Quantity("TEMP_HIGH_CHARGE", "high", "degc", -40.0, 150.0),
    "temperature_charge_low": Quantity("TEMP_LOW_CHARGE", "low", "degc", -60.0, 60.0),
    "temperature_discharge_high": Quantity("TEMP_HIGH_DISCHARGE", "high", "degc", -40.0, 150.0),
    "temperature_discharge_low": Quantity("TEMP_LOW_DISCHARGE", "low", "degc", -60.0, 60.0),
    "current_charge_high": Quantity("OVERCURRENT_CHARGE", "high", "a", 0.1, 10000.0),
    "current_discharge_high": Quantity("OVERCURRENT_DISCHARGE", "high", "a", 0.1, 10000.0),
    "insulation_low": Quantity("INSULATION_LOW", "low", "ohm", 1e3, 1e9),
}

THRESHOLD_CODES = {q.code for q in QUANTITIES.values()}
# Checks without a threshold table; STATE_UNREADABLE is fixed at FAULT and not configurable.
EVENT_CODES = tuple(c for c in FAULT_CODES if c not in THRESHOLD_CODES and c != "STATE_UNREADABLE")


@dataclass(frozen=True)
class LevelLimit:
    level: Level
    threshold: float
    hysteresis: float  # clear only once the value is this far back inside the limit
    debounce_s: float  # condition must hold this long before the level is raised
    charge_derating: float  # factor 0..1 on the allowed charge current while active
    discharge_derating: float


@dataclass(frozen=True)
class ThresholdLimits:
    quantity: str
    code: str
    direction: str
    unit: str
    levels: tuple[LevelLimit, LevelLimit, LevelLimit]  # MOL, RSL, MSL


@dataclass(frozen=True)
class EventLimits:
    code: str
    level: Level
    debounce_s: float
    charge_derating: float
    discharge_derating: float


@dataclass(frozen=True)
class PlausibilityLimits:
    cell_voltage_min_v: float
    cell_voltage_max_v: float
    temperature_min_degc: float
    temperature_max_degc: float
    current_max_abs_a: float
    # A reading bit-identical for this long is frozen: AFE noise and quantisation make identical
    # consecutive values of a live cell unlikely, even at rest.
    voltage_stuck_time_s: float
    temperature_stuck_time_s: float
    pack_voltage_tolerance_v: float
    pack_voltage_tolerance_fraction: float
    # Above this current the charge temperature window applies, otherwise the discharge window.
    charge_window_current_a: float
    # How long a bad message (malformed, duplicate, unknown module) keeps its fault active.
    input_fault_hold_s: float


@dataclass(frozen=True)
class TimeoutLimits:
    module_stale_s: float
    current_sensor_stale_s: float
    estimator_loss_s: float


@dataclass(frozen=True)
class LimitTable:
    name: str
    source: Path
    chemistry: str
    thresholds: dict[str, ThresholdLimits]  # by quantity key
    events: dict[str, EventLimits]  # by fault code
    plausibility: PlausibilityLimits
    timeouts: TimeoutLimits


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class _Section:
    """Typed access to one mapping of the table; errors read 'file: key must ..., got ...'."""

    def __init__(self, path: Path, data: Any, prefix: str) -> None:
        self.path, self.prefix = path, prefix
        if not isinstance(data, dict):
            raise self.error("", f"must be a mapping, got {data!r}")
        self.data: dict[str, Any] = data

    def error(self, key: str, message: str) -> ConfigError:
        name = f"{self.prefix}{key}".rstrip(".") or "top level"
        return ConfigError(f"{_display(self.path)}: {name} {message}")

    def only(self, allowed: set[str] | tuple[str, ...]) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.error(str(key), f"is not a known key (known: {', '.join(sorted(allowed))})")

    def sub(self, key: str) -> _Section:
        if key not in self.data:
            raise self.error(key, "is required")
        return _Section(self.path, self.data[key], f"{self.prefix}{key}.")

    def number(self, key: str, lo: float, hi: float) -> float:
        if key not in self.data:
            raise self.error(key, "is required")
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.error(key, f"must be a number, got {value!r}")
        if not lo <= value <= hi:
            raise self.error(key, f"must be {lo}..{hi}, got {value!r}")
        return float(value)

    def level(self, key: str) -> Level:
        value = self.data.get(key)
        if value not in ("WARNING", "ALARM", "FAULT"):
            raise self.error(key, f"must be one of WARNING, ALARM, FAULT, got {value!r}")
        return LEVEL_BY_NAME[value]


def load_limits(name_or_path: str) -> LimitTable:
    """Load and validate a limit table by name (``nmc``) or path."""
    path = resolve_config("limits", name_or_path)
    return parse_limits(read_yaml_mapping(path), path)


def parse_limits(data: dict[str, Any], path: Path) -> LimitTable:
    top = _Section(path, data, "")
    top.only({"name", "chemistry", "plausibility", "timeouts", "events", *QUANTITIES})
    chemistry = data.get("chemistry")
    if not isinstance(chemistry, str) or not chemistry:
        raise top.error("chemistry", f"must be a chemistry name such as NMC, got {chemistry!r}")
    thresholds = {key: _parse_quantity(top.sub(key), key, quantity) for key, quantity in QUANTITIES.items()}
    plausibility = _parse_plausibility(top.sub("plausibility"))
    _check_physical_ranges(top, thresholds, plausibility)
    name = data.get("name", path.stem)
    return LimitTable(
        name=str(name),
        source=path,
        chemistry=chemistry,
        thresholds=thresholds,
        events=_parse_events(top.sub("events")),
        plausibility=plausibility,
        timeouts=_parse_timeouts(top.sub("timeouts")),
    )


def _parse_quantity(section: _Section, key: str, quantity: Quantity) -> ThresholdLimits:
    section.only(LEVEL_KEYS)
    unit, span = quantity.unit, quantity.hi - quantity.lo
    levels = []
    for level_key, level in zip(LEVEL_KEYS, THRESHOLD_LEVELS, strict=True):
        s = section.sub(level_key)
        s.only({f"threshold_{unit}", f"hysteresis_{unit}", "debounce_s", "charge_derating",
                "discharge_derating"})
        levels.append(LevelLimit(
            level=level,
            threshold=s.number(f"threshold_{unit}", quantity.lo, quantity.hi),
            hysteresis=s.number(f"hysteresis_{unit}", 0.0, span),
            debounce_s=s.number("debounce_s", 0.0, 60.0),
            charge_derating=s.number("charge_derating", 0.0, 1.0),
            discharge_derating=s.number("discharge_derating", 0.0, 1.0),
        ))
    sign = 1.0 if quantity.direction == "high" else -1.0
    values = [sign * lv.threshold for lv in levels]
    if not values[0] < values[1] < values[2]:
        relation = "<" if sign > 0 else ">"
        shown = ", ".join(f"{k}.threshold_{unit}={lv.threshold!r}" for k, lv in zip(LEVEL_KEYS, levels, strict=True))
        raise section.error("", f"levels must be ordered MOL {relation} RSL {relation} MSL, got {shown}")
    for attr in ("charge_derating", "discharge_derating"):
        factors = [getattr(lv, attr) for lv in levels]
        if not factors[0] >= factors[1] >= factors[2]:
            raise section.error("", f"{attr} must not grow with severity (MOL >= RSL >= MSL), got {factors}")
    return ThresholdLimits(key, quantity.code, quantity.direction, unit, tuple(levels))  # type: ignore[arg-type]


def _parse_events(section: _Section) -> dict[str, EventLimits]:
    section.only(EVENT_CODES)
    events = {}
    for code in EVENT_CODES:
        s = section.sub(code)
        s.only({"level", "debounce_s", "charge_derating", "discharge_derating"})
        events[code] = EventLimits(
            code=code,
            level=s.level("level"),
            debounce_s=s.number("debounce_s", 0.0, 60.0),
            charge_derating=s.number("charge_derating", 0.0, 1.0),
            discharge_derating=s.number("discharge_derating", 0.0, 1.0),
        )
    if events["ESTIMATOR_LOSS"].level != Level.WARNING:
        raise section.error("ESTIMATOR_LOSS.level", "must be WARNING (the master falls back to "
                            f"conservative limits), got {events['ESTIMATOR_LOSS'].level.name!r}")
    return events


def _parse_plausibility(s: _Section) -> PlausibilityLimits:
    s.only(set(PlausibilityLimits.__dataclass_fields__))
    limits = PlausibilityLimits(
        cell_voltage_min_v=s.number("cell_voltage_min_v", 0.0, 5.0),
        cell_voltage_max_v=s.number("cell_voltage_max_v", 0.0, 6.0),
        temperature_min_degc=s.number("temperature_min_degc", -100.0, 50.0),
        temperature_max_degc=s.number("temperature_max_degc", 0.0, 250.0),
        current_max_abs_a=s.number("current_max_abs_a", 1.0, 1e5),
        voltage_stuck_time_s=s.number("voltage_stuck_time_s", 0.1, 3600.0),
        temperature_stuck_time_s=s.number("temperature_stuck_time_s", 0.1, 86400.0),
        pack_voltage_tolerance_v=s.number("pack_voltage_tolerance_v", 0.0, 1000.0),
        pack_voltage_tolerance_fraction=s.number("pack_voltage_tolerance_fraction", 0.0, 0.5),
        charge_window_current_a=s.number("charge_window_current_a", 0.0, 100.0),
        input_fault_hold_s=s.number("input_fault_hold_s", 0.0, 3600.0),
    )
    if limits.cell_voltage_min_v >= limits.cell_voltage_max_v:
        raise s.error("cell_voltage_min_v", f"must be below cell_voltage_max_v, got {limits.cell_voltage_min_v!r}")
    if limits.temperature_min_degc >= limits.temperature_max_degc:
        raise s.error("temperature_min_degc",
                      f"must be below temperature_max_degc, got {limits.temperature_min_degc!r}")
    return limits


def _parse_timeouts(s: _Section) -> TimeoutLimits:
    s.only(set(TimeoutLimits.__dataclass_fields__))
    return TimeoutLimits(
        module_stale_s=s.number("module_stale_s", 0.01, 600.0),
        current_sensor_stale_s=s.number("current_sensor_stale_s", 0.01, 600.0),
        estimator_loss_s=s.number("estimator_loss_s", 0.01, 600.0),
    )


def _check_physical_ranges(top: _Section, thresholds: dict[str, ThresholdLimits],
                           p: PlausibilityLimits) -> None:
    """Every MSL must lie inside the physical range, else the plausibility check would hide it."""
    bounds = {
        "v": (p.cell_voltage_min_v, p.cell_voltage_max_v, "plausibility.cell_voltage_min_v/max_v"),
        "degc": (p.temperature_min_degc, p.temperature_max_degc, "plausibility.temperature_min/max_degc"),
    }
    for key in ("cell_voltage_high", "cell_voltage_low", "temperature_charge_high", "temperature_charge_low",
                "temperature_discharge_high", "temperature_discharge_low"):
        t = thresholds[key]
        lo, hi, where = bounds[t.unit]
        msl = t.levels[2].threshold
        if not lo < msl < hi:
            raise top.error(f"{key}.msl.threshold_{t.unit}", f"must lie inside {where} ({lo}..{hi}), got {msl!r}")
