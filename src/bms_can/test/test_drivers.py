"""The CAN drivers against the board emulator on a real python-can bus (Unix sockets): values
equal the simulation's within the encoding resolution, and every wire fault gives its documented
NaN or flag without an exception escaping. ``read(now_s)`` looks at a later instant instead of
sleeping through a timeout."""

from __future__ import annotations

import dataclasses
import math
import time

import can
import numpy as np
import pytest

from bms_can import contactor_driver
from bms_can.afe_driver import CanAfe, PackPages, make_afe
from bms_can.channel import CAN_ERR_BUSOFF, CanChannel
from bms_can.contactor_driver import CanContactors, make_contactors
from bms_can.emulator import BoardEmulator
from bms_can.pack_sensor_driver import CanPackSensor, CurrentSensorSilent
from bms_common.pack_config import ConfigError, load_pack_config
from bms_common.testing import wait_for
from bms_master.state_machine import ContactorSet
from bms_slave.afe import (
    CELL_ADC_MISMATCH,
    CELL_OUT_OF_RANGE,
    MODULE_AFE_COMM_ERROR,
    MODULE_THERMISTOR_FAULT,
    AfeCommunicationError,
)


@pytest.fixture
def rig(can_config):
    pack = load_pack_config("demo")
    emulator = BoardEmulator(pack, can_config, profile="rest")
    channel = CanChannel(can_config)
    pages = PackPages(pack, can_config, channel)
    yield emulator, channel, pages
    channel.close()
    emulator.close()


def exchange(emulator: BoardEmulator, channel: CanChannel, samples: int = 1) -> None:
    """Let the emulator send ``samples`` sample periods and wait until the driver has them all."""
    for _ in range(samples):
        sent = emulator.channel.stats.sent
        before = channel.stats.processed
        emulator.plant.step(emulator.step_s)
        emulator.send_samples()
        wanted = before + emulator.channel.stats.sent - sent
        # processed, not received: the last frame's handlers have run, not only its arrival counted
        wait_for(lambda wanted=wanted: channel.stats.processed >= wanted, 10, "the emulator's frames at the driver")


def test_the_afe_reads_what_the_emulated_board_measured(rig) -> None:
    emulator, channel, pages = rig
    exchange(emulator, channel)
    for module in range(4):
        reading = CanAfe(pages, module).read()
        sent = emulator.last_readings[module]
        assert np.allclose(reading.cell_voltage_v, sent.cell_voltage_v, atol=0.0005 + 1e-9)  # 1 mV steps
        assert np.allclose(reading.temperature_degc, sent.temperature_degc, atol=0.5 + 1e-9)  # 1 degC steps
        assert reading.module_flags == 0 and not reading.cell_flags.any()
        assert reading.stamp_s <= time.time()


def test_a_missing_page_is_nan_with_a_flag_and_the_stamp_of_the_oldest_page(rig) -> None:
    emulator, channel, pages = rig
    protocol = emulator.protocol
    for page in (3, 4):  # module 1 is pages 3, 4, 5: page 5 never arrives
        emulator.channel.send(protocol.cell_voltages(page, [3.6, 3.7, 3.8, 3.9], [1, 1, 1, 1]))
    emulator.channel.send(protocol.cell_temperatures(0, [20] * 6, [1] * 6))
    emulator.channel.send(protocol.board_status(1, 1, 0, 0, 0))
    wait_for(lambda: channel.stats.processed >= 4, 10, "the pages")
    reading = CanAfe(pages, 1).read()
    assert np.allclose(reading.cell_voltage_v[:8], [3.6, 3.7, 3.8, 3.9] * 2)
    assert np.isnan(reading.cell_voltage_v[8:]).all()
    assert reading.module_flags & MODULE_AFE_COMM_ERROR
    assert reading.stamp_s == pytest.approx(min(pages.voltage_stamp_s[3:5]))


def test_a_board_that_stops_sending_is_silent(rig) -> None:
    emulator, channel, pages = rig
    afe = CanAfe(pages, 2)
    emulator.faults.command("fault silence 2")
    exchange(emulator, channel)
    with pytest.raises(AfeCommunicationError, match="module 2: no cell voltage page"):
        afe.read()
    assert CanAfe(pages, 1).read().module_flags == 0
    assert not afe.diagnostics().ok


def test_invalid_flags_and_raw_extremes_are_nan_with_flags(rig) -> None:
    emulator, channel, pages = rig
    emulator.faults.command("fault invalid 2")
    emulator.faults.command("fault raw_extreme 1")
    exchange(emulator, channel)
    invalid = CanAfe(pages, 2).read()
    assert np.isnan(invalid.cell_voltage_v).all() and np.isnan(invalid.temperature_degc).all()
    assert (invalid.cell_flags == CELL_ADC_MISMATCH).all()
    assert invalid.module_flags & MODULE_THERMISTOR_FAULT
    extreme = CanAfe(pages, 1).read()
    assert math.isnan(extreme.cell_voltage_v[0]) and not np.isnan(extreme.cell_voltage_v[1:]).any()
    assert extreme.cell_flags[0] == CELL_OUT_OF_RANGE
    assert math.isnan(extreme.temperature_degc[0]) and extreme.module_flags & MODULE_THERMISTOR_FAULT


