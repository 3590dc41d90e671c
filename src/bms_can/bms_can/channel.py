"""One owner per CAN channel per process: :func:`shared_channel` opens the python-can bus once,
receives on a thread, decodes with the :class:`~bms_can.protocol.Protocol` and hands each frame
to the handlers of its kind. Every driver of the process (module AFEs, pack sensor, contactors)
shares it. Bus errors are counted and reported, never raised into a node: a failed send returns
False, a failed receive is retried after a pause, error frames and bus-off are counted, and a
frame whose decoding or handler raises is counted (``dispatch_errors``) and reported while the
receive thread goes on.
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import can

from .config import CanConfig
from .protocol import Frame, FrameError, Protocol

# socketcan error-frame class bit of a controller going bus-off (linux/can/error.h CAN_ERR_BUSOFF)
CAN_ERR_BUSOFF = 0x40
ERROR_BURST_WINDOW_S = 1.0
ERROR_BURST_FRAMES = 10
RETRY_PAUSE_S = 0.1
REPORT_EVERY_S = 5.0
_log = logging.getLogger("bms_can")

class BusUnavailable(ValueError):
    """The configured bus cannot be opened (a configuration error at start)."""


FrameHandler = Callable[[Frame, float], None]
ErrorHandler = Callable[[FrameError], None]


@dataclass
class ChannelStats:
    received: int = 0
    processed: int = 0            # received frames whose handling (decode, handlers) has ended
    sent: int = 0
    send_errors: int = 0          # not acknowledged, transmit queue full, interface down
    receive_errors: int = 0
    error_frames: int = 0
    bus_off: int = 0
    malformed: int = 0            # known id, unusable content (length, CRC, page, result id)
    dispatch_errors: int = 0      # decoding or a handler raised: a bug, the frame is lost
    last_error: str = ""


class CanChannel:
    def __init__(self, config: CanConfig) -> None:
        self.config = config
        self.protocol = Protocol(config)
        try:
            self.bus = can.Bus(**config.bus)
        except (can.CanError, ValueError, OSError, ImportError) as exc:
            raise BusUnavailable(
                f"{config.source}: cannot open the CAN bus {config.bus or '(python-can configuration)'}: {exc}; "
                "bring the interface up or choose another CAN configuration with BMS_CAN_CONFIG (docs/can.md)"
            ) from exc
        self.name = str(config.bus.get("channel", self.bus.channel_info))
        self.stats = ChannelStats()
        self._handlers: dict[str, list[FrameHandler]] = collections.defaultdict(list)
        self._error_handlers: dict[str, list[ErrorHandler]] = collections.defaultdict(list)
        self._error_times: collections.deque[float] = collections.deque(maxlen=ERROR_BURST_FRAMES)
        self._reported_s: dict[str, float] = {}
        self._send_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name=f"can-rx {self.name}", daemon=True)
        self._thread.start()

    def subscribe(self, kind: str, handler: FrameHandler, on_error: ErrorHandler | None = None) -> None:
        # Lists are replaced, never changed in place: the receive thread may be iterating one.
        self._handlers[kind] = [*self._handlers[kind], handler]
        if on_error is not None:
            self._error_handlers[kind] = [*self._error_handlers[kind], on_error]

    def unsubscribe(self, kind: str, handler: FrameHandler, on_error: ErrorHandler | None = None) -> None:
        """Remove what :meth:`subscribe` added (a driver that is cleaned up)."""
        self._handlers[kind] = [h for h in self._handlers[kind] if h != handler]
        if on_error is not None:
            self._error_handlers[kind] = [h for h in self._error_handlers[kind] if h != on_error]

    def send(self, msg: can.Message) -> bool:
        """Send without blocking; False (counted, remembered) when the bus refuses the frame."""
        try:
            with self._send_lock:
                self.bus.send(msg, timeout=0.0)
        except (can.CanError, OSError) as exc:
            self.stats.send_errors += 1
            self._report("send", f"send 0x{msg.arbitration_id:X}: {exc}")
            return False
        self.stats.sent += 1
        return True

    def error_burst(self, now_s: float | None = None) -> bool:
        """ERROR_BURST_FRAMES (10) or more error frames within ERROR_BURST_WINDOW_S (1 s) up to now."""
        now_s = time.time() if now_s is None else now_s
        times = self._error_times
        return len(times) == times.maxlen and now_s - times[0] <= ERROR_BURST_WINDOW_S

    def _report(self, kind: str, text: str) -> None:
        """Remember the error; log it at most every REPORT_EVERY_S per kind, with the counts."""
        self.stats.last_error = text
        now = time.monotonic()
        if now - self._reported_s.get(kind, -REPORT_EVERY_S) >= REPORT_EVERY_S:
            self._reported_s[kind] = now
            _log.warning("CAN %s: %s (%s)", self.name, text, self.stats)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.bus.shutdown()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.bus.recv(timeout=RETRY_PAUSE_S)
            except (can.CanError, OSError, ValueError) as exc:
                self.stats.receive_errors += 1
                self._report("receive", f"receive: {exc}")
                self._stop.wait(RETRY_PAUSE_S)
                continue
            if msg is None:
                continue
            try:
                self.dispatch(msg)
            except Exception as exc:  # noqa: BLE001 - one bad frame or handler must not end the receiving
                self.stats.dispatch_errors += 1
                self._report("dispatch", f"frame 0x{msg.arbitration_id:X} lost, its decoding or a handler "
                                         f"raised {type(exc).__name__}: {exc} (a bug: please report it)")
                if self.stats.dispatch_errors == 1:
                    _log.exception("CAN %s: first dispatch error", self.name)
            finally:
                self.stats.processed += 1

    def dispatch(self, msg: can.Message) -> None:
        stats = self.stats
        stats.received += 1
        if msg.is_error_frame:
            stats.error_frames += 1
            self._error_times.append(msg.timestamp or time.time())
            if msg.arbitration_id & CAN_ERR_BUSOFF:
                stats.bus_off += 1
                self._report("bus_off", "the controller went bus-off")
            elif self.error_burst():
                self._report("error_frames", f"{ERROR_BURST_FRAMES} or more error frames within "
                                              f"{ERROR_BURST_WINDOW_S:g} s")
            return
        try:
            frame = self.protocol.decode(msg)
        except FrameError as exc:
            stats.malformed += 1
            self._report("malformed", str(exc))
            for on_error in self._error_handlers.get(exc.kind, ()):
                on_error(exc)
            return
        if frame is None:
            return
        stamp = msg.timestamp or time.time()
        for handler in self._handlers.get(frame.kind, ()):
            handler(frame, stamp)


_channels: dict[str, CanChannel] = {}
_lock = threading.Lock()


def shared_channel(config: CanConfig) -> CanChannel:
    """The process's channel for this bus configuration, opened on first use and closed when the
    process exits."""
    key = json.dumps(config.bus, sort_keys=True, default=str)
    with _lock:
        if key not in _channels:
            if not _channels:
                atexit.register(_close_all)
            _channels[key] = CanChannel(config)
        return _channels[key]


def _close_all() -> None:
    with _lock:
        for channel in _channels.values():
            channel.close()
        _channels.clear()
