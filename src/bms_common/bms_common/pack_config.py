"""Pack configuration: the single source of chemistry, topology, sensors, limits and balancing.

A pack file lives under ``config/packs/<name>.yaml``. Loading validates every key and raises
:class:`ConfigError` with the file, the key and the offending value, so a user can fix the file
without reading code. No ROS imports here: algorithms and tests load packs directly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CHEMISTRIES = ("NMC", "LFP")
MAX_MODULES = 500
MAX_CELLS_PER_MODULE = 24


class ConfigError(ValueError):
    """A configuration file is missing, malformed or holds a value out of range."""


@dataclass(frozen=True)
class BalancingConfig:
    threshold_v: float = 0.010
    bleed_resistance_ohm: float = 33.0
    min_temperature_degc: float = 0.0
    max_temperature_degc: float = 50.0


@dataclass(frozen=True)
class PackConfig:
    name: str
    source: Path
    chemistry: str
    modules: int
    cells_per_module: int
    nominal_capacity_ah: float
    # temperature_sensors[k] = cell indices (within a module) that sensor k sits next to
    temperature_sensors: tuple[tuple[int, ...], ...]
    limits: str
    balancing: BalancingConfig
    simulation: dict[str, Any] = field(default_factory=dict)

    @property
    def cell_count(self) -> int:
        return self.modules * self.cells_per_module

    @property
    def sensors_per_module(self) -> int:
        return len(self.temperature_sensors)

    def sensor_of_cell(self) -> list[int]:
        """Index of the first temperature sensor next to each cell of a module."""
        owner = [-1] * self.cells_per_module
        for sensor, cells in enumerate(self.temperature_sensors):
            for cell in cells:
                if owner[cell] < 0:
                    owner[cell] = sensor
        return owner


def parse_module_ids(value: object, modules: int, where: str) -> list[int]:
    """A ``modules`` parameter as given ("0, 1", "[0, 1]", an integer list; "" = none listed),
    checked against a pack of ``modules`` modules; ``where`` names the node and parameter."""
    items = value if isinstance(value, list) else str(value).strip().strip("[]").split(",")
    try:
        wanted = [int(str(item).strip()) for item in items if str(item).strip()]
    except ValueError:
        raise ValueError(f"{where} must list module ids, e.g. \"0, 1\"; got {value!r}") from None
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"{where} lists a module twice: {value!r}")
    outside = [m for m in wanted if not 0 <= m < modules]
    if outside:
        raise ValueError(f"{where}: modules {outside} are not in the pack (0..{modules - 1})")
    return wanted


def config_dirs() -> list[Path]:
    """Where config/ trees are searched, most specific first."""
    dirs: list[Path] = []
    if env := os.environ.get("BMS_CONFIG_DIR"):
        dirs.append(Path(env))
    repo = Path(__file__).resolve()
    for parent in repo.parents:
        if (parent / "config" / "packs").is_dir() and (parent / "package.xml").is_file():
            dirs.append(parent / "config")
            break
    try:
        from ament_index_python.packages import get_package_share_directory

        dirs.append(Path(get_package_share_directory("bms")) / "config")
    except Exception:  # noqa: BLE001 - the bms share directory is optional outside a full install
        pass
    dirs.append(Path.cwd() / "config")
    return dirs


def resolve_config(kind: str, name_or_path: str) -> Path:
    """Find ``config/<kind>/<name>.yaml`` or accept an explicit path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or os.sep in name_or_path:
        if candidate.is_file():
            return candidate.resolve()
        raise ConfigError(f"{name_or_path}: no such {kind} file")
    searched = []
    for base in config_dirs():
        path = base / kind / f"{name_or_path}.yaml"
        searched.append(str(path.parent))
        if path.is_file():
            return path.resolve()
    raise ConfigError(
        f"no {kind} configuration named '{name_or_path}' (searched {', '.join(searched)}); "
        f"give a name from config/{kind}/ or a path to a .yaml file"
    )


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


