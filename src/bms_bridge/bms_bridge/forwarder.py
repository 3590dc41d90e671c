"""Sends the outbox over an MQTT link and deletes records once delivered.

Delivered means acknowledged by the sink after its database commit (``ack_mode="sink"``, the
default), so nothing is lost even when the broker loses its state; ``ack_mode="broker"`` takes
the broker's PUBACK instead, for a deployment without a sink. At most ``window`` records are
unacknowledged at a time. Events waiting are sent before backlog telemetry, so a long drain does
not hold back live events. No acknowledgement for ``ack_timeout_s`` while records are in flight
(the sink down, the broker restarted empty) and every reconnect make the forwarder send
everything still in the outbox again, in order; the sink stores a record once however often it
comes. A slow sink that still acknowledges is not a timeout: it only slows the drain; a single
record unacknowledged for ``OVERDUE_FACTOR`` times the timeout while later ones were is.

Ack payload, on ``bms/v1/<site>/<pack>/ack``: ``{"ranges": [[first_seq, last_seq], ...]}``.
"""

from __future__ import annotations

import json
import threading
import time

from .mqtt_link import MqttLink
from .outbox import Outbox

OVERDUE_FACTOR = 6.0


def ranges_of(seqs: list[int]) -> list[list[int]]:
    out: list[list[int]] = []
    for seq in sorted(seqs):
        if out and seq == out[-1][1] + 1:
            out[-1][1] = seq
        else:
            out.append([seq, seq])
    return out


def parse_ack(payload: bytes) -> list[int]:
    body = json.loads(payload)
    seqs: list[int] = []
    for first, last in body["ranges"]:
        if not (isinstance(first, int) and isinstance(last, int)) or last < first or last - first > 1_000_000:
            raise ValueError(f"bad ack range [{first}, {last}]")
        seqs.extend(range(first, last + 1))
    return seqs


class Forwarder:
    def __init__(self, outbox: Outbox, link: MqttLink | None = None, window: int = 1000,
                 ack_timeout_s: float = 10.0, ack_mode: str = "sink") -> None:
        if ack_mode not in ("sink", "broker"):
            raise ValueError(f"ack_mode must be 'sink' or 'broker', got {ack_mode!r}")
        self.outbox = outbox
        self.link = link
        self.window = window
        self.ack_timeout_s = ack_timeout_s
        self.ack_mode = ack_mode
        self.sent = 0
        self.delivered = 0
        self.resends = 0
        self._lock = threading.Lock()
        self._inflight: dict[int, tuple[float, object]] = {}
        self._cursor = 0  # every record up to here has been sent since the last restart of sending
        self._event_cursor = 0
        self._progress = time.monotonic()  # last acknowledgement, or first send into an empty window
        self._backlog = True  # records may wait that the last pump could not send
        self._pumped_next_seq = 0

    def restart_sending(self) -> None:
        """Send everything in the outbox again (after a reconnect or an ack timeout)."""
        with self._lock:
            self._inflight.clear()
            self._cursor = 0
            self._event_cursor = 0
            self._progress = time.monotonic()
            self._backlog = True

    def on_ack(self, payload: bytes) -> int:
        seqs = parse_ack(payload)
        removed = self.outbox.delete(seqs)
        with self._lock:
            for seq in seqs:
                self._inflight.pop(seq, None)
            self.delivered += removed
            self._progress = time.monotonic()
        return removed

    def pump(self) -> int:
        """Send what the window allows; returns how many records were sent."""
        link = self.link
        if link is None or not link.connected.is_set():
            return 0
        now = time.monotonic()
        with self._lock:
            if self.ack_mode == "broker":
                done = [seq for seq, (_t, info) in self._inflight.items() if info.is_published()]
                for seq in done:
                    del self._inflight[seq]
                if done:
                    self._progress = now
            else:
                done = []
            if not self._inflight:
                self._progress = now
            oldest = min((t for t, _ in self._inflight.values()), default=now)
            # No ack at all for a while, or one record left behind while later ones were acked
            # (it was lost with a killed sink or broker): send again from the oldest.
            stalled = now - self._progress > self.ack_timeout_s or now - oldest > OVERDUE_FACTOR * self.ack_timeout_s
        if done:
            self.delivered += self.outbox.delete(done)
        if stalled:
            self.resends += 1
            self.restart_sending()
        sent = 0
        next_seq = self.outbox.next_seq()
        with self._lock:
            if not self._backlog and next_seq == self._pumped_next_seq:
                return 0  # nothing appended and nothing left over since the last pump: no queries
            self._pumped_next_seq = next_seq
            room = self.window - len(self._inflight)
            if room <= 0:
                self._backlog = True
                return 0
            events = [r for r in self.outbox.pending(self._event_cursor, room, event=True)
                      if r.seq not in self._inflight]
            telemetry = self.outbox.pending(self._cursor, room - len(events), event=False) if room > len(events) else []
            batch = events + [r for r in telemetry if r.seq not in self._inflight]
            self._backlog = len(batch) >= room
            for record in batch:
                info = link.publish(record.topic, record.payload, qos=1, retain=record.kind == "birth")
                if info is None:
                    self._backlog = True
                    break
                self._inflight[record.seq] = (now, info)
                if record.event:
                    self._event_cursor = max(self._event_cursor, record.seq)
                else:
                    self._cursor = max(self._cursor, record.seq)
                sent += 1
            self.sent += sent
        return sent

    def inflight(self) -> int:
        with self._lock:
            return len(self._inflight)
