"""Align the pack current to a module's sampling instant.

Slaves sample their cells at instants that differ from the current sensor's. At 100 A a
1.5 mOhm cell shows 150 mV for a whole-sample misalignment, against 2 mV of sensor noise, so
the estimator interpolates the current history to each module's stamp instead of taking the
latest sample.
"""

from __future__ import annotations

from collections import deque

import numpy as np


def align_current(stamps_s: np.ndarray, currents_a: np.ndarray, at_s: float | np.ndarray,
                  max_extrapolation_s: float = 0.2) -> np.ndarray:
    """Current at the instants at_s, linearly interpolated between the samples around them.

    Outside the history the nearest sample is held for up to max_extrapolation_s; further out
    the current is unknown (NaN) rather than guessed. Stamps must be increasing.
    """
    stamps_s = np.asarray(stamps_s, dtype=float)
    at = np.asarray(at_s, dtype=float)
    if stamps_s.size == 0:
        return np.full(at.shape, np.nan)
    current = np.interp(at, stamps_s, np.asarray(currents_a, dtype=float))
    outside = (at < stamps_s[0] - max_extrapolation_s) | (at > stamps_s[-1] + max_extrapolation_s)
    return np.where(outside, np.nan, current)


class CurrentHistory:
    """The last few seconds of (stamp, current) samples, for align_current."""

    def __init__(self, horizon_s: float = 2.0) -> None:
        self.horizon_s = horizon_s
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, stamp_s: float, current_a: float) -> None:
        # A stamp that goes backwards means the clock was reset (sim restart): start over.
        if self._samples and stamp_s <= self._samples[-1][0]:
            self._samples.clear()
        self._samples.append((stamp_s, current_a))
        while self._samples[0][0] < stamp_s - self.horizon_s:
            self._samples.popleft()

    def oldest_s(self) -> float:
        """Stamp of the oldest sample kept, inf when there is none."""
        return self._samples[0][0] if self._samples else np.inf

    def newest_s(self) -> float:
        """Stamp of the newest sample, -inf when there is none."""
        return self._samples[-1][0] if self._samples else -np.inf

    def at(self, stamp_s: float | np.ndarray, max_extrapolation_s: float = 0.2) -> np.ndarray:
        if not self._samples:
            return np.full(np.shape(stamp_s), np.nan)
        stamps, currents = np.array(self._samples).T
        return align_current(stamps, currents, stamp_s, max_extrapolation_s)


def samples_to_use(fresh: np.ndarray, sample_stamps_s: np.ndarray, newest_current_s: float, now_s: float,
                   wait_s: float, min_age_s: float = 0.0) -> np.ndarray:
    """Which modules' new samples a step may use now: those whose current is known at their
    instant (a current sample stamped at or after it has arrived), or that have waited longer
    than ``wait_s`` for it, and are at least ``min_age_s`` old. Cell and pack measurements arrive
    on separate topics in no fixed
    order; a sample taken just after a current step, used before the current sample of that
    instant arrives, would be explained with the current from before the step."""
    # And at least ``min_age_s`` old on the node's own clock: whether a sample taken at a tick
    # arrives before or after that tick is a race; the estimator uses it at the next tick
    # either way (min_age_s half a period), so the outcome does not depend on delivery time.
    covered = (sample_stamps_s <= newest_current_s) & (sample_stamps_s <= now_s - min_age_s)
    return fresh & (covered | (now_s - sample_stamps_s > wait_s))
