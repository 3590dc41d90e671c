"""Balancing strategy closed loop on the cell physics library (no ROS): 50 mV spread to < 10 mV.

The demo pack (4 x 12 NMC cells, about 50 Ah each, 33 ohm bleed resistors: about 115 mA) rests
in STANDBY. Every control period the strategy sees the true cell voltages and temperatures and
its masks go to the plant's bleed switches. Prints the simulated time it took.
"""

from __future__ import annotations

import time

import numpy as np

from bms_common.pack_config import load_pack_config
from bms_master.balancing import BalancingStrategy, BalancingStrategyConfig
from bms_master.enums import OperatingState
from bms_slave.plant import PackPlant

CONTROL_PERIOD_S = 10.0
SIMULATED_LIMIT_S = 72 * 3600.0
REST_AFTER_S = 3600.0


def spread_cells_to(plant: PackPlant, spread_v: float, seed: int = 3) -> None:
    """Set cell SOCs so that the resting cell voltages span spread_v around the pack's mean."""
    cells = plant.cells
    grid = np.linspace(0.3, 0.9, 601)
    temperature = float(cells.temperature_degc.mean())
    ocv_grid = cells.chemistry.ocv.ocv_v(grid, np.full(grid.size, temperature))
    base_v = float(np.interp(0.6, grid, ocv_grid))
    targets_v = base_v + np.random.default_rng(seed).permutation(np.linspace(0.0, spread_v, cells.count))
    cells.soc[:] = np.interp(targets_v, ocv_grid, grid)
    plant.step(1e-3)


def test_balancing_brings_50_mv_spread_below_10_mv():
    pack = load_pack_config("demo")
    plant = PackPlant(pack)
    spread_cells_to(plant, 0.050)
    initial_spread_v = float(np.ptp(plant.cells.voltage_v))
    assert 0.045 < initial_spread_v < 0.055
    bleed_a = plant.cells.voltage_v.mean() / pack.balancing.bleed_resistance_ohm
    assert 0.05 <= bleed_a <= 0.2

    config = BalancingStrategyConfig.from_pack(pack.balancing, threshold_v=0.005, hysteresis_v=0.002)
    strategy = BalancingStrategy(config, pack.modules, pack.cells_per_module)
    wall_start = time.perf_counter()
    below_10_mv_s = None
    bled_ah = 0.0
    while plant.time_s < SIMULATED_LIMIT_S:
        decision = strategy.decide(plant.cells.voltage_v, plant.cells.temperature_degc,
                                   OperatingState.STANDBY, plant.current_a)
        if not decision.masks.any():
            break
        for module, mask in enumerate(decision.masks):
            plant.set_module_balancing(module, mask)
        plant.step(CONTROL_PERIOD_S)
        bled_ah += float(plant.cells.bleed_current_a.sum()) * CONTROL_PERIOD_S / 3600.0
        if below_10_mv_s is None and np.ptp(plant.cells.voltage_v) < 0.010:
            below_10_mv_s = plant.time_s
    finished_s = plant.time_s
    # Judge the spread at rest: bleed currents polarise the cells by a fraction of a millivolt.
    for module in range(pack.modules):
        plant.set_module_balancing(module, np.zeros(pack.cells_per_module, dtype=bool))
    for _ in range(int(REST_AFTER_S / CONTROL_PERIOD_S)):
        plant.step(CONTROL_PERIOD_S)
    final_spread_v = float(np.ptp(plant.cells.voltage_v))
    assert below_10_mv_s is not None, "spread never went below 10 mV"
    print(f"\nbalancing: {initial_spread_v * 1000:.1f} mV spread below 10 mV after {below_10_mv_s / 3600.0:.1f} h "
          f"simulated, strategy done after {finished_s / 3600.0:.1f} h, resting spread "
          f"{final_spread_v * 1000:.1f} mV ({time.perf_counter() - wall_start:.1f} s wall); "
          f"bleed {bleed_a * 1000:.0f} mA per cell, {bled_ah:.1f} Ah bled in total, "
          f"max cell temperature {plant.cells.temperature_degc.max():.1f} degC")
    assert finished_s < SIMULATED_LIMIT_S
    assert final_spread_v < 0.010
