"""The wire format bit for bit: vectors derived by hand from the layout description (docs/can.md),
not from the encoder, so an encoder that drifts from the layout fails here."""

from __future__ import annotations

from pathlib import Path

import can
import pytest

from bms_can.config import parse_can_config, require_sources
from bms_can.protocol import CounterCheck, FrameError, Protocol, crc8_sae_j1850
from bms_common.pack_config import ConfigError

BIG = parse_can_config({}, Path("big.yaml"))
LITTLE = parse_can_config({"ivt_byte_order": "little"}, Path("little.yaml"))


def test_cell_voltage_page_layout() -> None:
    # Page 1: cells 3.700, 4.200, 0.001, 8.191 V, valid bits 1, 0, 1, 1.
    # byte 0 = page 0x01; byte 1 = valid bits 7..4 (1011) + top 4 of 3700 = 0 1110 0111 0100 -> 0111
    # byte 2 = next 8 of 3700 (00111010); byte 3 = last bit of 3700 (0) + top 7 of 4200 (1000001)
    # byte 4 = last 6 of 4200 (101000) + top 2 of 1 (00); byte 5 = next 8 of 1 (00000000)
    # byte 6 = last 3 of 1 (001) + top 5 of 8191 (11111); byte 7 = last 8 of 8191 (11111111)
    frame = Protocol(BIG).cell_voltages(1, [3.7, 4.2, 0.001, 8.191], [True, False, True, True])
    assert frame.arbitration_id == 0x270
    assert bytes(frame.data) == bytes([0x01, 0xB7, 0x3A, 0x41, 0xA0, 0x00, 0x3F, 0xFF])
    decoded = Protocol(BIG).decode(frame)
    assert decoded.index == 1 and decoded.signals["Cell1_Valid"] == 0
    assert decoded.signals["Cell0_Voltage"] == pytest.approx(3.7)


def test_temperature_page_layout() -> None:
    # Page 2: 25, -10, 0, 127, -128, 1 degC; valid 1 1 1 1 0 1 in byte 1 bits 7..2 -> 0xF4.
    frame = Protocol(BIG).cell_temperatures(2, [25, -10, 0, 127, -128, 1], [1, 1, 1, 1, 0, 1])
    assert frame.arbitration_id == 0x280
    assert bytes(frame.data) == bytes([0x02, 0xF4, 0x19, 0xF6, 0x00, 0x7F, 0x80, 0x01])


def test_ivt_current_in_either_byte_order() -> None:
    # -12.345 A = -12345 mA = 0xFFFFCFC7; result id 0; counter 5 in the low nibble of byte 1.
    big = Protocol(BIG).ivt_result(0, 5, -12.345)
    assert big.arbitration_id == 0x521
    assert bytes(big.data) == bytes([0x00, 0x05, 0xFF, 0xFF, 0xCF, 0xC7])
    little = Protocol(LITTLE).ivt_result(0, 5, -12.345)
    assert bytes(little.data) == bytes([0x00, 0x05, 0xC7, 0xCF, 0xFF, 0xFF])
    assert Protocol(LITTLE).decode(little).signals["Value"] == pytest.approx(-12.345)
    # U1 (result 1) 400.000 V = 400000 mV = 0x00061A80, result error bit (byte 1 bit 5) set.
    u1 = Protocol(BIG).ivt_result(1, 15, 400.0, error=True)
    assert u1.arbitration_id == 0x522
    assert bytes(u1.data) == bytes([0x01, 0x2F, 0x00, 0x06, 0x1A, 0x80])


def test_lem_cab500_current_is_offset_binary() -> None:
    # -12.345 A = -12345 mA; 0x80000000 - 12345 = 0x7FFFCFC7, big-endian in bytes 0..3.
    frame = Protocol(BIG).lem_cab500(-12.345)
    assert frame.arbitration_id == 0x3C2
    assert bytes(frame.data) == bytes([0x7F, 0xFF, 0xCF, 0xC7, 0x00, 0x00, 0x00, 0x00])
    assert Protocol(BIG).decode(frame).signals["Current"] == pytest.approx(-12.345)


def test_crc8_sae_j1850_check_value_and_extension_frames() -> None:
    assert crc8_sae_j1850(b"123456789") == 0x4B
    p = Protocol(BIG)
    status = p.board_status(3, 7, 0x04, 0b101, 2)
    # id 0x2C0 + board; byte 1 counter 7; byte 2 board 3; byte 3 flags; bytes 4..6 balancing (LE); byte 7
    assert status.arbitration_id == 0x2C3
    assert bytes(status.data)[1:] == bytes([0x07, 0x03, 0x04, 0x05, 0x00, 0x00, 0x02])
    assert status.data[0] == crc8_sae_j1850(bytes(status.data)[1:])
    command = p.contactor_command(1, True, True, False)
    assert bytes(command.data)[1:] == bytes([0x01, 0x03, 0x00])
    assert p.decode(command).signals["MainPlus"] == 1


