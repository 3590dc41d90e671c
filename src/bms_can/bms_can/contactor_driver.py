"""Contactor driver over CAN (entry point ``can`` of ``bms_master.contactor_backends``).

``write()`` sends the ContactorCommand frame at once and the driver repeats it every
``COMMAND_PERIOD_S`` (the HV board releases every coil when commands stop for its timeout).
``read()`` returns the auxiliary contacts of the HV board's ContactorFeedback frame. Feedback
that is stale, or whose counter or CRC failed more than ``max_consecutive_errors`` times in a
row, reads as all open, so closed coils become a feedback mismatch and the contactor node opens;
before the first feedback, and for one timeout after start, it is None (not yet available).
A command the bus refuses is counted and sent again with the next repetition.
"""

from __future__ import annotations

import math
import threading
import time

from rclpy.node import Node

from bms_master.contactor_hw import ContactorBackend
from bms_master.state_machine import ContactorSet

from .channel import CanChannel, shared_channel
from .config import CanConfig, load_can_config
from .protocol import CounterCheck, Frame

COMMAND_PERIOD_S = 0.1


class CanContactors(ContactorBackend):
    def __init__(self, config: CanConfig, channel: CanChannel) -> None:
        self.config, self.channel = config, channel
        self._coils = ContactorSet()
        self._counter = 0
        self._lock = threading.Lock()
        self._feedback: ContactorSet | None = None
        self._feedback_stamp = -math.inf
        self._started_s = time.time()
        self._feedback_check = CounterCheck(config.max_consecutive_errors)
        channel.subscribe("contactor_feedback", self._on_feedback, lambda _: self._feedback_check.error())

    def _on_feedback(self, frame: Frame, stamp_s: float) -> None:
        s = frame.signals
        with self._lock:
            self._feedback_check.update(int(s["Counter"]))
            self._feedback = ContactorSet(bool(s["AuxMainPlus"]), bool(s["AuxMainMinus"]), bool(s["AuxPrecharge"]))
            self._feedback_stamp = stamp_s

    def write(self, coils: ContactorSet) -> None:
        self._coils = coils
        self.send_command()

    def send_command(self) -> bool:
        coils = self._coils
        self._counter += 1
        return self.channel.send(self.channel.protocol.contactor_command(
            self._counter, coils.main_plus, coils.main_minus, coils.precharge))

    def read(self, now_s: float | None = None) -> ContactorSet | None:
        now_s = time.time() if now_s is None else now_s
        timeout_s = self.config.timeouts_s["contactor_feedback"]
        with self._lock:
            if now_s - self._feedback_stamp <= timeout_s and not self._feedback_check.failed:
                return self._feedback
            if self._feedback is None and now_s - self._started_s <= timeout_s:
                return None
        return ContactorSet()

    @property
    def hardware_id(self) -> str:
        return f"can:{self.channel.name}"


def make_contactors(node: Node) -> CanContactors:
    """Entry point of ``bms_master.contactor_backends``: the contactors on the configured bus,
    their command repeated on a timer of the contactor node."""
    config = load_can_config()
    backend = CanContactors(config, shared_channel(config))
    node.create_timer(COMMAND_PERIOD_S, backend.send_command)
    return backend