@pytest.mark.parametrize("fault", ["frozen_counter", "skip_counter", "bad_crc"])
def test_counter_and_crc_errors_are_tolerated_then_flagged(rig, fault: str) -> None:
    emulator, channel, pages = rig
    afe = CanAfe(pages, 0)
    exchange(emulator, channel)
    emulator.faults.command(f"fault {fault} 0")
    exchange(emulator, channel, 2)  # two errors in a row: tolerated (max_consecutive_errors 2)
    assert afe.read().module_flags == 0
    exchange(emulator, channel, 2)
    assert afe.read().module_flags & MODULE_AFE_COMM_ERROR
    assert afe.diagnostics().communication_errors >= 3
    emulator.faults.clear()
    exchange(emulator, channel, 2)
    assert afe.read().module_flags == 0


def test_malformed_frames_and_error_bursts_are_counted_and_survived(rig) -> None:
    emulator, channel, pages = rig
    for command in ("fault wrong_length 3", "fault unknown_page 0", "fault error_burst bus"):
        emulator.faults.command(command)
    exchange(emulator, channel)
    assert channel.stats.malformed >= 5  # module 3's 3 voltage pages, its temperature page, its status
    assert pages.unknown_pages >= 2 and channel.stats.error_frames >= 20
    reading = CanAfe(pages, 1).read()
    assert reading.module_flags == MODULE_AFE_COMM_ERROR and not np.isnan(reading.cell_voltage_v).any()
    with pytest.raises(AfeCommunicationError):
        CanAfe(pages, 3).read()


def test_pack_sensor_fields_come_from_their_sources(rig, can_config) -> None:
    emulator, channel, _ = rig
    sensor = CanPackSensor(can_config, channel)
    exchange(emulator, channel)
    reading, sent = sensor.read(), emulator.last_pack_reading
    assert reading.current_a == pytest.approx(sent.current_a, abs=0.0005 + 1e-9)
    assert reading.pack_voltage_v == pytest.approx(sent.pack_voltage_v, abs=0.0005 + 1e-9)
    assert reading.dc_link_voltage_v == pytest.approx(sent.dc_link_voltage_v, abs=0.0005 + 1e-9)
    assert reading.insulation_resistance_ohm == pytest.approx(sent.insulation_resistance_ohm, abs=500.0)
    assert reading.hvil_closed
    emulator.faults.command("fault invalid ivt")
    exchange(emulator, channel)
    reading = sensor.read()
    assert math.isnan(reading.current_a) and math.isnan(reading.pack_voltage_v) and reading.hvil_closed
    with pytest.raises(CurrentSensorSilent):
        sensor.read(time.time() + can_config.timeouts_s["ivt"] + 0.01)


def test_a_lem_cab500_can_be_the_current_source(rig, can_config) -> None:
    emulator, channel, _ = rig
    sensor = CanPackSensor(dataclasses.replace(can_config, sources={**can_config.sources, "current": "lem_cab500"}),
                           channel)
    exchange(emulator, channel)
    assert sensor.read().current_a == pytest.approx(emulator.last_pack_reading.current_a, abs=0.0005 + 1e-9)
    emulator.channel.send(emulator.protocol.lem_cab500(5.0, error=True))
    wait_for(lambda: math.isnan(sensor.read().current_a), 10, "a failing LEM sensor's current to be NaN")


def test_hvil_is_open_when_the_hv_board_falls_silent(rig, can_config) -> None:
    emulator, channel, _ = rig
    # Feedback times out before the current does (both long): a later read sees HVIL stale alone.
    timeouts = {**can_config.timeouts_s, "contactor_feedback": 2.0}
    sensor = CanPackSensor(dataclasses.replace(can_config, timeouts_s=timeouts), channel)
    exchange(emulator, channel)
    assert sensor.read().hvil_closed
    emulator.faults.command("fault silence hv")
    exchange(emulator, channel)
    later = max(sensor._feedback_stamp + 2.0, sensor._ivt_stamp[0]) + 0.01
    reading = sensor.read(later)  # the current is still fresh: a reading, with HVIL open
    assert not reading.hvil_closed and not math.isnan(reading.current_a)