def test_limits_frame_is_little_endian_tenths() -> None:
    # 403.2 V -> 4032 = 0x0FC0; 50.0 A -> 500 = 0x01F4; 120.5 A -> 1205 = 0x04B5; 336.0 V -> 0x0D20
    frame = Protocol(BIG).limits(50.0, 120.5, 403.2, 336.0)
    assert frame.arbitration_id == 0x351
    assert bytes(frame.data) == bytes([0xC0, 0x0F, 0xF4, 0x01, 0xB5, 0x04, 0x20, 0x0D])


@pytest.mark.parametrize("data, problem", [
    (bytes(7), "has 7 bytes, expected 8"),
    (bytes([60, 0, 0, 0, 0, 0, 0, 0]), "unknown page 60"),
])
def test_unusable_pages_are_errors_naming_the_frame(data: bytes, problem: str) -> None:
    with pytest.raises(FrameError, match=problem):
        Protocol(BIG).decode(can.Message(arbitration_id=0x270, data=data, is_extended_id=False))


def test_a_bad_crc_is_an_error_of_its_sender() -> None:
    p = Protocol(BIG)
    status = p.board_status(2, 1, 0, 0, 0)
    status.data[0] ^= 0xFF
    with pytest.raises(FrameError, match="CRC mismatch") as error:
        p.decode(status)
    assert (error.value.kind, error.value.index) == ("board_status", 2)


def test_configured_ids_move_every_frame() -> None:
    config = parse_can_config({"ids": {"cell_voltages": 0x170, "ivt_result_i": 0x621}}, Path("ids.yaml"))
    p = Protocol(config)
    assert p.cell_voltages(0, [3.7] * 4, [1] * 4).arbitration_id == 0x170
    assert p.ivt_result(2, 0, 1.0).arbitration_id == 0x623
    assert p.decode(can.Message(arbitration_id=0x270, data=bytes(8), is_extended_id=False)) is None


@pytest.mark.parametrize(("ids", "message"), [
    ({"contactor_command": 0x2C5}, r"ids.board_status \(0x2C0..0x2DF\) overlaps ids.contactor_command \(0x2C5\)"),
    ({"limits": 0x524}, r"ids.limits \(0x524\) overlaps ids.ivt_result_i \(0x521..0x528\)"),
    ({"ivt_result_i": 0x2D8}, r"ids.board_status \(0x2C0..0x2DF\) overlaps ids.ivt_result_i \(0x2D8..0x2DF\)"),
    ({"lem_cab500": 0x270}, r"ids.cell_voltages \(0x270\) overlaps ids.lem_cab500 \(0x270\)"),
    ({"board_status": 0x7F0}, r"ids.board_status 0x7F0: its frames use 0x7F0..0x80F, beyond the 11-bit range"),
])
def test_overlapping_can_ids_are_a_configuration_error(ids: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=f"overlap.yaml: {message}"):
        parse_can_config({"ids": ids}, Path("overlap.yaml"))


def test_counter_tolerates_a_few_errors_then_fails() -> None:
    check = CounterCheck(tolerated=2)
    for counter in (1, 2, 3, 3, 3):  # frozen twice: tolerated
        check.update(counter)
    assert not check.failed
    check.update(3)
    assert check.failed
    for counter in (4, 5):
        check.update(counter)
    assert not check.failed


def test_a_field_without_a_source_is_a_configuration_error() -> None:
    config = parse_can_config({"sources": {"current": "ivt_i"}}, Path("partial.yaml"))
    with pytest.raises(ConfigError, match="partial.yaml: sources has no entry for pack_voltage, "
                                           "dc_link_voltage, insulation_resistance, hvil"):
        require_sources(config)
    with pytest.raises(ConfigError, match="sources.hvil must be one of contactor_feedback, got 'assume'"):
        parse_can_config({"sources": {"hvil": "assume"}}, Path("bad.yaml"))


def test_the_documented_frame_tables_are_the_dbc_files() -> None:
    from bms_can.dbc_tables import tables

    doc = Path(__file__).resolve().parents[3] / "docs" / "can.md"
    assert tables() in doc.read_text(), "docs/can.md: regenerate with python -m bms_can.dbc_tables"
