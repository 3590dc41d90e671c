"""Current alignment to a module's sampling instant."""

from __future__ import annotations

import numpy as np
import pytest

from bms_estimation.current_alignment import CurrentHistory, align_current, samples_to_use


def test_interpolates_between_samples() -> None:
    stamps_s = np.array([10.00, 10.01, 10.02])
    currents_a = np.array([0.0, 100.0, 100.0])
    assert align_current(stamps_s, currents_a, 10.005) == pytest.approx(50.0)
    np.testing.assert_allclose(align_current(stamps_s, currents_a, np.array([10.0, 10.015])), [0.0, 100.0])


def test_holds_briefly_then_reports_unknown() -> None:
    stamps_s = np.array([1.0, 2.0])
    currents_a = np.array([5.0, 7.0])
    assert align_current(stamps_s, currents_a, 2.1, max_extrapolation_s=0.2) == pytest.approx(7.0)
    assert np.isnan(align_current(stamps_s, currents_a, 2.5, max_extrapolation_s=0.2))
    assert np.isnan(align_current(np.array([]), np.array([]), 1.0))


def test_history_keeps_a_horizon_and_restarts_on_a_clock_reset() -> None:
    history = CurrentHistory(horizon_s=1.0)
    for k in range(50):
        history.add(0.1 * k, float(k))
    assert history.at(4.85) == pytest.approx(48.5)
    assert np.isnan(history.at(3.0))  # older than the horizon
    history.add(0.0, -3.0)  # simulation restarted
    assert history.at(0.0) == pytest.approx(-3.0)


def test_a_sample_waits_for_the_current_at_its_instant() -> None:
    history = CurrentHistory()
    history.add(3.00, 0.0)
    fresh = np.array([True, True, False])
    stamps_s = np.array([2.98, 3.05, np.nan])  # module 1 sampled after the newest current sample
    use = samples_to_use(fresh, stamps_s, history.newest_s(), now_s=3.1, wait_s=0.3)
    np.testing.assert_array_equal(use, [True, False, False])
    # The current sample of its instant arrives (a step to 100 A): now it is used, and with it.
    history.add(3.10, 100.0)
    assert samples_to_use(fresh, stamps_s, history.newest_s(), now_s=3.2, wait_s=0.3)[1]
    assert history.at(3.05) == pytest.approx(50.0)


def test_a_sample_whose_current_never_comes_is_used_after_the_wait() -> None:
    fresh, stamps_s = np.array([True]), np.array([5.0])
    assert not samples_to_use(fresh, stamps_s, -np.inf, now_s=5.2, wait_s=0.3)[0]
    assert samples_to_use(fresh, stamps_s, -np.inf, now_s=5.4, wait_s=0.3)[0]


def test_a_sample_ahead_of_the_clock_waits_for_its_tick() -> None:
    fresh, stamps_s = np.array([True]), np.array([2.05])
    assert not samples_to_use(fresh, stamps_s, newest_current_s=2.1, now_s=2.0, wait_s=0.3)[0]
    assert samples_to_use(fresh, stamps_s, newest_current_s=2.1, now_s=2.1, wait_s=0.3)[0]


def test_a_sample_taken_at_a_tick_is_used_at_the_next_one_whatever_its_arrival() -> None:
    fresh, stamps_s = np.array([True, True]), np.array([2.0, 1.98])  # module 0 at the tick, 1 skewed
    at_its_tick = samples_to_use(fresh, stamps_s, newest_current_s=2.0, now_s=2.0, wait_s=1.0, min_age_s=0.05)
    np.testing.assert_array_equal(at_its_tick, [False, False])
    assert samples_to_use(fresh, stamps_s, newest_current_s=2.0, now_s=2.1, wait_s=1.0, min_age_s=0.05).all()