def test_contactors_command_the_hv_board_and_read_its_auxiliary_contacts(rig, can_config) -> None:
    emulator, channel, _ = rig
    contactors = CanContactors(can_config, channel)
    assert contactors.read() is None  # no feedback yet
    contactors.write(ContactorSet(main_plus=False, main_minus=True, precharge=True))
    wait_for(lambda: emulator.plant.hv.commanded.precharge, 10, "the HV board to energise precharge")
    exchange(emulator, channel)
    assert contactors.read() == ContactorSet(main_plus=False, main_minus=True, precharge=True)
    emulator.faults.command("fault silence hv")
    exchange(emulator, channel)
    stale = time.time() + can_config.timeouts_s["contactor_feedback"] + 0.01
    assert contactors.read(stale) == ContactorSet()  # stale feedback reads open: a mismatch to closed coils
    emulator.step(stale + can_config.timeouts_s["contactor_command"])
    assert emulator.plant.hv.commanded == type(emulator.plant.hv.commanded)()  # its watchdog released all


def test_balancing_reaches_the_board_and_comes_back_in_its_status(rig) -> None:
    emulator, channel, pages = rig
    afe = CanAfe(pages, 2)
    mask = np.zeros(12, dtype=bool)
    mask[[1, 7]] = True
    afe.set_balancing(mask)
    wait_for(lambda: emulator.plant.balancing_mask[24:36].any(), 10, "the board to close bleed switches")
    assert (emulator.plant.balancing_mask[24:36] == mask).all()
    exchange(emulator, channel)
    assert (afe.read().balancing == mask).all()


def test_the_emulated_load_obeys_the_limits_frame(rig, can_config) -> None:
    emulator, channel, _ = rig
    channel.send(channel.protocol.limits(12.5, 40.0, 201.6, 0.0))
    wait_for(lambda: emulator.plant.discharge_limit_a == pytest.approx(40.0), 10, "the load to take the limits")
    assert emulator.plant.charge_limit_a == pytest.approx(12.5)
    emulator.step(time.time() + can_config.timeouts_s["limits"] + 0.01)  # no fresh limits: nothing allowed
    assert emulator.plant.charge_limit_a == 0.0 and emulator.plant.discharge_limit_a == 0.0


def test_insulation_is_nan_when_its_alive_bit_stops_toggling(rig, can_config) -> None:
    emulator, channel, _ = rig
    sensor = CanPackSensor(can_config, channel)
    protocol = emulator.protocol
    for n in range(2):
        emulator.channel.send(protocol.ivt_result(0, n, 1.0))
    emulator.channel.send(protocol.insulation_info(4.2e6, True, False, False, alive=True))
    wait_for(lambda: channel.stats.processed >= 3, 10, "the frames")
    assert sensor.read().insulation_resistance_ohm == pytest.approx(4.2e6)
    for _ in range(can_config.max_consecutive_errors + 1):
        emulator.channel.send(protocol.insulation_info(4.2e6, True, False, False, alive=True))
    wait_for(lambda: math.isnan(sensor.read().insulation_resistance_ohm), 10, "a frozen alive bit to void it")


def test_a_command_nobody_acknowledges_is_counted_not_raised(can_config) -> None:
    lone = CanChannel(can_config)  # the only node on its bus: no acknowledge, as with a full queue
    try:
        contactors = CanContactors(can_config, lone)
        contactors.write(ContactorSet(main_minus=True))
        assert not contactors.send_command()
        assert lone.stats.send_errors == 2 and "no other node acknowledged" in lone.stats.last_error
    finally:
        lone.close()


def test_a_handler_that_raises_is_counted_and_receiving_goes_on(rig, caplog) -> None:
    emulator, channel, pages = rig

    def broken(frame, stamp_s) -> None:
        raise RuntimeError("a handler's bug")

    channel.subscribe("limits", broken)
    emulator.channel.send(emulator.protocol.limits(1.0, 2.0, 200.0, 0.0))
    wait_for(lambda: channel.stats.dispatch_errors == 1, 10, "the handler's error to be counted")
    assert "RuntimeError: a handler's bug" in channel.stats.last_error
    assert "frame 0x351 lost" in caplog.text
    exchange(emulator, channel)  # the receive thread lives on: the boards' frames still arrive
    assert CanAfe(pages, 0).read().module_flags == 0


def test_bus_off_and_failed_receives_are_counted_and_survived(rig, monkeypatch) -> None:
    emulator, channel, pages = rig
    emulator.channel.send(can.Message(arbitration_id=CAN_ERR_BUSOFF, is_error_frame=True, data=bytes(8)))
    wait_for(lambda: channel.stats.bus_off == 1, 10, "bus-off to be counted")
    assert channel.stats.error_frames == 1 and "bus-off" in channel.stats.last_error
    receive, failed = channel.bus.recv, []

    def failing_once(timeout=None):
        if not failed:
            failed.append(True)
            raise can.CanOperationError("the controller stopped")
        return receive(timeout)

    monkeypatch.setattr(channel.bus, "recv", failing_once)
    wait_for(lambda: channel.stats.receive_errors == 1, 10, "the failed receive to be counted")
    exchange(emulator, channel)  # retried: frames arrive again
    assert CanAfe(pages, 0).read().module_flags == 0


