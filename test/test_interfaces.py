"""Every bms_interfaces message and service round-trips through rclpy serialization."""

from __future__ import annotations

import math

import pytest
from rclpy.serialization import deserialize_message, serialize_message

import bms_interfaces.msg as msgs
import bms_interfaces.srv as srvs
from bms_common.version import INTERFACE_VERSION, parse_semver

MESSAGES = [
    msgs.ComponentInfo, msgs.CellMeasurements, msgs.PackMeasurement, msgs.PackState,
    msgs.CellStates, msgs.PowerLimits, msgs.CurrentLimits, msgs.Fault, msgs.SafetyStatus,
    msgs.BalancingCommand, msgs.ContactorCommand, msgs.ContactorState,
]
SERVICES = [srvs.RequestState, srvs.ResetFaults, srvs.InjectFault]


def sample_value(type_name: str, index: int):
    """A distinctive, in-range value for a field of the given rosidl type."""
    if type_name.startswith("sequence<"):
        inner = type_name[len("sequence<"):-1].split(",")[0]
        if "/" in inner:
            return []  # sequences of messages: SafetyStatus.faults has its own test below
        return [sample_value(inner, index + k) for k in range(3)]
    if type_name in ("float", "double"):
        return 0.25 * (index + 1)
    if type_name == "boolean":
        return index % 2 == 0
    if type_name in ("uint8", "octet", "uint16", "uint32", "uint64", "int32", "int64"):
        return (index % 5) + 1
    if type_name == "string":
        return f"value_{index}"
    return None  # nested message: filled recursively


def populate(message, depth: int = 0):
    for index, (field, type_name) in enumerate(message.get_fields_and_field_types().items()):
        value = sample_value(type_name, index + depth)
        if value is None:
            populate(getattr(message, field), depth + 1)
        else:
            setattr(message, field, value)
    return message


@pytest.mark.parametrize("msg_type", MESSAGES, ids=lambda t: t.__name__)
def test_message_round_trip(msg_type):
    original = populate(msg_type())
    decoded = deserialize_message(serialize_message(original), msg_type)
    assert decoded == original


def test_safety_status_carries_faults():
    status = msgs.SafetyStatus(level=msgs.SafetyStatus.LEVEL_FAULT, contactors_allowed=False)
    status.faults = [populate(msgs.Fault()), msgs.Fault(code="CELL_OV", module_id=3, cell=7, value=4.31)]
    decoded = deserialize_message(serialize_message(status), msgs.SafetyStatus)
    assert decoded == status
    assert [f.code for f in decoded.faults][1] == "CELL_OV"


def test_nan_survives_the_wire():
    sample = msgs.CellMeasurements(module_id=499, cell_voltages_v=[3.7, math.nan] * 12)
    decoded = deserialize_message(serialize_message(sample), msgs.CellMeasurements)
    assert len(decoded.cell_voltages_v) == 24 and math.isnan(decoded.cell_voltages_v[1])
    assert decoded.module_id == 499


@pytest.mark.parametrize("srv_type", SERVICES, ids=lambda t: t.__name__)
def test_service_round_trip(srv_type):
    for part in (srv_type.Request, srv_type.Response):
        original = populate(part())
        assert deserialize_message(serialize_message(original), part) == original


def test_constants():
    assert parse_semver(INTERFACE_VERSION)[0] >= 1
    status = msgs.SafetyStatus
    assert (status.LEVEL_OK, status.LEVEL_WARNING, status.LEVEL_ALARM, status.LEVEL_FAULT) == (0, 1, 2, 3)
    state = msgs.PackState
    states = {state.STATE_STANDBY, state.STATE_PRECHARGE, state.STATE_DRIVE, state.STATE_CHARGE,
              state.STATE_ERROR}
    assert len(states) == 5
    assert {state.MODULE_MISSING, state.MODULE_OK, state.MODULE_STALE} == {0, 1, 2}
    limits = msgs.CurrentLimits
    reasons = [limits.REASON_CONFIGURED_MAX, limits.REASON_STATE_OF_POWER, limits.REASON_SAFETY_DERATING,
               limits.REASON_NO_ESTIMATOR, limits.REASON_NOT_ALLOWED]
    assert len(set(reasons)) == len(reasons)
    cell = msgs.CellMeasurements
    bits = [cell.CELL_OPEN_WIRE, cell.CELL_ADC_MISMATCH, cell.CELL_OUT_OF_RANGE]
    assert all(b and not b & (b - 1) for b in bits) and len(set(bits)) == 3  # distinct single bits
    contactor = msgs.ContactorState
    assert contactor.OPENED_NONE == 0 and contactor.OPENED_SAFETY_FAULT != contactor.OPENED_SAFETY_SILENT
    info = msgs.ComponentInfo
    kinds = [getattr(info, k) for k in dir(info) if k.startswith("KIND_")]
    assert len(kinds) == len(set(kinds)) == 10
