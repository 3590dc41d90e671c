"""One /diagnostics status per check group, in diagnostic_msgs' OK/WARN/ERROR/STALE levels."""

from __future__ import annotations

from dataclasses import dataclass

from .codes import FAULT_CODES, GROUPS, Level
from .results import ActiveFault, EvaluationResult

# diagnostic_msgs/DiagnosticStatus level bytes
DIAG_OK, DIAG_WARN, DIAG_ERROR, DIAG_STALE = 0, 1, 2, 3
MAX_FAULTS_NAMED = 3  # a status message names this many faults, then counts the rest


@dataclass(frozen=True)
class GroupStatus:
    group: str  # e.g. "voltage"; the node names the status "bms_safety: voltage"
    level: int  # DIAG_*
    message: str
    faults: tuple[ActiveFault, ...]


def group_summary(result: EvaluationResult) -> list[GroupStatus]:
    """ERROR for an ALARM or FAULT in the group, STALE when a stale input leaves the group blind,
    WARN for a WARNING, else OK. Every group is listed, so a monitor sees each check's verdict."""
    stale = {g for f in result.faults for g in FAULT_CODES[f.code].stales_groups}
    statuses = []
    for group in GROUPS:
        faults = tuple(f for f in result.faults if f.group == group)
        worst = max((f.level for f in faults), default=Level.OK)
        if worst >= Level.ALARM:
            level = DIAG_ERROR
        elif group in stale:
            level = DIAG_STALE
        elif worst == Level.WARNING:
            level = DIAG_WARN
        else:
            level = DIAG_OK
        statuses.append(GroupStatus(group, level, _message(faults, group in stale), faults))
    return statuses


def _message(faults: tuple[ActiveFault, ...], stale: bool) -> str:
    if not faults:
        return "inputs stale" if stale else "OK"
    named = "; ".join(f"{f.level.name} {f.description}" for f in faults[:MAX_FAULTS_NAMED])
    more = f" (+{len(faults) - MAX_FAULTS_NAMED} more)" if len(faults) > MAX_FAULTS_NAMED else ""
    return named + more
