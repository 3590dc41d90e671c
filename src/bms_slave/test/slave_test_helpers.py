"""Shared construction of small simulated packs for the tests."""

from __future__ import annotations

import dataclasses
from typing import Any

from bms_common.pack_config import PackConfig, load_pack_config
from bms_slave.plant import PackPlant
from bms_slave.sim_config import SimConfig, load_sim_config


def pack_with(name: str = "demo", **simulation: Any) -> PackConfig:
    pack = load_pack_config(name)
    return dataclasses.replace(pack, simulation={**pack.simulation, **simulation})


def plant_of(name: str = "demo", **simulation: Any) -> PackPlant:
    return PackPlant(pack_with(name, **simulation))


def ideal_sim(pack: PackConfig) -> SimConfig:
    """No measurement error: lets a test see exactly what the physics did."""
    return dataclasses.replace(load_sim_config(pack), voltage_offset_v=0.0, voltage_noise_v=0.0,
                               voltage_resolution_v=0.0, temperature_offset_degc=0.0,
                               temperature_noise_degc=0.0, current_gain_error=0.0,
                               current_offset_a=0.0, current_noise_a=0.0, pack_voltage_noise_v=0.0)


def close_mains(plant: PackPlant) -> None:
    plant.hv.command_contactors(main_plus=True, main_minus=True, precharge=False)


def run(plant: PackPlant, seconds: float, dt_s: float = 0.1) -> None:
    for _ in range(round(seconds / dt_s)):
        plant.step(dt_s)