class _Reader:
    """Typed access to a mapping that reports errors as 'file: key ...'."""

    def __init__(self, path: Path, data: dict[str, Any], prefix: str = "") -> None:
        self.path, self.data, self.prefix = path, data, prefix

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {self.prefix}{key} {message}")

    def get(self, key: str, kind: type, default: Any = ..., lo: float | None = None,
            hi: float | None = None) -> Any:
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "is required")
            return default
        value = self.data[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise self.fail(key, f"must be {kind.__name__}, got {value!r}")
        if lo is not None and hi is not None and not lo <= value <= hi:
            raise self.fail(key, f"must be {lo:g}..{hi:g}, got {value!r}")
        if lo is not None and hi is None and not value > lo:
            raise self.fail(key, f"must be > {lo:g}, got {value!r}")
        return value

    def unknown(self, allowed: set[str]) -> None:
        for key in self.data:
            if key not in allowed:
                raise self.fail(str(key), f"is not a known key (known: {', '.join(sorted(allowed))})")


def load_pack_config(name_or_path: str) -> PackConfig:
    """Load and validate a pack by name (``demo``) or path."""
    path = resolve_config("packs", name_or_path)
    return parse_pack_config(read_yaml_mapping(path), path)


def parse_pack_config(data: dict[str, Any], path: Path) -> PackConfig:
    r = _Reader(path, data)
    r.unknown({"name", "chemistry", "modules", "cells_per_module", "nominal_capacity_ah",
               "temperature_sensors", "limits", "balancing", "simulation"})
    chemistry = r.get("chemistry", str)
    if chemistry not in CHEMISTRIES:
        raise r.fail("chemistry", f"must be one of {', '.join(CHEMISTRIES)}, got {chemistry!r}")
    modules = r.get("modules", int, lo=1, hi=MAX_MODULES)
    cells = r.get("cells_per_module", int, lo=1, hi=MAX_CELLS_PER_MODULE)
    capacity = r.get("nominal_capacity_ah", float, lo=0.0)

    sensors_raw = r.get("temperature_sensors", list)
    if not sensors_raw:
        raise r.fail("temperature_sensors", "must list at least one sensor")
    sensors: list[tuple[int, ...]] = []
    covered: set[int] = set()
    for k, entry in enumerate(sensors_raw):
        if not isinstance(entry, list) or not entry:
            raise r.fail(f"temperature_sensors[{k}]", f"must be a non-empty list of cell indices, got {entry!r}")
        for cell in entry:
            if not isinstance(cell, int) or isinstance(cell, bool) or not 0 <= cell < cells:
                raise r.fail(f"temperature_sensors[{k}]", f"cell index must be 0..{cells - 1}, got {cell!r}")
        sensors.append(tuple(entry))
        covered.update(entry)
    missing = sorted(set(range(cells)) - covered)
    if missing:
        raise r.fail("temperature_sensors", f"leaves cells {missing} without a sensor next to them")

    bal_raw = r.get("balancing", dict, default={})
    b = _Reader(path, bal_raw, "balancing.")
    b.unknown({"threshold_v", "bleed_resistance_ohm", "min_temperature_degc", "max_temperature_degc"})
    defaults = BalancingConfig()
    balancing = BalancingConfig(
        threshold_v=b.get("threshold_v", float, defaults.threshold_v, lo=0.0),
        bleed_resistance_ohm=b.get("bleed_resistance_ohm", float, defaults.bleed_resistance_ohm, lo=0.0),
        min_temperature_degc=b.get("min_temperature_degc", float, defaults.min_temperature_degc, -40.0, 80.0),
        max_temperature_degc=b.get("max_temperature_degc", float, defaults.max_temperature_degc, -40.0, 80.0),
    )
    if balancing.min_temperature_degc >= balancing.max_temperature_degc:
        raise b.fail("min_temperature_degc", "must be below max_temperature_degc")

    return PackConfig(
        name=r.get("name", str, default=path.stem),
        source=path,
        chemistry=chemistry,
        modules=modules,
        cells_per_module=cells,
        nominal_capacity_ah=capacity,
        temperature_sensors=tuple(sensors),
        limits=r.get("limits", str, default=chemistry.lower()),
        balancing=balancing,
        simulation=r.get("simulation", dict, default={}),
    )
