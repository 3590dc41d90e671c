"""The plain-Python enums mirror the bms_interfaces constants exactly."""

from __future__ import annotations

import pytest

from bms_master.enums import LimitReason, ModuleStatus, OpenReason, OperatingState, SafetyLevel

msg = pytest.importorskip("bms_interfaces.msg", reason="needs the built interfaces (source env.sh)")


@pytest.mark.parametrize(("enum", "message", "prefix"), [
    (OperatingState, "PackState", "STATE_"),
    (ModuleStatus, "PackState", "MODULE_"),
    (SafetyLevel, "SafetyStatus", "LEVEL_"),
    (LimitReason, "CurrentLimits", "REASON_"),
    (OpenReason, "ContactorState", "OPENED_"),
])
def test_enum_matches_message_constants(enum, message, prefix):
    cls = getattr(msg, message)
    constants = {name[len(prefix):]: getattr(cls, name) for name in dir(cls)
                 if name.startswith(prefix) and name.isupper()}
    assert constants == {member.name: member.value for member in enum}
