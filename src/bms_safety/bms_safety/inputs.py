"""The supervisor's latest view of its inputs, with bad messages turned into recorded events.

Nothing here raises on bad input: a malformed message, an unknown module id or a repeated
sequence number is rejected, remembered with a description, and becomes a plausibility fault in
the evaluator. The node must keep running whatever arrives on the wire.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bms_common.plausibility import MALFORMED, SEQUENCE, STAMP, UNKNOWN_MODULE, SampleGate, StampGate


@dataclass
class InputEvent:
    """Time and description of the latest rejected message of one kind for one slot."""

    at_s: float = math.nan
    description: str = ""
    value: float = math.nan


@dataclass
class PackInputs:
    stamp_s: float = math.nan
    received_s: float = math.nan
    current_a: float = math.nan
    pack_voltage_v: float = math.nan
    dc_link_voltage_v: float = math.nan
    insulation_ohm: float = math.nan
    hvil_closed: bool = True


@dataclass
class ContactorInputs:
    received_s: float = math.nan
    mismatch: bool = False
    commanded: tuple[bool, ...] = ()
    closed: tuple[bool, ...] = ()


@dataclass
class MeasurementStore:
    modules: int
    cells: int
    sensors: int
    voltages_v: np.ndarray = field(init=False)
    temperatures_degc: np.ndarray = field(init=False)
    # per module: stamp of the last accepted sample, when it arrived; the sequence rule's state
    stamp_s: np.ndarray = field(init=False)
    received_s: np.ndarray = field(init=False)
    gate: SampleGate = field(init=False)
    # AFE diagnostic bits of the last accepted sample: per cell (CELL_*) and per module (MODULE_*)
    cell_flags: np.ndarray = field(init=False)
    module_flags: np.ndarray = field(init=False)
    # per cell / sensor: stamp at which the reading last changed (for stuck detection)
    voltage_changed_s: np.ndarray = field(init=False)
    temperature_changed_s: np.ndarray = field(init=False)
    # per module: when the latest rejected message arrived and why (arrays keep evaluate vectorized)
    malformed_at_s: np.ndarray = field(init=False)
    malformed_note: list[str] = field(init=False)
    bad_sequence_at_s: np.ndarray = field(init=False)
    bad_sequence_note: list[str] = field(init=False)
    bad_stamp_at_s: np.ndarray = field(init=False)
    bad_stamp_note: list[str] = field(init=False)
    unknown_module: InputEvent = field(default_factory=InputEvent)
    bad_pack_stamp: InputEvent = field(default_factory=InputEvent)  # value: stamp minus arrival (s)
    pack_gate: StampGate = field(default_factory=StampGate)
    pack: PackInputs = field(default_factory=PackInputs)
    contactors: ContactorInputs = field(default_factory=ContactorInputs)
    estimator_received_s: float = math.nan
    # the evaluator's latest now_s: the arrival time of a message whose own stamp is unusable
    clock_s: float = 0.0
    # samples further apart than this (s) break the continuity that stuck detection relies on
    continuity_gap_s: float = 1.0

    def __post_init__(self) -> None:
        m, c, s = self.modules, self.cells, self.sensors
        self.voltages_v = np.full((m, c), np.nan)
        self.temperatures_degc = np.full((m, s), np.nan)
        self.stamp_s = np.full(m, np.nan)
        self.received_s = np.full(m, np.nan)
        self.gate = SampleGate(m, c, s)
        self.cell_flags = np.zeros((m, c), dtype=np.uint8)
        self.module_flags = np.zeros(m, dtype=np.int64)
        self.voltage_changed_s = np.full((m, c), np.nan)
        self.temperature_changed_s = np.full((m, s), np.nan)
        self.malformed_at_s = np.full(m, np.nan)
        self.malformed_note = [""] * m
        self.bad_sequence_at_s = np.full(m, np.nan)
        self.bad_sequence_note = [""] * m
        self.bad_stamp_at_s = np.full(m, np.nan)
        self.bad_stamp_note = [""] * m

    def update_module(self, module_id: int, stamp_s: float, voltages_v: Sequence[float] | np.ndarray,
                      temperatures_degc: Sequence[float] | np.ndarray, sequence: int,
                      received_s: float | None = None, cell_flags: Sequence[int] | bytes = b"",
                      module_flags: int = 0, received_wall_s: float | None = None) -> bool:
        """Store one module sample. Returns False (and records why) when it is rejected.

        The rule is the contract's (bms_common.plausibility.SampleGate): a rejected sample is no
        sample, so its module goes stale as if silent. With ``received_s`` the stamp must lie
        within the stamp tolerance of it (``received_wall_s``, the wall clock then, gives the
        clock rate that widens the behind tolerance); without, arrival is the stamp."""
        stamp_s = _as_float(stamp_s)
        arrival_s = self._arrival_s(stamp_s, received_s)
        m = int(module_id) if isinstance(module_id, int | np.integer) and not isinstance(module_id, bool) else -1
        try:
            volts = np.asarray(voltages_v, dtype=np.float64)
            temps = np.asarray(temperatures_degc, dtype=np.float64)
            flags = np.frombuffer(bytes(cell_flags), dtype=np.uint8)
        except (TypeError, ValueError) as exc:
            if 0 <= m < self.modules:
                return self._reject(MALFORMED, m, arrival_s, f"module {m}: unreadable arrays ({exc})", module_id)
            volts = temps = flags = np.zeros(0)

        def size(array: np.ndarray) -> int:
            return array.size if array.ndim == 1 else -1
        rejected = self.gate.check(module_id, stamp_s, size(volts), size(temps), size(flags), sequence,
                                   None if received_s is None else arrival_s, received_wall_s)
        if rejected is not None:
            return self._reject(rejected[0], m, arrival_s, rejected[1], module_id)
        # Stuck means unchanged over *consecutive* samples. After a gap in the samples (lost or
        # late messages) two readings that happen to agree prove nothing: start counting afresh.
        gap = not stamp_s - self.stamp_s[m] <= self.continuity_gap_s
        self.voltage_changed_s[m, (volts != self.voltages_v[m]) | gap] = stamp_s
        self.temperature_changed_s[m, (temps != self.temperatures_degc[m]) | gap] = stamp_s
        self.voltages_v[m] = volts
        self.temperatures_degc[m] = temps
        self.cell_flags[m] = flags if flags.size else 0
        self.module_flags[m] = int(module_flags) if isinstance(module_flags, int | np.integer) else 0
        self.stamp_s[m] = stamp_s
        self.received_s[m] = arrival_s
        return True

    def _arrival_s(self, stamp_s: float, received_s: float | None) -> float:
        if received_s is not None:
            return float(received_s)
        return stamp_s if math.isfinite(stamp_s) else self.clock_s

    def _reject(self, kind: str, m: int, at_s: float, description: str, module_id: object) -> bool:
        if kind == UNKNOWN_MODULE:
            value = float(module_id) if isinstance(module_id, int | float | np.integer) else math.nan
            self.unknown_module = InputEvent(at_s, description, value)
        elif kind == SEQUENCE:
            self.bad_sequence_at_s[m], self.bad_sequence_note[m] = at_s, description
        elif kind == STAMP:
            self.bad_stamp_at_s[m], self.bad_stamp_note[m] = at_s, description
        else:
            self.malformed_at_s[m], self.malformed_note[m] = at_s, description
        return False

    def update_pack(self, stamp_s: float, current_a: float, pack_voltage_v: float, dc_link_voltage_v: float,
                    insulation_ohm: float, hvil_closed: bool, received_s: float | None = None,
                    received_wall_s: float | None = None) -> bool:
        """Store one current sensor sample. Returns False (and records why) when its stamp is
        outside the tolerance of ``received_s`` (checked when the wall clock of the arrival,
        ``received_wall_s``, is given too, as for module samples): it is then no sample, and the
        current sensor goes stale as if silent."""
        stamp_s = _as_float(stamp_s)
        if received_s is not None and received_wall_s is not None:
            problem = self.pack_gate.check(stamp_s, float(received_s), received_wall_s)
            if problem is not None:
                self.bad_pack_stamp = InputEvent(float(received_s), f"current sensor sample {problem}: dropped",
                                                 stamp_s - float(received_s))
                return False
        self.pack = PackInputs(
            stamp_s=stamp_s,
            received_s=self._arrival_s(stamp_s, received_s),
            current_a=_as_float(current_a),
            pack_voltage_v=_as_float(pack_voltage_v),
            dc_link_voltage_v=_as_float(dc_link_voltage_v),
            insulation_ohm=_as_float(insulation_ohm),
            hvil_closed=bool(hvil_closed),
        )
        return True

    def update_contactors(self, stamp_s: float, commanded: Sequence[bool], closed: Sequence[bool],
                          reported_mismatch: bool = False, received_s: float | None = None) -> None:
        differs = len(commanded) != len(closed) or any(
            bool(a) != bool(b) for a, b in zip(commanded, closed, strict=False))
        self.contactors = ContactorInputs(self._arrival_s(_as_float(stamp_s), received_s),
                                          bool(reported_mismatch) or differs,
                                          tuple(bool(c) for c in commanded), tuple(bool(c) for c in closed))

    def update_estimator(self, stamp_s: float, received_s: float | None = None) -> None:
        self.estimator_received_s = self._arrival_s(_as_float(stamp_s), received_s)


def _as_float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
