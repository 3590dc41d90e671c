"""Master and contactor parameters as data: ``config/master.yaml`` into the cores' dataclasses.

Every section and key is optional (the dataclass defaults apply); unknown keys and wrong types
are errors that name the file and the key. The balancing threshold and temperature window
default to the pack configuration's ``balancing:`` values.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bms_common.pack_config import ConfigError, read_yaml_mapping

from .balancing import BalancingStrategyConfig
from .contactor_logic import ContactorLogicConfig
from .current_limits import CurrentLimitConfig
from .enums import OperatingState
from .state_machine import StateMachineConfig


@dataclass(frozen=True)
class AggregationConfig:
    # A module whose last CellMeasurements is older than this (node clock) is STALE.
    module_freshness_timeout_s: float = 1.0


@dataclass(frozen=True)
class MasterConfig:
    state_machine: StateMachineConfig = field(default_factory=StateMachineConfig)
    current_limits: CurrentLimitConfig = field(default_factory=CurrentLimitConfig)
    contactor: ContactorLogicConfig = field(default_factory=ContactorLogicConfig)
    aggregation: AggregationConfig = field(default_factory=AggregationConfig)
    # Keys of BalancingStrategyConfig given in the file; the rest comes from the pack.
    balancing_overrides: dict[str, Any] = field(default_factory=dict)

    def balancing(self, pack_balancing: Any) -> BalancingStrategyConfig:
        """Strategy settings: pack BalancingConfig values, then this file's overrides."""
        return BalancingStrategyConfig.from_pack(pack_balancing, **self.balancing_overrides)


_SECTIONS: dict[str, type] = {
    "state_machine": StateMachineConfig,
    "current_limits": CurrentLimitConfig,
    "contactor": ContactorLogicConfig,
    "aggregation": AggregationConfig,
    "balancing": BalancingStrategyConfig,
}


def load_master_config(path: str | Path) -> MasterConfig:
    path = Path(path)
    return parse_master_config(read_yaml_mapping(path), path)


def parse_master_config(data: dict[str, Any], path: Path) -> MasterConfig:
    for key in data:
        if key not in _SECTIONS:
            raise ConfigError(f"{path}: {key} is not a known section (known: {', '.join(_SECTIONS)})")
    sections = {name: _section(path, name, cls, data.get(name) or {}) for name, cls in _SECTIONS.items()}
    return MasterConfig(
        state_machine=StateMachineConfig(**sections["state_machine"]),
        current_limits=CurrentLimitConfig(**sections["current_limits"]),
        contactor=ContactorLogicConfig(**sections["contactor"]),
        aggregation=AggregationConfig(**sections["aggregation"]),
        balancing_overrides=sections["balancing"],
    )


def _section(path: Path, name: str, cls: type, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: {name} must be a mapping, got {raw!r}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"{path}: {name}.{key}"
        if key not in known:
            raise ConfigError(f"{where} is not a known key (known: {', '.join(known)})")
        default = known[key].default
        if key == "allowed_states":
            values[key] = _states(where, value)
        elif isinstance(default, bool) or isinstance(value, bool):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        elif isinstance(default, int) and not isinstance(default, float):
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"{where} must be an integer >= 0, got {value!r}")
            values[key] = value
        else:
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{where} must be a number >= 0, got {value!r}")
            values[key] = float(value)
    return values


def _states(where: str, value: Any) -> tuple[OperatingState, ...]:
    names = [s.name for s in OperatingState]
    if not isinstance(value, list) or any(v not in names for v in value):
        raise ConfigError(f"{where} must be a list of state names from {', '.join(names)}, got {value!r}")
    return tuple(OperatingState[v] for v in value)
