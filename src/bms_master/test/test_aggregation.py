"""Pack aggregation: extremes with locations, staleness, per-cell arrays, garbage input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bms_master.aggregation import ModuleTable, aggregate
from bms_master.enums import ModuleStatus

SENSOR_OF_CELL = [0, 0, 1, 1]  # 4 cells, 2 sensors per module


def table_with_three_modules() -> ModuleTable:
    table = ModuleTable(modules=3, cells_per_module=4, sensors_per_module=2)
    table.update(0, [3.70, 3.71, 3.72, 3.73], [25.0, 26.0], time_s=10.0)
    table.update(1, [3.65, 3.80, 3.70, 3.70], [24.0, 30.0], time_s=10.0)
    table.update(2, [3.70, 3.70, 3.70, 3.70], [20.0, 21.0], time_s=9.5)
    return table


def test_extremes_means_and_locations():
    agg = aggregate(table_with_three_modules(), 10.0, 1.0, SENSOR_OF_CELL)
    assert list(agg.module_status) == [ModuleStatus.OK] * 3
    assert (agg.min_cell_voltage.value, agg.min_cell_voltage.module, agg.min_cell_voltage.index) == \
        pytest.approx((3.65, 1, 0))
    assert (agg.max_cell_voltage.module, agg.max_cell_voltage.index) == (1, 1)
    assert (agg.min_temperature.value, agg.min_temperature.module, agg.min_temperature.index) == (20.0, 2, 0)
    assert (agg.max_temperature.value, agg.max_temperature.module, agg.max_temperature.index) == (30.0, 1, 1)
    assert agg.sum_of_cells_v == pytest.approx(44.51)
    assert agg.mean_cell_voltage_v == pytest.approx(44.51 / 12)
    assert agg.mean_temperature_degc == pytest.approx(146.0 / 6)


def test_stale_and_missing_modules_are_excluded():
    table = table_with_three_modules()
    agg = aggregate(table, 10.6, 1.0, SENSOR_OF_CELL)
    assert list(agg.module_status) == [ModuleStatus.OK, ModuleStatus.OK, ModuleStatus.STALE]
    assert agg.min_temperature.value == 24.0 and math.isnan(agg.sum_of_cells_v)
    assert np.isnan(agg.cell_voltages_v[8:]).all() and not np.isnan(agg.cell_voltages_v[:8]).any()

    fresh = ModuleTable(modules=2, cells_per_module=4, sensors_per_module=2)
    fresh.update(1, [3.7] * 4, [25.0, 25.0], 0.0)
    agg = aggregate(fresh, 0.0, 1.0, SENSOR_OF_CELL)
    assert list(agg.module_status) == [ModuleStatus.MISSING, ModuleStatus.OK]


def test_nothing_known_gives_nan_and_location_zero():
    agg = aggregate(ModuleTable(2, 4, 2), 0.0, 1.0, SENSOR_OF_CELL)
    assert math.isnan(agg.min_cell_voltage.value) and agg.min_cell_voltage.module == 0
    assert math.isnan(agg.mean_temperature_degc) and math.isnan(agg.sum_of_cells_v)


def test_per_cell_arrays_module_major_with_sensor_mapping():
    agg = aggregate(table_with_three_modules(), 10.0, 1.0, SENSOR_OF_CELL)
    assert agg.cell_voltages_v.shape == (12,) and agg.cell_voltages_v[5] == pytest.approx(3.80)
    assert list(agg.cell_temperatures_degc[4:8]) == [24.0, 24.0, 30.0, 30.0]


def test_nan_cell_is_skipped_in_extremes_but_poisons_sum():
    table = table_with_three_modules()
    table.update(1, [math.nan, 3.80, math.inf, 3.70], [24.0, 30.0], 10.0)
    agg = aggregate(table, 10.0, 1.0, SENSOR_OF_CELL)
    assert agg.min_cell_voltage.value == pytest.approx(3.70) and math.isnan(agg.sum_of_cells_v)
    assert math.isnan(agg.cell_voltages_v[6])


def test_garbage_is_rejected_with_a_clear_message_and_table_unchanged():
    table = table_with_three_modules()
    before = table.voltages_v.copy()
    with pytest.raises(ValueError, match="module_id 7, but the pack has modules 0..2"):
        table.update(7, [3.7] * 4, [25.0, 25.0], 11.0)
    with pytest.raises(ValueError, match="expected 4 cell voltages and 2 temperatures, got 3 and 2"):
        table.update(0, [3.7] * 3, [25.0, 25.0], 11.0)
    with pytest.raises(ValueError, match="got 4 and 1"):
        table.update(0, [3.7] * 4, [25.0], 11.0)
    np.testing.assert_array_equal(table.voltages_v, before)
    assert table.time_s[0] == 10.0


def test_rejected_samples_leave_the_module_to_go_stale():
    table = ModuleTable(modules=1, cells_per_module=4, sensors_per_module=2)
    table.update(0, [3.7] * 4, [25.0, 25.0], 10.0, sequence=5)
    for time_s in (10.5, 11.0, 11.5):
        with pytest.raises(ValueError, match="sequence 5 repeated"):
            table.update(0, [4.4] * 4, [25.0, 25.0], time_s, sequence=5)
    with pytest.raises(ValueError, match="ahead of the receiver's clock"):
        table.update(0, [4.4] * 4, [25.0, 25.0], 11.5, stamp_s=12.0, sequence=6)
    assert list(table.module_status(11.5, 1.0)) == [ModuleStatus.STALE]
    assert table.voltages_v[0, 0] == 3.7


def test_millivolts_are_ignored_as_unmeasured_and_reported():
    table = ModuleTable(modules=1, cells_per_module=4, sensors_per_module=2)
    note = table.update(0, [3700.0, 3710.0, 3.72, 3.73], [25.0, 25.0], 10.0)
    assert note is not None and "2 cell voltages outside 1..5 V" in note and "3700" in note
    assert np.isnan(table.voltages_v[0, :2]).all() and table.voltages_v[0, 2] == 3.72
    assert list(table.module_status(10.0, 1.0)) == [ModuleStatus.OK]
