"""Fault levels and the table of fault codes with their /diagnostics group.

The code table is data: docs/safety.md lists the same codes, and every check of the evaluator
names its code here, so a code cannot be raised without a group and a meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Level(IntEnum):
    """Severity of a fault; numerically equal to SafetyStatus.LEVEL_*."""

    OK = 0
    WARNING = 1  # MOL: derate, contactors may close
    ALARM = 2  # RSL: request current reduction, stay closed, do not close again
    FAULT = 3  # MSL: safe state, contactors open, latched until reset


LEVEL_BY_NAME = {level.name: level for level in Level}

GROUPS = (
    "voltage",
    "temperature",
    "current",
    "insulation",
    "plausibility",
    "communication",
    "contactor",
    "estimator",
)


@dataclass(frozen=True)
class FaultCode:
    code: str
    group: str
    # Where module_id/cell point: "cell" (cell index), "sensor" (temperature sensor index),
    # "module" (module only) or "pack" (neither).
    slot: str
    meaning: str
    # Groups whose inputs this fault makes unreliable: /diagnostics reports them STALE.
    stales_groups: tuple[str, ...] = ()


_TABLE = (
    FaultCode("CELL_OV", "voltage", "cell", "cell voltage above limit"),
    FaultCode("CELL_UV", "voltage", "cell", "cell voltage below limit"),
    FaultCode("CELL_SPREAD", "voltage", "pack", "max - min cell voltage above limit"),
    FaultCode("TEMP_HIGH_CHARGE", "temperature", "sensor", "temperature above charge window"),
    FaultCode("TEMP_LOW_CHARGE", "temperature", "sensor", "temperature below charge window"),
    FaultCode("TEMP_HIGH_DISCHARGE", "temperature", "sensor", "temperature above discharge window"),
    FaultCode("TEMP_LOW_DISCHARGE", "temperature", "sensor", "temperature below discharge window"),
    FaultCode("OVERCURRENT_CHARGE", "current", "pack", "charge current above limit"),
    FaultCode("OVERCURRENT_DISCHARGE", "current", "pack", "discharge current above limit"),
    FaultCode("INSULATION_LOW", "insulation", "pack", "insulation resistance below limit"),
    FaultCode("HVIL_OPEN", "insulation", "pack", "high-voltage interlock loop open"),
    FaultCode("PLAUS_VOLTAGE_NAN", "plausibility", "cell", "cell voltage not measured (NaN)"),
    FaultCode("PLAUS_VOLTAGE_RANGE", "plausibility", "cell", "cell voltage outside physical range"),
    FaultCode("PLAUS_VOLTAGE_STUCK", "plausibility", "cell", "cell voltage reading frozen"),
    FaultCode("PLAUS_TEMP_NAN", "plausibility", "sensor", "temperature not measured (NaN)"),
    FaultCode("PLAUS_TEMP_RANGE", "plausibility", "sensor", "temperature outside physical range"),
    FaultCode("PLAUS_TEMP_STUCK", "plausibility", "sensor", "temperature reading frozen"),
    FaultCode("PLAUS_CURRENT", "plausibility", "pack", "pack current NaN or outside physical range"),
    FaultCode("PLAUS_PACK_VOLTAGE", "plausibility", "pack", "pack voltage disagrees with sum of cells"),
    FaultCode("PLAUS_MALFORMED", "plausibility", "module", "module message with wrong array lengths"),
    FaultCode("PLAUS_SEQUENCE", "plausibility", "module", "repeated or out-of-order sequence number"),
    FaultCode("PLAUS_UNKNOWN_MODULE", "plausibility", "pack", "message from a module id the pack lacks"),
    FaultCode("PLAUS_STAMP", "plausibility", "module", "sample stamped outside the tolerance of the clock"),
    FaultCode("PLAUS_PACK_STAMP", "plausibility", "pack",
              "current sensor sample stamped outside the tolerance of the clock"),
    FaultCode("PLAUS_OPEN_WIRE", "plausibility", "cell", "AFE flags an open sense wire"),
    FaultCode("PLAUS_AFE_DIAG", "plausibility", "module", "AFE self test, ADC comparison or thermistor failed"),
    FaultCode("PLAUS_AFE_COMM", "plausibility", "module", "AFE communication errors during the sample"),
    FaultCode("STALE_MODULE", "communication", "module", "no fresh cell measurements from module",
              ("voltage", "temperature")),
    FaultCode("STALE_CURRENT_SENSOR", "communication", "pack", "no fresh pack measurement",
              ("current", "insulation")),
    FaultCode("CONTACTOR_MISMATCH", "contactor", "pack", "contactor feedback disagrees (welded?)"),
    FaultCode("ESTIMATOR_LOSS", "estimator", "pack", "no fresh estimator output", ("estimator",)),
    FaultCode("STATE_UNREADABLE", "plausibility", "pack",
              "persisted fault state unreadable: a latch may have been lost"),
)

FAULT_CODES: dict[str, FaultCode] = {entry.code: entry for entry in _TABLE}
