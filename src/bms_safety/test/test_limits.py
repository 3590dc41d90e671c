"""Limit tables load, and every validation error names the file, the key and the value."""

import copy
from pathlib import Path

import pytest
import yaml

from bms_common.pack_config import ConfigError, load_pack_config
from bms_safety.codes import Level
from bms_safety.evaluator import SafetyEvaluator
from bms_safety.limits import QUANTITIES, load_limits, parse_limits

SHOWN_PATH = Path("config/limits/nmc.yaml")


@pytest.fixture(scope="module")
def nmc_data() -> dict:
    return yaml.safe_load(load_limits("nmc").source.read_text())


def broken(data: dict, edit) -> str:
    changed = copy.deepcopy(data)
    edit(changed)
    with pytest.raises(ConfigError) as info:
        parse_limits(changed, SHOWN_PATH.resolve())
    return str(info.value)


@pytest.mark.parametrize("name,ov,uv", [("nmc", 4.25, 2.80), ("lfp", 3.65, 2.50)])
def test_shipped_tables_load_with_architecture_defaults(name, ov, uv):
    table = load_limits(name)
    assert table.thresholds["cell_voltage_high"].levels[2].threshold == ov
    assert table.thresholds["cell_voltage_low"].levels[2].threshold == uv
    assert table.thresholds["temperature_charge_high"].levels[2].threshold == 45.0
    assert table.thresholds["temperature_charge_low"].levels[2].threshold == 0.0
    assert table.thresholds["temperature_discharge_high"].levels[2].threshold == 60.0
    assert table.thresholds["temperature_discharge_low"].levels[2].threshold == -20.0
    assert set(table.thresholds) == set(QUANTITIES)
    assert table.events["ESTIMATOR_LOSS"].level == Level.WARNING


@pytest.mark.parametrize("pack", ["demo", "lfp", "nmc_16x12"])
def test_every_shipped_pack_gets_an_evaluator(pack):
    assert SafetyEvaluator.from_pack(load_pack_config(pack)).evaluate(0.0).level >= Level.OK


def test_out_of_range_value_names_file_key_and_value(nmc_data):
    message = broken(nmc_data, lambda d: d["cell_voltage_high"]["msl"].update(threshold_v=9))
    assert message == "config/limits/nmc.yaml: cell_voltage_high.msl.threshold_v must be 3.0..5.0, got 9"


def test_level_order_is_checked(nmc_data):
    message = broken(nmc_data, lambda d: d["cell_voltage_high"]["mol"].update(threshold_v=4.3))
    assert message.startswith("config/limits/nmc.yaml: cell_voltage_high levels must be ordered MOL < RSL < MSL")
    assert "mol.threshold_v=4.3" in message
    low = broken(nmc_data, lambda d: d["cell_voltage_low"]["rsl"].update(threshold_v=2.7))
    assert "cell_voltage_low levels must be ordered MOL > RSL > MSL" in low and "rsl.threshold_v=2.7" in low


@pytest.mark.parametrize("edit,expected", [
    (lambda d: d["events"]["HVIL_OPEN"].update(level="PANIC"),
     "events.HVIL_OPEN.level must be one of WARNING, ALARM, FAULT, got 'PANIC'"),
    (lambda d: d["events"]["ESTIMATOR_LOSS"].update(level="FAULT"), "events.ESTIMATOR_LOSS.level must be WARNING"),
    (lambda d: d["plausibility"].pop("voltage_stuck_time_s"), "plausibility.voltage_stuck_time_s is required"),
    (lambda d: d["timeouts"].update(module_stale_s="1s"), "timeouts.module_stale_s must be a number, got '1s'"),
    (lambda d: d["insulation_low"]["mol"].update(charge_derating=1.5),
     "insulation_low.mol.charge_derating must be 0.0..1.0, got 1.5"),
    (lambda d: d["cell_voltage_low"]["rsl"].update(discharge_derating=0.9),
     "cell_voltage_low discharge_derating must not grow with severity"),
    (lambda d: d.update(cell_voltage_hgih={}), "cell_voltage_hgih is not a known key"),
    (lambda d: d["plausibility"].update(cell_voltage_max_v=4.2),
     "cell_voltage_high.msl.threshold_v must lie inside plausibility.cell_voltage_min_v/max_v"),
    (lambda d: d.pop("current_charge_high"), "current_charge_high is required"),
])
def test_validation_errors(nmc_data, edit, expected):
    message = broken(nmc_data, edit)
    assert message.startswith("config/limits/nmc.yaml: ") and expected in message


def test_unknown_table_name_is_a_config_error():
    with pytest.raises(ConfigError, match="no limits configuration named 'nope'"):
        load_limits("nope")
