"""Hardware abstraction of a cell-monitoring front end (AFE), one per module.

Shaped like a ros2_control hardware interface: the slave node calls ``read()`` once per sample,
``set_balancing()`` when the master commands bleed switches, and ``diagnostics()`` for its
/diagnostics status. Backends (simulated, CAN) hide everything else. Diagnostic bit values match
``bms_interfaces/msg/CellMeasurements`` so a node copies them straight into the message.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from bms_common.plausibility import (  # noqa: F401 - re-exported for drivers
    CELL_ADC_MISMATCH,
    CELL_OK,
    CELL_OPEN_WIRE,
    CELL_OUT_OF_RANGE,
    MODULE_AFE_COMM_ERROR,
    MODULE_AFE_SELF_TEST,
    MODULE_OK,
    MODULE_THERMISTOR_FAULT,
)

# The flag bits are defined once, in bms_common.plausibility (the consumers' side of the
# contract); drivers import them from here or there alike.
AFE_CELL_FLAG_DTYPE = np.uint8  # CellMeasurements.cell_flags is uint8[]


class AfeCommunicationError(RuntimeError):
    """The AFE did not answer this sample (daisy-chain break, dead board). The node publishes
    nothing for the sample, so subscribers see the messages stop."""


@dataclass(frozen=True)
class AfeReading:
    """One sample of one module. NaN marks a value the AFE could not measure."""

    stamp_s: float                   # sampling instant on the backend's clock (sim time in simulation)
    cell_voltage_v: np.ndarray       # float, one per cell of the module
    temperature_degc: np.ndarray     # float, one per temperature sensor of the module
    balancing: np.ndarray            # bool, bleed switch state during the sample
    cell_flags: np.ndarray           # uint8 CELL_* bits per cell
    module_flags: int                # MODULE_* bits


@dataclass(frozen=True)
class AfeDiagnostics:
    hardware_id: str
    ok: bool
    message: str
    samples: int
    communication_errors: int


class AfeBackend(ABC):
    """One module's AFE. Implementations must not block longer than a sample period."""

    @property
    @abstractmethod
    def cell_count(self) -> int:
        """Cells this AFE measures."""

    @property
    @abstractmethod
    def sensor_count(self) -> int:
        """Temperature sensors this AFE measures."""

    @abstractmethod
    def read(self) -> AfeReading:
        """Take one sample. Raises AfeCommunicationError when the AFE does not answer."""

    @abstractmethod
    def set_balancing(self, mask: np.ndarray) -> None:
        """Close the bleed switch of each cell where mask is True, open the others."""

    @abstractmethod
    def diagnostics(self) -> AfeDiagnostics:
        """Health summary for /diagnostics."""
