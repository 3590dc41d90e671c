"""Faults the board emulator puts on the wire, per target: a module id, or ``ivt``, ``lem``,
``iso``, ``hv`` (``bus`` for error bursts). What each does: docs/can.md, "Running on the emulator"."""

from __future__ import annotations

from dataclasses import dataclass, field

import can

FAULTS = ("silence", "frozen_counter", "skip_counter", "bad_crc", "invalid", "raw_extreme",
          "wrong_length", "unknown_page", "error_burst")
DEVICES = ("ivt", "lem", "iso", "hv", "bus")


def parse_target(text: str) -> int | str:
    if text in DEVICES:
        return text
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"fault target must be a module id or one of {', '.join(DEVICES)}, got {text!r}") from None


@dataclass
class WireFaults:
    active: set[tuple[str, int | str]] = field(default_factory=set)

    def set(self, fault: str, target: int | str, on: bool = True) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown wire fault {fault!r} (known: {', '.join(FAULTS)})")
        (self.active.add if on else self.active.discard)((fault, target))

    def clear(self) -> None:
        self.active.clear()

    def has(self, fault: str, target: int | str) -> bool:
        return (fault, target) in self.active

    def command(self, line: str) -> str:
        """``fault KIND TARGET``, ``clear KIND TARGET`` or ``clear``; returns what it did."""
        words = line.split()
        if words == ["clear"]:
            self.clear()
            return "cleared every fault"
        if len(words) != 3 or words[0] not in ("fault", "clear"):
            raise ValueError(f"expected 'fault KIND TARGET', 'clear KIND TARGET' or 'clear', got {line!r}")
        self.set(words[1], parse_target(words[2]), words[0] == "fault")
        return f"{words[0]} {words[1]} {words[2]}"

    def counter(self, target: int | str, counter: int) -> int:
        """The counter the target sends for its ``counter``-th frame."""
        if self.has("frozen_counter", target):
            return 0
        return counter * 2 if self.has("skip_counter", target) else counter

    def mangle(self, target: int | str, msg: can.Message, has_crc: bool = False) -> can.Message:
        """Apply the target's CRC and length faults to a frame about to be sent."""
        data = bytearray(msg.data)
        if has_crc and self.has("bad_crc", target):
            data[0] ^= 0x5A
        if self.has("wrong_length", target):
            data = data[:-1]
        return can.Message(arbitration_id=msg.arbitration_id, data=data, is_extended_id=False)