@pytest.mark.parametrize("fault", ["frozen_counter", "skip_counter", "wrong_length"])
def test_ivt_counter_and_length_errors_are_tolerated_then_nan(rig, can_config, fault: str) -> None:
    emulator, channel, _ = rig
    sensor = CanPackSensor(can_config, channel)
    exchange(emulator, channel)
    emulator.faults.command(f"fault {fault} ivt")
    exchange(emulator, channel, 2)  # two errors in a row: tolerated (max_consecutive_errors 2)
    reading = sensor.read()
    assert not math.isnan(reading.current_a) and not math.isnan(reading.pack_voltage_v)
    exchange(emulator, channel, 2)
    reading = sensor.read()
    assert math.isnan(reading.current_a) and math.isnan(reading.pack_voltage_v)
    assert math.isnan(reading.dc_link_voltage_v)
    emulator.faults.clear()
    exchange(emulator, channel, 2)
    assert sensor.read().current_a == pytest.approx(emulator.last_pack_reading.current_a, abs=0.0005 + 1e-9)


@pytest.mark.parametrize("fault", ["frozen_counter", "skip_counter", "bad_crc"])
def test_contactor_feedback_counter_and_crc_errors_open_hvil_and_feedback(rig, can_config, fault: str) -> None:
    emulator, channel, _ = rig
    sensor = CanPackSensor(can_config, channel)
    contactors = CanContactors(can_config, channel)
    closed = ContactorSet(main_plus=False, main_minus=True, precharge=False)
    contactors.write(closed)
    wait_for(lambda: emulator.plant.hv.commanded.main_minus, 10, "the HV board to energise main-")
    exchange(emulator, channel)
    assert sensor.read().hvil_closed and contactors.read() == closed
    emulator.faults.command(f"fault {fault} hv")
    exchange(emulator, channel, 2)  # tolerated
    assert sensor.read().hvil_closed and contactors.read() == closed
    exchange(emulator, channel, 2)
    assert not sensor.read().hvil_closed
    assert contactors.read() == ContactorSet()  # reads open: a mismatch to the closed coil
    emulator.faults.clear()
    exchange(emulator, channel, 2)
    assert sensor.read().hvil_closed and contactors.read() == closed


class _Node:
    """What make_contactors uses of a node: timers."""

    def __init__(self) -> None:
        self.timers: list[tuple[float, object]] = []

    def create_timer(self, period_s: float, callback) -> tuple[float, object]:
        self.timers.append((period_s, callback))
        return self.timers[-1]

    def destroy_timer(self, timer) -> None:
        self.timers.remove(timer)


def test_configuring_the_contactors_again_leaves_one_timer_and_one_subscription(rig, can_config,
                                                                               monkeypatch) -> None:
    emulator, channel, _ = rig
    monkeypatch.setattr(contactor_driver, "load_can_config", lambda: can_config)
    monkeypatch.setattr(contactor_driver, "shared_channel", lambda config: channel)
    node = _Node()
    first = make_contactors(node)  # configure
    second = make_contactors(node)  # cleanup, configure again
    assert node.timers == [(contactor_driver.COMMAND_PERIOD_S, second.send_command)]
    assert channel._handlers["contactor_feedback"] == [second._on_feedback]
    assert channel._error_handlers["contactor_feedback"] == [second._on_feedback_error]
    exchange(emulator, channel)
    assert second.read() is not None and first._feedback is None
    second.close()
    assert node.timers == [] and channel._handlers["contactor_feedback"] == []


def _pack(**changes):
    return dataclasses.replace(load_pack_config("demo"), **changes)


@pytest.mark.parametrize(("pack", "message"), [
    (_pack(modules=19), "has 228 cells, the CAN boards' layout carries at most 216"),
    (_pack(modules=10, cells_per_module=4, temperature_sensors=((0,),) * 19),
     "has 190 temperature sensors, the CAN boards' layout carries at most 180"),
    (_pack(modules=33, cells_per_module=4, temperature_sensors=((0,),)), "has 33 modules, .* at most 32"),
    (_pack(modules=2, cells_per_module=25), "has 25 cells per module, .* at most 24"),
])
def test_a_pack_the_page_layout_cannot_carry_is_refused_at_start(can_config, pack, message: str) -> None:
    with pytest.raises(ConfigError, match=f"pack demo {message}"):
        make_afe(pack, 0)
    with pytest.raises(ConfigError, match=f"pack demo {message}"):
        BoardEmulator(pack, can_config)
