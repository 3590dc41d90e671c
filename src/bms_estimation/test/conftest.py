"""Test set-up: make the package importable from a source checkout, and a pack factory."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2]
for package_dir in (SRC / "bms_estimation", SRC / "bms_common"):
    if str(package_dir) not in sys.path:
        sys.path.insert(0, str(package_dir))

from bms_common.pack_config import BalancingConfig, PackConfig  # noqa: E402 - needs the path above

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _make_pack(chemistry: str = "NMC", modules: int = 2, cells_per_module: int = 4,
              nominal_capacity_ah: float = 5.0) -> PackConfig:
    return PackConfig(
        name="test", source=Path("test.yaml"), chemistry=chemistry, modules=modules,
        cells_per_module=cells_per_module, nominal_capacity_ah=nominal_capacity_ah,
        temperature_sensors=(tuple(range(cells_per_module)),), limits=chemistry.lower(),
        balancing=BalancingConfig(),
    )


@pytest.fixture
def make_pack():
    """A pack description without a YAML file: make_pack(chemistry, modules, cells_per_module, ...)."""
    return _make_pack


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
