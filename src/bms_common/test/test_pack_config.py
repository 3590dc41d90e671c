"""Pack configurations load, and bad ones fail with file, key and value in the message."""

from __future__ import annotations

from pathlib import Path

import pytest

from bms_common.pack_config import ConfigError, load_pack_config
from bms_common.version import compatible, parse_semver

VALID = """
chemistry: NMC
modules: 2
cells_per_module: 4
nominal_capacity_ah: 10
temperature_sensors: [[0, 1], [2, 3]]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pack.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name,modules,cells,chemistry", [
    ("demo", 4, 12, "NMC"), ("nmc_16x12", 16, 12, "NMC"), ("lfp", 8, 16, "LFP"),
])
def test_shipped_packs_load(name, modules, cells, chemistry):
    pack = load_pack_config(name)
    assert (pack.modules, pack.cells_per_module, pack.chemistry) == (modules, cells, chemistry)
    assert pack.cell_count == modules * cells
    assert -1 not in pack.sensor_of_cell()


def test_defaults_from_a_minimal_file(tmp_path):
    pack = load_pack_config(str(write(tmp_path, VALID)))
    assert pack.name == "pack" and pack.limits == "nmc" and pack.balancing.threshold_v == 0.010
    assert pack.sensor_of_cell() == [0, 0, 1, 1]


@pytest.mark.parametrize("change,expected", [
    (("modules: 2", "modules: 0"), "modules must be 1..500, got 0"),
    (("cells_per_module: 4", "cells_per_module: 25"), "cells_per_module must be 1..24, got 25"),
    (("chemistry: NMC", "chemistry: LCO"), "chemistry must be one of NMC, LFP, got 'LCO'"),
    (("nominal_capacity_ah: 10", "nominal_capacity_ah: -1"), "nominal_capacity_ah must be > 0, got -1.0"),
    (("[[0, 1], [2, 3]]", "[[0, 1], [2, 9]]"), "temperature_sensors[1] cell index must be 0..3, got 9"),
    (("[[0, 1], [2, 3]]", "[[0, 1]]"), "temperature_sensors leaves cells [2, 3] without a sensor"),
    (("modules: 2", "modules: two"), "modules must be int, got 'two'"),
    (("modules: 2", "modules: 2\ncolour: red"), "colour is not a known key"),
])
def test_errors_name_file_key_and_value(tmp_path, change, expected):
    path = write(tmp_path, VALID.replace(*change))
    with pytest.raises(ConfigError) as error:
        load_pack_config(str(path))
    assert str(error.value).startswith(f"{path}: ")
    assert expected in str(error.value)


def test_missing_required_key(tmp_path):
    path = write(tmp_path, VALID.replace("nominal_capacity_ah: 10\n", ""))
    with pytest.raises(ConfigError, match="nominal_capacity_ah is required"):
        load_pack_config(str(path))


def test_unknown_pack_name_lists_where_it_looked():
    with pytest.raises(ConfigError, match="no packs configuration named 'nope'.*config/packs"):
        load_pack_config("nope")


def test_not_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_pack_config(str(write(tmp_path, "modules: [1, 2")))


def test_interface_versions():
    assert parse_semver("1.2.3") == (1, 2, 3)
    with pytest.raises(ValueError, match="not a semantic version"):
        parse_semver("1.2")
    assert compatible("1.0.0", "1.4.2") and not compatible("1.0.0", "2.0.0")
    assert not compatible("1.0.0", "garbage")
