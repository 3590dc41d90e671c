"""Contactor driver over CAN (entry point ``can`` of ``bms_master.contactor_backends``).

``write()`` sends the ContactorCommand frame at once and the driver repeats it every
``COMMAND_PERIOD_S`` (the HV board releases every coil when commands stop for its timeout).
``read()`` returns the auxiliary contacts of the HV board's ContactorFeedback frame. Feedback
that is stale, or whose counter or CRC failed more than ``max_consecutive_errors`` times in a
row, reads as all open, so closed coils become a feedback mismatch and the contactor node opens;
before the first feedback, and for one timeout after start, it is None (not yet available).
A command the bus refuses is counted and sent again with the next repetition.

The factory ties the driver to its node: the repeat timer and the channel subscription are
undone by :meth:`CanContactors.close`, which the factory calls itself when the node configures
again (after a cleanup), so a node never holds two timers or two subscriptions.
"""

from __future__ import annotations

import math
import threading
import time
import weakref

from rclpy.node import Node

from bms_master.contactor_hw import ContactorBackend
from bms_master.state_machine import ContactorSet

from .channel import CanChannel, shared_channel
from .config import CanConfig, load_can_config
from .protocol import CounterCheck, Frame, FrameError

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
        self._node: Node | None = None
        self._timer = None
        channel.subscribe("contactor_feedback", self._on_feedback, self._on_feedback_error)

    def _on_feedback_error(self, _error: FrameError) -> None:
        with self._lock:
            self._feedback_check.error()

    def repeat_on(self, node: Node) -> None:
        """Repeat the command every COMMAND_PERIOD_S on a timer of ``node`` (until close)."""
        self._node, self._timer = node, node.create_timer(COMMAND_PERIOD_S, self.send_command)

    def close(self) -> None:
        """Undo what the driver set up: its repeat timer and its channel subscription."""
        if self._timer is not None:
            self._node.destroy_timer(self._timer)
            self._node = self._timer = None
        self.channel.unsubscribe("contactor_feedback", self._on_feedback, self._on_feedback_error)

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


_by_node: weakref.WeakKeyDictionary[Node, CanContactors] = weakref.WeakKeyDictionary()


def make_contactors(node: Node) -> CanContactors:
    """Entry point of ``bms_master.contactor_backends``: the contactors on the configured bus,
    their command repeated on a timer of the contactor node. Called again for the same node (it
    configures again after a cleanup), it first closes the driver it made before."""
    previous = _by_node.pop(node, None)
    if previous is not None:
        previous.close()
    config = load_can_config()
    backend = CanContactors(config, shared_channel(config))
    backend.repeat_on(node)
    _by_node[node] = backend
    return backend
