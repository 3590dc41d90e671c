"""The requirements the kit verifies, by number. The text of each is in docs/standard/; a test
keeps this table and the specification in step (every number here is specified there)."""

from __future__ import annotations

from dataclasses import dataclass

PASSIVE, INTRUSIVE = "passive", "intrusive"


@dataclass(frozen=True)
class Requirement:
    number: str
    title: str
    mode: str  # PASSIVE: observed on a running node; INTRUSIVE: only on a node the kit starts


_TABLE = [
    # Every kind (docs/standard/general.md)
    Requirement("GEN-01", "node name and namespace of its kind", PASSIVE),
    Requirement("GEN-02", "ComponentInfo latched on /bms/components, fields complete", PASSIVE),
    Requirement("GEN-03", "interface version: same MAJOR as the system", PASSIVE),
    Requirement("GEN-04", "publishes the topics of its kind with the contract's types (type hashes)", PASSIVE),
    Requirement("GEN-05", "offered QoS compatible with the contract", PASSIVE),
    Requirement("GEN-06", "subscribes to the inputs of its kind with compatible QoS", PASSIVE),
    Requirement("GEN-07", "rate of each periodic topic", PASSIVE),
    Requirement("GEN-08", "stamps: finite, moving forward, within the time tolerance", PASSIVE),
    Requirement("GEN-09", "lifecycle services offered", PASSIVE),
    Requirement("GEN-10", "starts unconfigured and does not activate itself (managed kinds)", INTRUSIVE),
    Requirement("GEN-11", "publishes data only while active", INTRUSIVE),
    Requirement("GEN-12", "configure/activate/deactivate/cleanup cycles succeed and resume output", INTRUSIVE),
    Requirement("GEN-13", "SIGINT ends the process with exit code 0", INTRUSIVE),
    Requirement("GEN-14", "autostart kinds are active without a lifecycle manager", INTRUSIVE),
    Requirement("GEN-19", "names a peer of another MAJOR interface version in an error", INTRUSIVE),
    # Slave (docs/standard/slave.md)
    Requirement("SLV-01", "module_id and frame_id match the node's module", PASSIVE),
    Requirement("SLV-02", "array lengths of the pack", PASSIVE),
    Requirement("SLV-03", "units and physical ranges (volts, degC)", PASSIVE),
    Requirement("SLV-04", "sequence +1 per sample, never repeated", PASSIVE),
    Requirement("SLV-05", "only defined flag bits", PASSIVE),
    Requirement("SLV-06", "ComponentInfo kind slave with a hardware id", PASSIVE),
    Requirement("SLV-07", "sequence starts at 0 and continues across lifecycle cycles", INTRUSIVE),
    Requirement("SLV-08", "reports the commanded bleed switches", INTRUSIVE),
    Requirement("SLV-09", "ignores balancing commands for other modules", INTRUSIVE),
    Requirement("SLV-10", "opens bleed switches on a malformed command and keeps running", INTRUSIVE),
    Requirement("SLV-11", "opens bleed switches when commands stop (balancing_timeout_s)", INTRUSIVE),
    Requirement("SLV-12", "opens bleed switches on deactivation", INTRUSIVE),
    # Current sensor (docs/standard/current_sensor.md)
    Requirement("CUR-01", "PackMeasurement values in range, NaN only where unmeasured", PASSIVE),
    Requirement("CUR-02", "sequence +1 per sample", PASSIVE),
    # Master (docs/standard/master.md)
    Requirement("MST-01", "PackState enumerations and module_status of the pack", PASSIVE),
    Requirement("MST-02", "CurrentLimits magnitudes and reasons", PASSIVE),
    Requirement("MST-03", "request_state service offered", PASSIVE),
    Requirement("MST-07", "reports malformed input, keeps running and publishing valid outputs", INTRUSIVE),
    # Contactor driver (docs/standard/contactor.md)
    Requirement("CON-01", "ContactorState consistent (open reason, opened_by_safety)", PASSIVE),
    Requirement("CON-02", "contacts open without a fresh SafetyStatus", INTRUSIVE),
    # Estimator (docs/standard/estimator.md)
    Requirement("EST-01", "CellStates arrays of the pack, fractions in 0..1", PASSIVE),
    Requirement("EST-02", "PowerLimits magnitudes per horizon", PASSIVE),
    Requirement("EST-05", "reports malformed input, keeps running and publishing valid outputs", INTRUSIVE),
    # Safety supervisor (docs/standard/safety_supervisor.md)
    Requirement("SUP-01", "SafetyStatus: contactors_allowed follows the level, deratings in 0..1", PASSIVE),
    Requirement("SUP-02", "SafetyStatus sequence +1 per message", PASSIVE),
    Requirement("SUP-03", "reset_faults service offered", PASSIVE),
    Requirement("SUP-07", "malformed input raises its plausibility faults; status goes on", INTRUSIVE),
    # Bridge (docs/standard/bridge.md)
    Requirement("BRG-01", "publishes no contract topic of another kind, offers no contract service", PASSIVE),
    # GUI (docs/standard/gui.md)
    Requirement("GUI-01", "publishes no contract topic of another kind, offers no contract service", PASSIVE),
]

REQUIREMENTS: dict[str, Requirement] = {r.number: r for r in _TABLE}


def title(number: str) -> str:
    return REQUIREMENTS[number].title
