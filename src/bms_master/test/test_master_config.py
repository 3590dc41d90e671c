"""config/master.yaml loads into the cores' dataclasses; errors name file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from bms_common.pack_config import ConfigError, load_pack_config
from bms_master.balancing import BalancingStrategyConfig
from bms_master.contactor_logic import ContactorLogicConfig
from bms_master.current_limits import CurrentLimitConfig
from bms_master.enums import OperatingState
from bms_master.master_config import MasterConfig, load_master_config, parse_master_config
from bms_master.state_machine import StateMachineConfig

MASTER_YAML = Path(__file__).resolve().parents[3] / "config" / "master.yaml"


def test_shipped_file_holds_the_defaults():
    config = load_master_config(MASTER_YAML)
    assert config.state_machine == StateMachineConfig()
    assert config.current_limits == CurrentLimitConfig()
    assert config.contactor == ContactorLogicConfig()
    pack = load_pack_config("lfp")
    balancing = config.balancing(pack.balancing)
    assert balancing == BalancingStrategyConfig.from_pack(pack.balancing)
    assert balancing.threshold_v == pack.balancing.threshold_v


def test_overrides_apply():
    config = parse_master_config({"state_machine": {"precharge_timeout_s": 1},
                                  "balancing": {"allowed_states": ["STANDBY"], "threshold_v": 0.004}},
                                 Path("x.yaml"))
    assert config.state_machine.precharge_timeout_s == 1.0
    balancing = config.balancing(load_pack_config("demo").balancing)
    assert balancing.allowed_states == (OperatingState.STANDBY,) and balancing.threshold_v == 0.004
    assert parse_master_config({}, Path("x.yaml")) == MasterConfig()


@pytest.mark.parametrize(("data", "message"), [
    ({"bogus": {}}, "bogus is not a known section"),
    ({"state_machine": {"precharge_timeout": 1.0}}, "state_machine.precharge_timeout is not a known key"),
    ({"current_limits": {"max_charge_current_a": "lots"}}, "max_charge_current_a must be a number"),
    ({"current_limits": {"max_charge_current_a": -1.0}}, "must be a number >= 0"),
    ({"balancing": {"max_cells_per_module": 1.5}}, "must be an integer"),
    ({"balancing": {"allowed_states": ["PARKED"]}}, "allowed_states must be a list of state names"),
])
def test_errors_name_file_and_key(data, message):
    with pytest.raises(ConfigError, match=f"x.yaml: .*{message}"):
        parse_master_config(data, Path("x.yaml"))
