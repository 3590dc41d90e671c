"""Records the evaluator hands out: active faults, evaluation results, reset answers."""

from __future__ import annotations

from dataclasses import dataclass

from .codes import FAULT_CODES, Level


@dataclass(frozen=True)
class ActiveFault:
    code: str
    level: Level
    module_id: int  # -1: the whole pack
    cell: int  # cell or temperature-sensor index within the module; -1: not applicable
    value: float  # offending value in the check's unit (NaN if none)
    limit: float  # the limit crossed, same unit
    since_s: float  # when the level was raised (after debounce), supervisor clock
    latched: bool
    description: str

    @property
    def group(self) -> str:
        return FAULT_CODES[self.code].group

    @property
    def key(self) -> str:
        return fault_key(self.code, self.module_id, self.cell)


def fault_key(code: str, module_id: int, cell: int) -> str:
    """Stable name of one fault location, used by reset answers and the persisted log."""
    return f"{code}/{module_id}/{cell}"


@dataclass(frozen=True)
class EvaluationResult:
    now_s: float
    level: Level
    faults: tuple[ActiveFault, ...]  # highest level first
    contactors_allowed: bool  # may close (and stay closed): OK or WARNING
    stay_closed_allowed: bool  # may stay closed if already closed: up to ALARM
    charge_derating: float  # factor 0..1 on the allowed charge current
    discharge_derating: float
    raised: tuple[ActiveFault, ...]  # faults newly raised (or escalated) by this evaluation
    # Inputs never heard from since start ("module 3", "pack measurement"): missing, not stale;
    # closing waits until all have arrived.
    waiting_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class ResetResult:
    success: bool  # no latched fault remains
    reason: str
    cleared: tuple[str, ...]  # fault keys cleared
    refused: tuple[str, ...]  # fault keys still latched because their cause persists
