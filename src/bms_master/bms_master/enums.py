"""Plain-Python mirrors of the bms_interfaces constants the master cores use.

The cores must import without ROS, so the message constants are repeated here as IntEnums; a unit
test (test_enums.py) checks that every value agrees with bms_interfaces.
"""

from __future__ import annotations

from enum import IntEnum


class OperatingState(IntEnum):
    """PackState.STATE_*."""

    STANDBY = 0
    PRECHARGE = 1
    DRIVE = 2
    CHARGE = 3
    ERROR = 4


class ModuleStatus(IntEnum):
    """PackState.MODULE_*."""

    MISSING = 0
    OK = 1
    STALE = 2


class SafetyLevel(IntEnum):
    """SafetyStatus.LEVEL_*."""

    OK = 0
    WARNING = 1
    ALARM = 2
    FAULT = 3


class LimitReason(IntEnum):
    """CurrentLimits.REASON_*."""

    CONFIGURED_MAX = 0
    STATE_OF_POWER = 1
    SAFETY_DERATING = 2
    NO_ESTIMATOR = 3
    NOT_ALLOWED = 4


class OpenReason(IntEnum):
    """ContactorState.OPENED_*."""

    NONE = 0
    SAFETY_FAULT = 1
    SAFETY_SILENT = 2
    NOT_ALLOWED = 3
