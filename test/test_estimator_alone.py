"""The estimator alone, fed through the contract on a simulated clock (issue 19).

- Liveness: 600 simulated seconds as fast as it keeps up (the EventsExecutor stalled in every
  run longer than that at 17-30x; processes on simulated time spin on the classic executor, and
  bms_common.timer_watchdog reports a timer that stops while samples arrive). The 8-hour soak
  is bench/estimator_soak.py.
- An initial SOC per cell from a parameter, published as given.
- A wrong parameter with autostart: the error names it, the process exits 1, no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from bms_common import topics
from bms_common.testing import RosHarness, params, start_node, wait_for
from bms_interfaces.msg import CellStates

sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))
from estimator_feed import EstimatorFeed  # noqa: E402

CELLS = 48
INITIAL_SOC = np.linspace(0.55, 0.65, CELLS)


@pytest.fixture
def feed():
    feed = EstimatorFeed()
    yield feed
    feed.close()


def test_outputs_keep_coming_under_a_fast_simulated_clock(tmp_path, feed) -> None:
    soc = "[" + ",".join(f"{v:.4f}" for v in INITIAL_SOC) + "]"
    estimator = start_node(tmp_path, "bms_estimation", "estimator",
                           *params(use_sim_time=True, autostart=True, state_dir="none", initial_soc=soc,
                                   initial_soc_std=0.01))
    ros = RosHarness("estimator_alone_test")
    try:
        ros.collect(CellStates, topics.CELL_STATES.name, topics.RELIABLE)
        wait_for(lambda: ros.node.count_publishers(f"/bms/{topics.CELL_STATES.name}") > 0, 60,
                 "the estimator's CellStates publisher")
        feed.wait_for_estimator()
        result = feed.run(600.0, max_lead_s=1.0, stall_wall_s=60.0)  # a stall is for good; load only delays
        assert not result.stalls, f"PowerLimits stopped while the clock went on: {result.stalls}"
        assert result.newest_output_s >= 590.0, result
        log = estimator.output()
        assert "has not run for" not in log, log[-2000:]
        first = wait_for(lambda: ros.snapshot(topics.CELL_STATES.name), 30, "CellStates")[0]
        # Published as given from the start (no first-voltage wait), moved little since.
        stamp_s = first.header.stamp.sec + first.header.stamp.nanosec * 1e-9
        np.testing.assert_allclose(first.soc, INITIAL_SOC, atol=0.03, err_msg=f"CellStates stamped {stamp_s:.1f} s")
    finally:
        ros.close()
        estimator.stop()


def test_a_wrong_parameter_is_a_configuration_error_not_a_traceback(tmp_path) -> None:
    estimator = start_node(tmp_path, "bms_estimation", "estimator",
                           *params(autostart=True, state_dir="none", backend="numba"))
    wait_for(lambda: not estimator.alive(), 60, "the estimator to exit")
    assert estimator.stop() == 1
    output = estimator.output()
    assert "parameter backend must be one of numpy, compiled" in output, output
    assert "Traceback" not in output, output
