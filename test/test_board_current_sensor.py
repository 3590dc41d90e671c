"""The current sensor on a board process, away from the plant (docs/simulation.md, "The current
sensor hosted elsewhere"): sim_host with ``current_sensor:=false`` runs no sensor node, a board with
``current_sensor_backend:=sim`` measures the plant's /sim/pack_truth through the sensor's error
model and takes the sensor's fault; the plant refuses that fault, naming the node that takes it."""

from __future__ import annotations

import pytest

from bms_common import topics
from bms_common.stamps import to_seconds
from bms_common.testing import RosHarness, params, start_node, wait_for
from bms_interfaces.msg import PackMeasurement
from bms_interfaces.srv import InjectFault

# Error model of the demo pack's simulated sensor (bms_slave.sim_config): 0.05 A offset, 0.05 A
# noise (3 sigma), 0.5 % gain; 0.2 V voltage noise. At rest the current is 0 A.
CURRENT_TOLERANCE_A = 0.05 + 3 * 0.05 + 0.01
VOLTAGE_TOLERANCE_V = 3 * 0.2 + 0.01
OFFSET_A = 100.0


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("board_sensor")
    procs = [
        start_node(tmp, "bms_slave", "sim_host", *params(speed=2.0, profile="rest", external_modules="3",
                                                         current_sensor=False, autostart=True)),
        start_node(tmp, "bms_slave", "board", *params(modules="3", afe_backend="sim", current_sensor_backend="sim",
                                                      use_sim_time=True, autostart=True)),
    ]
    ros = RosHarness("board_sensor_test")
    ros.procs = procs
    try:
        ros.collect(PackMeasurement, topics.PACK_MEASUREMENT.name, topics.RELIABLE)
        ros.collect(PackMeasurement, topics.SIM_PACK_TRUTH, topics.RELIABLE)
        wait_for(lambda: len(ros.snapshot(topics.PACK_MEASUREMENT.name)) >= 20, 60,
                 "20 samples of the board's current sensor")
        yield ros
    finally:
        ros.close()
        for proc in procs:
            proc.stop()


def measured_against_truth(ros: RosHarness, since_s: float = 0.0) -> list[tuple[PackMeasurement, PackMeasurement]]:
    """(sample, the plant's truth at the sample's stamp) pairs; every sample has its truth."""
    truth = {to_seconds(t.header.stamp): t for t in ros.snapshot(topics.SIM_PACK_TRUTH)}
    pairs = []
    for m in ros.snapshot(topics.PACK_MEASUREMENT.name):
        stamp = to_seconds(m.header.stamp)
        if stamp >= since_s and stamp in truth:
            pairs.append((m, truth[stamp]))
    return pairs


def test_the_board_measures_the_plant_and_is_the_only_current_sensor(split):
    samples = split.snapshot(topics.PACK_MEASUREMENT.name)
    stamps = [to_seconds(m.header.stamp) for m in samples]
    assert len(set(stamps)) == len(stamps), "two current sensors publish: sim_host hosts one too"
    assert {m.header.frame_id for m in samples} == {"current_sensor"}
    pairs = wait_for(lambda: (p := measured_against_truth(split)) and len(p) >= 10 and p, 20,
                     "samples with the plant's truth at their instants")
    for m, truth in pairs:
        assert abs(m.current_a - truth.current_a) <= CURRENT_TOLERANCE_A, (m, truth)
        assert abs(m.pack_voltage_v - truth.pack_voltage_v) <= VOLTAGE_TOLERANCE_V, (m, truth)
        assert m.hvil_closed == truth.hvil_closed


def test_the_sensor_fault_goes_to_the_board_and_the_plant_names_it(split):
    request = InjectFault.Request(fault="current_sensor_offset", module_id=-1, cell=-1, magnitude=OFFSET_A)
    refused = split.call(InjectFault, "/bms/plant/inject_fault", request)
    assert not refused.success and "current sensor node" in refused.message, refused.message
    answer = split.call(InjectFault, "/bms/current_sensor/inject_fault", request)
    assert answer.success, answer.message
    since = to_seconds(split.snapshot(topics.PACK_MEASUREMENT.name)[-1].header.stamp)
    try:
        shifted = wait_for(lambda: (p := measured_against_truth(split, since + 1e-6)) and len(p) >= 5 and p, 30,
                           "samples after the offset")
        for m, truth in shifted:
            assert abs(m.current_a - truth.current_a - OFFSET_A) <= CURRENT_TOLERANCE_A, (m, truth)
    finally:
        split.call(InjectFault, "/bms/current_sensor/inject_fault",
                   InjectFault.Request(fault="current_sensor_offset", module_id=-1, cell=-1, clear=True))
