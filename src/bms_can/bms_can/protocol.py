"""The CAN protocol of the boards: frames encoded and decoded with cantools from the DBC files in
``dbc/``, at the CAN ids of a :class:`~bms_can.config.CanConfig`, plus the extension frames'
CRC-8 (SAE J1850) and alive counters. No ROS and no bus here: drivers and the emulator share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import can
import cantools

from bms_common.pack_config import ConfigError, PackConfig

from .config import ID_SPANS, CanConfig

DBC_DIR = Path(__file__).parent / "dbc"
CELLS_PER_PAGE = 4
SENSORS_PER_PAGE = 6
VOLTAGE_PAGES = 54
TEMPERATURE_PAGES = 30
MAX_BOARDS = ID_SPANS["board_status"]
BALANCING_BITS = 24       # Balance / Balancing signals of BalancingCommand and BoardStatus (dbc/bms.dbc)
IVT_RESULTS = ("I", "U1", "U2", "U3", "T", "W", "As", "Wh")
IVT_ERROR_SIGNALS = ("ResultError", "MeasurementError", "SystemError")
COUNTER_MODULO = 16


class FrameError(ValueError):
    """A frame that cannot be used: wrong length, bad CRC, unknown page or result id. ``kind``
    and ``index`` name its sender as far as the id tells (board id, IVT result number)."""

    def __init__(self, message: str, kind: str = "", index: int = 0, unknown_page: bool = False) -> None:
        super().__init__(message)
        self.kind, self.index, self.unknown_page = kind, index, unknown_page


def check_pack_fits(pack: PackConfig) -> None:
    """The page layout carries at most 216 cells, 180 temperature sensors and 32 boards of at
    most 24 cells: a larger pack is a configuration error at start, not a silent gap later."""
    limits = (
        ("cells", pack.cell_count, VOLTAGE_PAGES * CELLS_PER_PAGE,
         f"{VOLTAGE_PAGES} CellVoltages pages of {CELLS_PER_PAGE} cells"),
        ("temperature sensors", pack.modules * pack.sensors_per_module, TEMPERATURE_PAGES * SENSORS_PER_PAGE,
         f"{TEMPERATURE_PAGES} CellTemperatures pages of {SENSORS_PER_PAGE} sensors"),
        ("modules", pack.modules, MAX_BOARDS, f"BoardStatus ids board_status + 0..{MAX_BOARDS - 1}"),
        ("cells per module", pack.cells_per_module, BALANCING_BITS, f"{BALANCING_BITS} balancing bits per board"),
    )
    for what, count, limit, layout in limits:
        if count > limit:
            raise ConfigError(
                f"{pack.source}: pack {pack.name} has {count} {what}, the CAN boards' layout carries at most "
                f"{limit} ({layout}, docs/can.md): use a smaller pack per bus or another backend")


def crc8_sae_j1850(data: bytes) -> int:
    """CRC-8 SAE J1850: polynomial 0x1D, initial value 0xFF, final XOR 0xFF (check 0x4B)."""
    crc = 0xFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1D) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc ^ 0xFF


@dataclass(frozen=True)
class Frame:
    """A decoded frame: its kind (a key of CanConfig.ids), the index it carries (page, board id,
    IVT result number) and its signals in physical units."""

    kind: str
    index: int
    signals: dict[str, Any]


class Protocol:
    def __init__(self, config: CanConfig) -> None:
        self.ids = config.ids
        self.db = cantools.database.load_file(str(DBC_DIR / "bms.dbc"))
        ivt_file = "bms.dbc" if config.ivt_byte_order == "big" else "ivt_s_little_endian.dbc"
        ivt_db = self.db if ivt_file == "bms.dbc" else cantools.database.load_file(str(DBC_DIR / ivt_file))
        self.ivt = [ivt_db.get_message_by_name(f"IVT_Msg_Result_{name}") for name in IVT_RESULTS]
        self._messages = {name: self.db.get_message_by_name(dbc) for name, dbc in (
            ("cell_voltages", "CellVoltages"), ("cell_temperatures", "CellTemperatures"),
            ("board_status", "BoardStatus"), ("balancing_command", "BalancingCommand"),
            ("contactor_command", "ContactorCommand"), ("contactor_feedback", "ContactorFeedback"),
            ("limits", "Limits"), ("insulation_info", "Iso165C_Info"), ("lem_cab500", "LEM_CAB500"))}
        self._by_id = {self.ids[name]: name for name in self._messages if name != "board_status"}

    # --- encoding ----------------------------------------------------------------------------
    def _frame(self, kind: str, arbitration_id: int, signals: dict[str, Any], crc: bool = False) -> can.Message:
        data = bytearray(self._messages[kind].encode(signals, strict=True))
        if crc:
            data[0] = crc8_sae_j1850(bytes(data[1:]))
        return can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=False)

    def cell_voltages(self, page: int, voltage_v: Sequence[float], valid: Sequence[bool]) -> can.Message:
        signals: dict[str, Any] = {"Page": page}
        for n in range(CELLS_PER_PAGE):
            signals[f"Cell{n}_Voltage"] = voltage_v[n]
            signals[f"Cell{n}_Valid"] = int(valid[n])
        return self._frame("cell_voltages", self.ids["cell_voltages"], signals)

    def cell_temperatures(self, page: int, temperature_degc: Sequence[float], valid: Sequence[bool]) -> can.Message:
        signals: dict[str, Any] = {"Page": page}
        for n in range(SENSORS_PER_PAGE):
            signals[f"Sensor{n}_Temperature"] = temperature_degc[n]
            signals[f"Sensor{n}_Valid"] = int(valid[n])
        return self._frame("cell_temperatures", self.ids["cell_temperatures"], signals)

    def board_status(self, board_id: int, counter: int, module_flags: int, balancing: int,
                     afe_errors: int) -> can.Message:
        return self._frame("board_status", self.ids["board_status"] + board_id, {
            "Crc": 0, "Counter": counter % COUNTER_MODULO, "BoardId": board_id, "ModuleFlags": module_flags,
            "Balancing": balancing, "AfeErrors": min(afe_errors, 255)}, crc=True)

    def balancing_command(self, board_id: int, counter: int, balance: int) -> can.Message:
        return self._frame("balancing_command", self.ids["balancing_command"], {
            "Crc": 0, "Counter": counter % COUNTER_MODULO, "BoardId": board_id, "Balance": balance}, crc=True)

    def contactor_command(self, counter: int, main_plus: bool, main_minus: bool, precharge: bool) -> can.Message:
        return self._frame("contactor_command", self.ids["contactor_command"], {
            "Crc": 0, "Counter": counter % COUNTER_MODULO, "MainPlus": int(main_plus),
            "MainMinus": int(main_minus), "Precharge": int(precharge)}, crc=True)

    def contactor_feedback(self, counter: int, coils: Sequence[bool], aux: Sequence[bool],
                           hvil_closed: bool) -> can.Message:
        return self._frame("contactor_feedback", self.ids["contactor_feedback"], {
            "Crc": 0, "Counter": counter % COUNTER_MODULO,
            "CoilMainPlus": int(coils[0]), "CoilMainMinus": int(coils[1]), "CoilPrecharge": int(coils[2]),
            "AuxMainPlus": int(aux[0]), "AuxMainMinus": int(aux[1]), "AuxPrecharge": int(aux[2]),
            "HvilClosed": int(hvil_closed)}, crc=True)

    def limits(self, charge_current_a: float, discharge_current_a: float, charge_voltage_v: float,
               discharge_voltage_v: float) -> can.Message:
        # Clamped to what the frame can carry (0.1 A / 0.1 V steps in 16 bits).
        return self._frame("limits", self.ids["limits"], {
            "ChargeVoltageLimit": min(charge_voltage_v, 6553.5), "ChargeCurrentLimit": min(charge_current_a, 3276.7),
            "DischargeCurrentLimit": min(discharge_current_a, 3276.7),
            "DischargeVoltageLimit": min(discharge_voltage_v, 6553.5)})

    def insulation_info(self, resistance_ohm: float, valid: bool, device_error: bool, fault: bool,
                        alive: bool) -> can.Message:
        return self._frame("insulation_info", self.ids["insulation_info"], {
            "InsulationResistance": min(resistance_ohm, 65_535_000.0), "ResistanceValid": int(valid),
            "DeviceError": int(device_error), "InsulationFault": int(fault), "Alive": int(alive)})

    def lem_cab500(self, current_a: float, error: bool = False) -> can.Message:
        return self._frame("lem_cab500", self.ids["lem_cab500"], {"Current": current_a, "Error": int(error)})

    def ivt_result(self, result: int, counter: int, value: float, ocs: bool = False,
                   error: bool = False) -> can.Message:
        message = self.ivt[result]
        data = message.encode({"MuxID": result, "Counter": counter % COUNTER_MODULO, "OCS": int(ocs),
                               "ResultError": int(error), "MeasurementError": 0, "SystemError": 0,
                               "Value": value}, strict=True)
        return can.Message(arbitration_id=self.ids["ivt_result_i"] + result, data=data, is_extended_id=False)

    # --- decoding ----------------------------------------------------------------------------
    def kind_of(self, arbitration_id: int) -> tuple[str, int] | None:
        """(kind, index) of a frame id this protocol uses, None for any other id."""
        if arbitration_id in self._by_id:
            return self._by_id[arbitration_id], 0
        status = arbitration_id - self.ids["board_status"]
        if 0 <= status < MAX_BOARDS:
            return "board_status", status
        result = arbitration_id - self.ids["ivt_result_i"]
        if 0 <= result < len(IVT_RESULTS):
            return "ivt", result
        return None

    def decode(self, msg: can.Message) -> Frame | None:
        """The frame's content; None for ids of no interest. Raises FrameError for a frame of a
        known id that cannot be used."""
        known = self.kind_of(msg.arbitration_id)
        if known is None or msg.is_error_frame or msg.is_remote_frame:
            return None
        kind, index = known
        message = self.ivt[index] if kind == "ivt" else self._messages[kind]
        data = bytes(msg.data)
        if len(data) != message.length:
            raise FrameError(f"{message.name} (0x{msg.arbitration_id:X}) has {len(data)} bytes, expected {message.length}",
                             kind, index)
        signals = message.decode(data, decode_choices=False)
        if "Crc" in signals and crc8_sae_j1850(data[1:]) != data[0]:
            raise FrameError(f"{message.name} (0x{msg.arbitration_id:X}): CRC mismatch", kind, index)
        if kind in ("cell_voltages", "cell_temperatures"):
            index = int(signals["Page"])
            pages = VOLTAGE_PAGES if kind == "cell_voltages" else TEMPERATURE_PAGES
            if index >= pages:
                raise FrameError(f"{message.name}: unknown page {index} (0..{pages - 1})", kind, index, True)
        elif kind == "balancing_command":
            index = int(signals["BoardId"])
        elif kind == "board_status" and signals["BoardId"] != index:
            raise FrameError(f"BoardStatus at 0x{msg.arbitration_id:X} names board {signals['BoardId']}, expected {index}",
                             kind, index)
        elif kind == "ivt" and int(signals["MuxID"]) != index:
            raise FrameError(f"{message.name} (0x{msg.arbitration_id:X}): result id {signals['MuxID']}, expected {index}",
                             kind, index)
        return Frame(kind, index, signals)


class CounterCheck:
    """Alive counter of one sender: each frame must carry the previous counter + 1 (mod 16).
    A frozen or skipping counter is an error; ``failed`` once more than ``tolerated`` errors
    came in a row, until a run of good frames clears it."""

    def __init__(self, tolerated: int) -> None:
        self.tolerated = tolerated
        self.last: int | None = None
        self.consecutive_errors = 0
        self.errors = 0

    def update(self, counter: int) -> bool:
        ok = self.last is None or counter == (self.last + 1) % COUNTER_MODULO
        self.last = counter
        if ok:
            self.consecutive_errors = 0
        else:
            self.errors += 1
            self.consecutive_errors += 1
        return ok

    def error(self) -> None:
        """A frame of this sender was lost to a CRC or length error."""
        self.errors += 1
        self.consecutive_errors += 1

    @property
    def failed(self) -> bool:
        return self.consecutive_errors > self.tolerated
