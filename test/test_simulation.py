"""The simulated pack over real DDS: module nodes, current sensor, and every injected fault
showing as its physical effect in the published measurements."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters

from bms_common import topics
from bms_common.testing import RosHarness, params, start_node, wait_for
from bms_interfaces.msg import CellMeasurements, ContactorCommand, ContactorState, PackMeasurement
from bms_interfaces.srv import InjectFault

MODULES, CELLS = 4, 12
SPEED = 10.0


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """The demo pack at rest, 10x real time, module nodes and current sensor active."""
    tmp = tmp_path_factory.mktemp("sim")
    host = start_node(tmp, "bms_slave", "sim_host", *params(speed=SPEED, profile="rest"))
    manager = start_node(tmp, "bms_common", "lifecycle_manager",
                         *params(pack="demo"), "-p", "node_names:=[module_*, current_sensor]")
    ros = RosHarness("sim_test")
    try:
        ros.collect(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.RELIABLE)
        ros.collect(PackMeasurement, topics.PACK_MEASUREMENT.name, topics.RELIABLE)
        ros.collect(PackMeasurement, topics.SIM_PACK_TRUTH, topics.RELIABLE)
        ros.collect(ContactorState, topics.SIM_CONTACTOR_FEEDBACK, topics.LATCHED)
        ros.coils = ros.node.create_publisher(ContactorCommand, topics.SIM_CONTACTOR_COILS, topics.RELIABLE)
        wait_for(lambda: len(ros.snapshot(topics.CELL_MEASUREMENTS.name)) >= 4 * MODULES, 60,
                 "samples from every module")
        yield ros
    finally:
        ros.close()
        manager.stop()
        host.stop()


def latest(ros: RosHarness, module_id: int, count: int = 1) -> list[CellMeasurements]:
    samples = [m for m in ros.snapshot(topics.CELL_MEASUREMENTS.name) if m.module_id == module_id]
    return samples[-count:]


def cells_of(ros: RosHarness, module_id: int) -> np.ndarray:
    return np.asarray(latest(ros, module_id)[0].cell_voltages_v, dtype=float)


def temps_of(ros: RosHarness, module_id: int) -> np.ndarray:
    return np.asarray(latest(ros, module_id)[0].temperatures_degc, dtype=float)


def newest(ros: RosHarness, topic: str):
    items = ros.snapshot(topic)
    return items[-1] if items else None


def inject(ros: RosHarness, node: str, fault: str, module_id: int = -1, cell: int = -1,
           magnitude: float = math.nan, clear: bool = False) -> None:
    request = InjectFault.Request(fault=fault, module_id=module_id, cell=cell, magnitude=magnitude, clear=clear)
    response = ros.call(InjectFault, f"/bms/{node}/inject_fault", request)
    assert response.success, response.message


def test_every_module_publishes_per_contract(sim):
    by_module = {}
    for msg in sim.snapshot(topics.CELL_MEASUREMENTS.name):
        by_module.setdefault(msg.module_id, []).append(msg)
    assert sorted(by_module) == list(range(MODULES))
    for module_id, samples in by_module.items():
        last = samples[-1]
        assert last.header.frame_id == f"module_{module_id}"
        assert len(last.cell_voltages_v) == CELLS and len(last.temperatures_degc) == 4
        assert 3.4 < min(last.cell_voltages_v) <= max(last.cell_voltages_v) < 4.2  # NMC near 60 % SOC
        assert 20.0 < min(last.temperatures_degc) < 30.0
        sequences = [m.sequence for m in samples]
        assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
        stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in samples]
        assert np.allclose(np.diff(stamps), 0.1, atol=0.03)  # 10 Hz on the simulation clock


def test_open_contactors_carry_no_current(sim):
    truth = wait_for(lambda: newest(sim, topics.SIM_PACK_TRUTH), 10, "plant truth")
    assert truth.current_a == 0.0
    measured = newest(sim, topics.PACK_MEASUREMENT.name)
    assert abs(measured.current_a) < 1.0  # offset and noise of the current sensor only


def test_balancing_command_closes_bleed_switches(sim):
    from bms_interfaces.msg import BalancingCommand

    pub = sim.node.create_publisher(BalancingCommand, topics.BALANCING_COMMAND.name, topics.RELIABLE)
    command = BalancingCommand(module_id=2, balance=[k in (1, 5) for k in range(CELLS)])
    wait_for(lambda: pub.publish(command) or list(latest(sim, 2)[0].balancing) == command.balance, 20,
             "module 2 to report bleed switches 1 and 5 closed")
    assert not any(latest(sim, 1)[0].balancing)
    pub.publish(BalancingCommand(module_id=2, balance=[False] * CELLS))
    wait_for(lambda: not any(latest(sim, 2)[0].balancing), 20, "bleed switches open again")
    sim.node.destroy_publisher(pub)


def test_balancing_command_of_wrong_length_is_ignored(sim):
    from bms_interfaces.msg import BalancingCommand

    pub = sim.node.create_publisher(BalancingCommand, topics.BALANCING_COMMAND.name, topics.RELIABLE)
    before = latest(sim, 3)[0].sequence
    pub.publish(BalancingCommand(module_id=3, balance=[True] * 5))
    wait_for(lambda: latest(sim, 3)[0].sequence > before + 10, 20, "module 3 to keep sampling")
    assert not any(latest(sim, 3)[0].balancing)
    sim.node.destroy_publisher(pub)


def set_plant_parameter(ros: RosHarness, name: str, value: str) -> None:
    request = SetParameters.Request(parameters=[ParameterMsg(
        name=name, value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value))])
    assert ros.call(SetParameters, "/bms/plant/set_parameters", request).results[0].successful


# (fault, node, module, cell, magnitude, observable effect)
def _open_wire(ros):
    v = cells_of(ros, 0)
    return v[5] < 0.5 and v[6] > 4.9  # the channel above spans two cells, clipped at the AFE range


def _stuck_voltage(ros):
    samples = latest(ros, 0, 30)
    return len(samples) == 30 and len({m.cell_voltages_v[2] for m in samples[-20:]}) == 1 and \
        len({m.cell_voltages_v[3] for m in samples[-20:]}) > 1


def _stuck_temperature(ros):
    samples = latest(ros, 1, 30)
    return len({m.temperatures_degc[1] for m in samples[-20:]}) == 1 and \
        len({m.temperatures_degc[2] for m in samples[-20:]}) > 1


def _garbled(ros):
    jumps = np.abs(np.diff([m.cell_voltages_v[7] for m in latest(ros, 3, 10)]))
    return len(jumps) == 9 and jumps.max() > 0.1


def _silence(ros):
    last = latest(ros, 1)[0].sequence
    later = latest(ros, 2)[0].sequence
    return later > latest(ros, 2, 50)[0].sequence + 30 and latest(ros, 1)[0].sequence == last


FAULT_EFFECTS = [
    ("cell_drift", "plant", 1, 3, 300.0, lambda r: cells_of(r, 1)[3] - np.median(cells_of(r, 1)) > 0.02),
    ("cell_drift", "plant", 1, 8, -300.0, lambda r: np.median(cells_of(r, 1)) - cells_of(r, 1)[8] > 0.02),
    ("overtemperature", "plant", 2, -1, 90.0, lambda r: temps_of(r, 2).min() - temps_of(r, 0).max() > 2.0),
    ("insulation_fault", "plant", -1, -1, 50e3,
     lambda r: newest(r, topics.PACK_MEASUREMENT.name).insulation_resistance_ohm < 1e5),
    ("hvil_open", "plant", -1, -1, math.nan, lambda r: not newest(r, topics.PACK_MEASUREMENT.name).hvil_closed),
    ("welded_main_plus", "plant", -1, -1, math.nan,
     lambda r: (s := newest(r, topics.SIM_CONTACTOR_FEEDBACK)) is not None and s.main_plus_closed
     and not s.main_plus_commanded),
    ("current_sensor_offset", "current_sensor", -1, -1, 25.0,
     lambda r: newest(r, topics.PACK_MEASUREMENT.name).current_a > 20.0),
    ("open_wire", "module_0", 0, 5, math.nan, _open_wire),
    ("stuck_cell_voltage", "module_0", 0, 2, math.nan, _stuck_voltage),
    ("stuck_temperature", "module_1", 1, 1, math.nan, _stuck_temperature),
    ("nan_reading", "module_3", 3, 4, math.nan, lambda r: math.isnan(cells_of(r, 3)[4])),
    ("garbled_reading", "module_3", 3, 7, math.nan, _garbled),
    ("thermistor_open", "module_2", 2, 0, math.nan, lambda r: math.isnan(temps_of(r, 2)[0])),
    ("module_silence", "module_1", 1, -1, math.nan, _silence),
]


@pytest.mark.parametrize("fault,node,module_id,cell,magnitude,effect", FAULT_EFFECTS,
                         ids=[f"{f[0]}{'+' if f[4] > 0 else ''}" for f in FAULT_EFFECTS])
def test_fault_shows_as_physical_effect(sim, fault, node, module_id, cell, magnitude, effect):
    inject(sim, node, fault, module_id, cell, magnitude)
    try:
        wait_for(lambda: effect(sim), 30, f"the physical effect of {fault} on the wire")
    finally:
        inject(sim, node, fault, module_id, cell, clear=True)


def test_dc_link_short_stops_precharge(sim):
    def precharge(short: bool) -> float:
        sim.coils.publish(ContactorCommand())
        wait_for(lambda: newest(sim, topics.PACK_MEASUREMENT.name).dc_link_voltage_v < 20.0, 30,
                 "DC link discharged")
        if short:
            inject(sim, "plant", "dc_link_short", magnitude=1.0)
        sim.coils.publish(ContactorCommand(main_minus=True, precharge=True))
        target = 0.95 * newest(sim, topics.PACK_MEASUREMENT.name).pack_voltage_v
        try:
            reached = wait_for(lambda: (m := newest(sim, topics.PACK_MEASUREMENT.name)).dc_link_voltage_v
                               >= target and m, 5 if short else 30, "precharge to 95 %")
            return reached.dc_link_voltage_v
        except AssertionError:
            return newest(sim, topics.PACK_MEASUREMENT.name).dc_link_voltage_v
        finally:
            sim.coils.publish(ContactorCommand())
            if short:
                inject(sim, "plant", "dc_link_short", clear=True)

    pack_v = newest(sim, topics.PACK_MEASUREMENT.name).pack_voltage_v
    assert precharge(short=False) >= 0.95 * pack_v - 2.0
    assert precharge(short=True) < 0.5 * pack_v


def test_unknown_fault_is_refused_with_a_reason(sim):
    response = sim.call(InjectFault, "/bms/plant/inject_fault", InjectFault.Request(fault="meteor"))
    assert not response.success and "meteor" in response.message
    response = sim.call(InjectFault, "/bms/plant/inject_fault",
                        InjectFault.Request(fault="open_wire", module_id=0, cell=1))
    assert not response.success and "module 0" in response.message


def test_profile_is_settable_at_run_time(sim):
    set_plant_parameter(sim, "profile", "constant")
    set_plant_parameter(sim, "profile", "rest")
