"""Debounce, hysteresis and latching for one check over many slots (cells, sensors, modules).

State is held per (level, slot) in numpy arrays, so a step costs a handful of array operations
whatever the number of cells. Time is always the supplied ``now_s``: the supervisor's clock
(sim time in simulation), never the wall clock, so a run is deterministic and replayable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .codes import Level


@dataclass(frozen=True)
class LevelSpec:
    level: Level
    limit: float  # threshold reported with the fault (NaN for checks without one)
    debounce_s: float
    charge_derating: float
    discharge_derating: float


class DebouncedCheck:
    """Levels (ascending severity) of one fault code, each debounced per slot.

    A level is raised once its raise condition has held for ``debounce_s`` (measured from the
    first evaluation that saw it, so any debounce above zero needs two evaluations). It clears when
    the clear condition holds, which the caller sets with hysteresis. FAULT levels latch: they
    stay active until :meth:`reset` finds their cause gone.
    """

    def __init__(self, code: str, slots: int, levels: Sequence[LevelSpec]) -> None:
        self.code = code
        self.slots = slots
        self.levels = np.array([spec.level for spec in levels], dtype=np.int64)
        self.limits = np.array([spec.limit for spec in levels], dtype=np.float64)
        self.debounce_s = np.array([spec.debounce_s for spec in levels], dtype=np.float64)[:, None]
        self.charge_derating = np.array([spec.charge_derating for spec in levels])
        self.discharge_derating = np.array([spec.discharge_derating for spec in levels])
        self.latching = (self.levels == Level.FAULT)[:, None]
        shape = (len(levels), slots)
        self.pending_since_s = np.full(shape, np.nan)
        # With ``wall_s`` given to step: when each pending level began on the wall clock; it is
        # then raised only once its debounce has passed on both clocks.
        self.pending_since_wall_s = np.full(shape, np.nan)
        self.active = np.zeros(shape, dtype=bool)
        self.since_s = np.full(shape, np.nan)
        self.cause_gone = np.ones(shape, dtype=bool)
        self.values = np.full(slots, np.nan)  # the checked quantity at the last step, per slot
        # Summaries kept by the methods that change the arrays (nothing else writes them):
        self._pending = False  # any pending_since_s not NaN
        self._active = False  # any level active in any slot
        self.none_raised = np.zeros(shape, dtype=bool)  # step's answer when nothing is raised
        self.none_raised.flags.writeable = False

    def step(self, now_s: float, values: np.ndarray, raise_mask: np.ndarray, clear_mask: np.ndarray,
             cause_gone: np.ndarray | None = None, wall_s: float | None = None) -> np.ndarray:
        """Advance to ``now_s``; masks are (levels, slots) or broadcastable. Returns newly raised.
        ``wall_s`` (monotonic): the debounce must also pass on the wall clock, so that in a
        sped-up simulation a process's lag cannot raise what the hardware would not."""
        values_now = np.empty(self.slots)
        values_now[...] = values  # broadcasts and converts as np.broadcast_to(...).astype did
        self.values = values_now
        self.cause_gone[...] = clear_mask if cause_gone is None else cause_gone
        if not self._pending and not self._active and not _any(raise_mask):
            # Steady state: nothing raised, pending or active. Nothing can become pending or
            # active, so the full step below would leave every array as it is.
            return self.none_raised
        raise_mask = np.broadcast_to(raise_mask, self.active.shape)
        clear_mask = np.broadcast_to(clear_mask, self.active.shape)
        waiting = raise_mask & ~self.active
        starting = waiting & np.isnan(self.pending_since_s)
        self.pending_since_s[starting] = now_s
        self.pending_since_s[~waiting] = np.nan
        newly = waiting & (now_s - self.pending_since_s >= self.debounce_s)
        if wall_s is not None:
            self.pending_since_wall_s[starting] = wall_s
            self.pending_since_wall_s[~waiting] = np.nan
            newly &= ~(wall_s - self.pending_since_wall_s < self.debounce_s)
        if newly.any():
            self.active |= newly
            self.since_s[newly] = now_s
            self.pending_since_s[newly] = np.nan
            self.pending_since_wall_s[newly] = np.nan
        self.active &= ~(clear_mask & ~self.latching)
        self._pending = not np.isnan(self.pending_since_s).all()
        self._active = bool(self.active.any())
        return newly

    def any_active(self) -> bool:
        return self._active

    def top_level_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Slots with any active level, and the index of their highest active level."""
        any_active = self.active.any(axis=0)
        slots = np.flatnonzero(any_active)
        top = self.active.shape[0] - 1 - np.argmax(self.active[::-1, slots], axis=0)
        return slots, top

    def deratings(self) -> tuple[float, float]:
        """Lowest charge and discharge factor among the active levels (1.0 when none)."""
        if not self._active:
            return 1.0, 1.0
        on = self.active.any(axis=1)
        return float(self.charge_derating[on].min()), float(self.discharge_derating[on].min())

    def latched_slots(self) -> np.ndarray:
        return np.flatnonzero((self.active & self.latching).any(axis=0))

    def reset(self) -> tuple[np.ndarray, np.ndarray]:
        """Clear latched levels whose cause is gone. Returns (cleared slots, refused slots)."""
        latched = self.active & self.latching
        clearing = latched & self.cause_gone
        self.active &= ~clearing
        self._active = bool(self.active.any())
        refused = latched & ~clearing
        return np.flatnonzero(clearing.any(axis=0)), np.flatnonzero(refused.any(axis=0))

    def restore_latch(self, slot: int, since_s: float) -> bool:
        """Re-activate the latching level of ``slot`` (after a restart). False if none latches."""
        rows = np.flatnonzero(self.latching[:, 0])
        if rows.size == 0 or not 0 <= slot < self.slots:
            return False
        self.active[rows[-1], slot] = True
        self.since_s[rows[-1], slot] = since_s
        self.cause_gone[rows[-1], slot] = False
        self._active = True
        return True


def _any(mask: np.ndarray | bool) -> bool:
    """Whether any element of a mask (array, numpy scalar or bool) is set, without np.any's overhead."""
    return np.count_nonzero(mask) > 0 if isinstance(mask, np.ndarray) else bool(mask)
