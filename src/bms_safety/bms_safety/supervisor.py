"""The supervisor's core: evaluator plus persisted latches and fault log, for the node to wrap.

The node forwards messages to the ``update_*`` methods, calls :meth:`SafetySupervisor.evaluate`
from its 20 Hz timer and :meth:`SafetySupervisor.reset` from the reset_faults service. Nothing
here waits on another node or raises on bad input; disk errors are reported, not raised.
"""

from __future__ import annotations

from pathlib import Path

from bms_common.pack_config import PackConfig

from .evaluator import SafetyEvaluator
from .limits import LimitTable
from .persistence import SafetyState, format_fault_log, load_state, save_state, state_file
from .results import EvaluationResult, ResetResult

# Log-only changes (warnings, alarms) are written at most this often; latch changes at once.
LOG_SAVE_INTERVAL_S = 1.0


class SafetySupervisor:
    def __init__(self, evaluator: SafetyEvaluator, state_dir: Path | None, now_s: float = 0.0) -> None:
        """``state_dir`` None keeps nothing on disk (tests, replay). ``now_s`` stamps restored latches
        whose time is unknown."""
        self.evaluator = evaluator
        self.update_module = evaluator.update_module
        self.update_pack = evaluator.update_pack
        self.update_contactors = evaluator.update_contactors
        self.update_estimator = evaluator.update_estimator
        self.path = state_file(state_dir) if state_dir is not None else None
        self.notes: list[str] = []  # what happened on start, for the node to log
        self.persist_error: str | None = None  # latest failure to write the state file
        self.state = SafetyState()
        self._dirty = False
        self._last_save_s = float("-inf")
        self.revision = 0  # +1 whenever the fault log or the latched set changes (for /bms/fault_log)
        if self.path is not None:
            self._restore(self.path, now_s)

    @classmethod
    def from_pack(cls, pack: PackConfig, state_dir: Path | None, limits: LimitTable | None = None,
                  now_s: float = 0.0) -> SafetySupervisor:
        return cls(SafetyEvaluator.from_pack(pack, limits), state_dir, now_s)

    def _restore(self, path: Path, now_s: float) -> None:
        self.state, problem = load_state(path)
        if problem is not None:
            # The file cannot prove that no latch was set: latch a fault that a reset clears.
            self.evaluator.restore_latched("STATE_UNREADABLE", -1, -1, now_s)
            self.notes.append(f"{problem}; latched STATE_UNREADABLE until reset")
        for record in self.state.latched:
            if self.evaluator.restore_latched(record.code, record.module_id, record.cell, record.since_s):
                self.notes.append(f"restored latched {record.code} module {record.module_id} cell {record.cell}")
            else:
                self.notes.append(f"dropped persisted latch {record.code} module {record.module_id} cell "
                                  f"{record.cell}: it does not exist in this pack configuration")

    def evaluate(self, now_s: float, wall_s: float | None = None) -> EvaluationResult:
        result = self.evaluator.evaluate(now_s, wall_s)
        for fault in result.raised:
            self.state.record(fault, now_s, self.evaluator.snapshot(fault.module_id))
            self._dirty = True
        if result.raised:
            self.revision += 1
        latch_changed = any(f.latched for f in result.raised)
        if latch_changed or (self._dirty and now_s - self._last_save_s >= LOG_SAVE_INTERVAL_S):
            self.save(now_s)
        return result

    def reset(self, now_s: float) -> ResetResult:
        result = self.evaluator.reset(now_s)
        if result.cleared:
            self.save(now_s)
            self.revision += 1
        return result

    def save(self, now_s: float) -> bool:
        """Write latches and log now (also on shutdown). False, with persist_error set, on failure."""
        self.state.set_latched(self.evaluator.latched_faults())
        if self.path is None:
            self._dirty = False
            return True
        try:
            save_state(self.path, self.state)
        except OSError as exc:
            self.persist_error = f"{self.path}: cannot save fault state ({exc})"
            return False
        self.persist_error = None
        self._dirty = False
        self._last_save_s = now_s
        return True

    def format_log(self) -> str:
        return format_fault_log(self.state)
