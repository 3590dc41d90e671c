"""Fault injection into the simulated pack. Every fault changes physics or sensor behaviour, never a
flag that says "injected": a drifting cell leaks charge, a cooling failure heats cells, an open
sense wire collapses a channel the way an AFE shows it.

A :class:`FaultInjector` acts on the simulated objects its node holds (the plant, some module AFEs,
the pack sensor); a fault aimed at an object it does not hold is refused with a message naming the
node that can take it. The table ``FAULTS`` is the single list of faults (docs/simulation.md
describes each).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bms_common.pack_config import PackConfig

from .plant import PackPlant
from .sim_afe import ALL_CHANNELS, SimulatedAfe
from .sim_pack_sensor import SimulatedPackSensor

PLANT, AFE, PACK_SENSOR = "plant", "afe", "pack_sensor"
TARGET_NODES = {PLANT: "the plant node", AFE: "the slave node of module {module}",
                PACK_SENSOR: "the current sensor node"}
# What the fault addresses: the pack, a module, a cell of a module, a temperature sensor of a
# module, or a module with an optional cell (-1 = every channel).
PACK, MODULE, CELL, SENSOR, MODULE_OR_CELL = "pack", "module", "cell", "sensor", "module_or_cell"


class FaultError(ValueError):
    """A fault request that cannot be applied; the message says what to change."""


@dataclass(frozen=True)
class FaultSpec:
    name: str
    target: str
    scope: str
    magnitude_unit: str           # "" when the fault takes no magnitude
    default_magnitude: float      # NaN: the caller must give one
    low: float
    high: float
    description: str


FAULTS: dict[str, FaultSpec] = {spec.name: spec for spec in (
    FaultSpec("cell_drift", PLANT, CELL, "A", math.nan, -1000.0, 1000.0,
              "leak current into the cell (positive: voltage climbs, negative: voltage falls)"),
    FaultSpec("cooling_failure", PLANT, MODULE, "fraction", 0.0, 0.0, 1.0,
              "module keeps this fraction of its heat transfer to the coolant"),
    FaultSpec("overtemperature", PLANT, MODULE, "degC", 80.0, -40.0, 200.0,
              "module's coolant heats to this temperature; its cells follow"),
    FaultSpec("dc_link_short", PLANT, PACK, "ohm", 1.0, 1e-3, 1e6,
              "resistance across the DC link: precharge cannot finish"),
    FaultSpec("insulation_fault", PLANT, PACK, "ohm", 50e3, 1.0, 1e12,
              "insulation resistance HV to chassis drops to this value"),
    FaultSpec("hvil_open", PLANT, PACK, "", math.nan, 0.0, 0.0, "HV interlock loop opens"),
    FaultSpec("welded_main_plus", PLANT, PACK, "", math.nan, 0.0, 0.0, "main+ stays closed"),
    FaultSpec("welded_main_minus", PLANT, PACK, "", math.nan, 0.0, 0.0, "main- stays closed"),
    FaultSpec("welded_precharge", PLANT, PACK, "", math.nan, 0.0, 0.0, "precharge contactor stays closed"),
    FaultSpec("current_sensor_offset", PACK_SENSOR, PACK, "A", math.nan, -1000.0, 1000.0,
              "offset added to the current reading"),
    FaultSpec("open_wire", AFE, CELL, "", math.nan, 0.0, 0.0,
              "cell's sense wire opens: its channel reads ~0 V, the channel above reads both cells"),
    FaultSpec("stuck_cell_voltage", AFE, CELL, "", math.nan, 0.0, 0.0, "cell's voltage reading freezes"),
    FaultSpec("stuck_temperature", AFE, SENSOR, "", math.nan, 0.0, 0.0, "sensor's reading freezes"),
    FaultSpec("nan_reading", AFE, MODULE_OR_CELL, "", math.nan, 0.0, 0.0,
              "cell channel (or all, cell -1) reads NaN"),
    FaultSpec("garbled_reading", AFE, MODULE_OR_CELL, "", math.nan, 0.0, 0.0,
              "cell channel (or all, cell -1) returns random in-range values"),
    FaultSpec("thermistor_open", AFE, SENSOR, "", math.nan, 0.0, 0.0, "sensor reads NaN"),
    FaultSpec("module_silence", AFE, MODULE, "", math.nan, 0.0, 0.0, "AFE stops answering"),
)}


class FaultInjector:
    def __init__(self, pack: PackConfig, plant: PackPlant | None = None,
                 afes: Mapping[int, SimulatedAfe] | None = None,
                 pack_sensor: SimulatedPackSensor | None = None) -> None:
        self.pack = pack
        self.plant = plant
        self.afes = dict(afes or {})
        self.pack_sensor = pack_sensor
        # (name, module, cell) -> magnitude of every fault now active.
        self.active: dict[tuple[str, int, int], float] = {}

    def handle(self, name: str, module_id: int, cell: int, magnitude: float, clear: bool) -> tuple[bool, str]:
        """Service-shaped entry point: never raises for a bad request, reports it instead."""
        try:
            message = self.clear(name, module_id, cell) if clear else self.inject(name, module_id, cell, magnitude)
        except FaultError as exc:
            return False, str(exc)
        return True, message

    def inject(self, name: str, module_id: int = -1, cell: int = -1, magnitude: float = math.nan) -> str:
        spec = self._spec(name)
        module_id, cell = self._address(spec, module_id, cell)
        magnitude = self._magnitude(spec, magnitude)
        self._apply(spec, module_id, cell, magnitude, on=True)
        self.active[(name, module_id, cell)] = magnitude
        return f"injected {_describe(name, module_id, cell)}" + (
            f" magnitude {magnitude:g} {spec.magnitude_unit}" if spec.magnitude_unit else "")

    def clear(self, name: str, module_id: int = -1, cell: int = -1) -> str:
        spec = self._spec(name)
        module_id, cell = self._address(spec, module_id, cell)
        if (name, module_id, cell) not in self.active:
            raise FaultError(f"{_describe(name, module_id, cell)} is not active")
        self._apply(spec, module_id, cell, math.nan, on=False)
        del self.active[(name, module_id, cell)]
        return f"cleared {_describe(name, module_id, cell)}"

    def clear_all(self) -> None:
        for name, module_id, cell in list(self.active):
            self.clear(name, module_id, cell)

    def _spec(self, name: str) -> FaultSpec:
        if name not in FAULTS:
            raise FaultError(f"unknown fault {name!r} (known: {', '.join(FAULTS)})")
        return FAULTS[name]

    def _address(self, spec: FaultSpec, module_id: int, cell: int) -> tuple[int, int]:
        pack = self.pack
        if spec.scope == PACK:
            return -1, -1
        if not 0 <= module_id < pack.modules:
            raise FaultError(f"{spec.name}: module_id must be 0..{pack.modules - 1}, got {module_id}")
        if spec.scope == MODULE:
            return module_id, -1
        count = pack.sensors_per_module if spec.scope == SENSOR else pack.cells_per_module
        what = "cell (the temperature sensor index)" if spec.scope == SENSOR else "cell"
        allowed_low = ALL_CHANNELS if spec.scope == MODULE_OR_CELL else 0
        if not allowed_low <= cell < count:
            raise FaultError(f"{spec.name}: {what} must be {allowed_low}..{count - 1}, got {cell}")
        return module_id, cell

    @staticmethod
    def _magnitude(spec: FaultSpec, magnitude: float) -> float:
        if not spec.magnitude_unit:
            return math.nan
        if math.isnan(magnitude):
            if math.isnan(spec.default_magnitude):
                raise FaultError(f"{spec.name}: give a magnitude in {spec.magnitude_unit} "
                                 f"({spec.low:g}..{spec.high:g})")
            return spec.default_magnitude
        if not spec.low <= magnitude <= spec.high:
            raise FaultError(f"{spec.name}: magnitude must be {spec.low:g}..{spec.high:g} "
                             f"{spec.magnitude_unit}, got {magnitude:g}")
        return magnitude

    def _target(self, spec: FaultSpec, module_id: int) -> object:
        target = {PLANT: self.plant, PACK_SENSOR: self.pack_sensor, AFE: self.afes.get(module_id)}[spec.target]
        if target is None:
            node = TARGET_NODES[spec.target].format(module=module_id)
            raise FaultError(f"{spec.name} acts on {node}; send it to that node's ~/inject_fault")
        return target

    def _apply(self, spec: FaultSpec, module_id: int, cell: int, magnitude: float, on: bool) -> None:
        target = self._target(spec, module_id)
        _ACTIONS[spec.name](target, module_id, cell, magnitude, on)


def _describe(name: str, module_id: int, cell: int) -> str:
    where = "" if module_id < 0 else f" module {module_id}" + ("" if cell < 0 else f" cell {cell}")
    return f"fault {name}{where}"


def _cell_drift(plant: PackPlant, module: int, cell: int, magnitude: float, on: bool) -> None:
    plant.cells.leak_current_a[module * plant.pack.cells_per_module + cell] = magnitude if on else 0.0


def _welded(contactor: str) -> Callable[[PackPlant, int, int, float, bool], None]:
    return lambda plant, module, cell, magnitude, on: plant.hv.set_welded(contactor, on)


def _stuck_voltage(afe: SimulatedAfe, module: int, cell: int, magnitude: float, on: bool) -> None:
    if on:
        afe.faults.stuck_voltage_v[cell] = float(afe.latest().cell_voltage_v[cell])
    else:
        afe.faults.stuck_voltage_v.pop(cell, None)


def _stuck_temperature(afe: SimulatedAfe, module: int, sensor: int, magnitude: float, on: bool) -> None:
    if on:
        afe.faults.stuck_temperature_degc[sensor] = float(afe.latest().temperature_degc[sensor])
    else:
        afe.faults.stuck_temperature_degc.pop(sensor, None)


def _toggle(attribute: str) -> Callable[[SimulatedAfe, int, int, float, bool], None]:
    def action(afe: SimulatedAfe, module: int, cell: int, magnitude: float, on: bool) -> None:
        members: set[int] = getattr(afe.faults, attribute)
        (members.add if on else members.discard)(cell)
    return action


def _set_hv(attribute: str, healthy: Callable[[PackPlant], object]) -> Callable[..., None]:
    def action(plant: PackPlant, module: int, cell: int, magnitude: float, on: bool) -> None:
        setattr(plant.hv, attribute, magnitude if on else healthy(plant))
    return action


def _silence(afe: SimulatedAfe, module: int, cell: int, magnitude: float, on: bool) -> None:
    afe.faults.silent = on


def _hvil(plant: PackPlant, module: int, cell: int, magnitude: float, on: bool) -> None:
    plant.hv.hvil_closed = not on


_ACTIONS: dict[str, Callable[..., None]] = {
    "cell_drift": _cell_drift,
    "cooling_failure": lambda plant, module, cell, magnitude, on: plant.cells.thermal.set_module_cooling_factor(
        module, magnitude if on else 1.0),
    "overtemperature": lambda plant, module, cell, magnitude, on: plant.cells.thermal.set_module_coolant(
        module, magnitude if on else None),
    "dc_link_short": _set_hv("dc_link_short_ohm", lambda plant: math.inf),
    "insulation_fault": _set_hv("insulation_resistance_ohm",
                                lambda plant: plant.hv.nominal_insulation_resistance_ohm),
    "hvil_open": _hvil,
    "welded_main_plus": _welded("main_plus"),
    "welded_main_minus": _welded("main_minus"),
    "welded_precharge": _welded("precharge"),
    "current_sensor_offset": lambda sensor, module, cell, magnitude, on: setattr(
        sensor.model, "fault_offset_a", magnitude if on else 0.0),
    "open_wire": _toggle("open_wire"),
    "stuck_cell_voltage": _stuck_voltage,
    "stuck_temperature": _stuck_temperature,
    "nan_reading": _toggle("nan_cells"),
    "garbled_reading": _toggle("garbled_cells"),
    "thermistor_open": _toggle("open_thermistors"),
    "module_silence": _silence,
}
