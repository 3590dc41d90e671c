"""A python-can interface whose bus is a directory of Unix datagram sockets: a CAN bus between
processes of one machine that puts no packet on any network interface.

``can.Bus(interface="unix", channel="/tmp/bms-can/can0")``: every bus object binds one socket in
the channel directory and sends each frame to every other socket there, so all participants see
every frame, as on a CAN bus. A channel that is a bare name (``can0``, no ``/``) lives in a
private directory of the user: ``$XDG_RUNTIME_DIR/bms-can/can0``, or ``/tmp/bms-can-<uid>/can0``
without XDG_RUNTIME_DIR (created with mode 0700; refused when another user owns it or others may
enter it), so no other user of the machine can join or disturb the bus. Registered under python-can's ``can.interface`` entry point, so
drivers use the stock API and a real ``socketcan`` channel is a configuration change.

CAN behaviour it keeps: a frame that no other node receives is not acknowledged, so ``send``
raises ``CanOperationError`` (on a real bus the controller retransmits until its queue fills);
a receiver whose buffer is full loses the frame (an overrun, counted in ``overruns``); error
frames travel like any frame. Socket paths are limited to 107 bytes: keep the channel short.

The channel directory belongs to the bus: it may hold only the participants' sockets (named
``<pid>-<n>``, ``.<pid>-<n>`` while binding). A directory holding anything else is refused at
start, and a sender only ever connects to, or removes when stale, sockets of that name.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import select
import socket
import stat
import struct
import time
from pathlib import Path

import can

# timestamp, arbitration id, flags, dlc, then up to 64 data bytes
_HEADER = struct.Struct("<dIBB")
_EXTENDED, _REMOTE, _ERROR, _FD, _BRS, _ESI = (1 << bit for bit in range(6))
_MAX_PATH = 107
RESCAN_S = 0.5
_instances = itertools.count()
# <pid>-<n>: a participant's socket; with a leading dot while it binds (not yet accepting).
_PEER_NAME = re.compile(r"\d+-\d+")
_BINDING_NAME = re.compile(r"\.\d+-\d+")


def private_channel_dir(name: str) -> Path:
    """The directory of a bare channel name: under $XDG_RUNTIME_DIR/bms-can, else
    /tmp/bms-can-<uid>; the parent is created with mode 0700 and must be the user's alone."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "bms-can" if runtime else Path(f"/tmp/bms-can-{os.getuid()}")
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = base.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise can.CanInitializationError(
            f"unix CAN channel {name!r}: {base} must be a directory of user {os.getuid()} that only it may "
            f"enter (mode 0700), found owner {info.st_uid} mode {stat.filemode(info.st_mode)}; remove it or "
            "give the channel as a directory path of your own")
    return base / name


def _foreign_entries(directory: Path) -> list[str]:
    """Entries of a channel directory that are not participants' sockets."""
    foreign = []
    for entry in os.scandir(directory):
        try:
            is_socket = stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode)
        except FileNotFoundError:
            continue  # a participant that just left
        named = _PEER_NAME.fullmatch(entry.name) or _BINDING_NAME.fullmatch(entry.name)
        if not (is_socket and named):
            foreign.append(entry.name)
    return sorted(foreign)


def pack_frame(msg: can.Message) -> bytes:
    flags = ((_EXTENDED if msg.is_extended_id else 0) | (_REMOTE if msg.is_remote_frame else 0)
             | (_ERROR if msg.is_error_frame else 0) | (_FD if msg.is_fd else 0)
             | (_BRS if msg.bitrate_switch else 0) | (_ESI if msg.error_state_indicator else 0))
    return _HEADER.pack(msg.timestamp, msg.arbitration_id, flags, msg.dlc) + bytes(msg.data)


def unpack_frame(datagram: bytes, timestamp_s: float, channel: str) -> can.Message:
    _, arbitration_id, flags, dlc = _HEADER.unpack_from(datagram)
    return can.Message(
        timestamp=timestamp_s, arbitration_id=arbitration_id, is_extended_id=bool(flags & _EXTENDED),
        is_remote_frame=bool(flags & _REMOTE), is_error_frame=bool(flags & _ERROR),
        is_fd=bool(flags & _FD), bitrate_switch=bool(flags & _BRS),
        error_state_indicator=bool(flags & _ESI), dlc=dlc, data=datagram[_HEADER.size:],
        channel=channel, check=False)


class UnixSocketBus(can.BusABC):
    def __init__(self, channel: str, receive_own_messages: bool = False, **kwargs: object) -> None:
        self.directory = Path(str(channel)) if "/" in str(channel) else private_channel_dir(str(channel))
        name = f"{os.getpid()}-{next(_instances)}"
        self.path = self.directory / name
        if len(str(self.path).encode()) > _MAX_PATH:
            raise can.CanInitializationError(
                f"unix CAN channel {channel!r} is too long for a socket path: use a directory path "
                f"of at most {_MAX_PATH - 16} characters")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        foreign = _foreign_entries(self.directory)
        if foreign:
            raise can.CanInitializationError(
                f"unix CAN channel {self.directory} holds {', '.join(foreign[:5])}"
                f"{' and more' if len(foreign) > 5 else ''}, which are not bus sockets: a channel directory "
                "belongs to the bus alone; choose an empty or new directory (or a bare name such as can0)")
        self.receive_own_messages = receive_own_messages
        # Listen under a hidden name first, so no peer ever finds a socket that does not accept yet.
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        hidden = self.directory / f".{name}"
        self._listener.bind(str(hidden))
        self._listener.listen(64)
        self._listener.setblocking(False)
        os.rename(hidden, self.path)
        self._incoming: list[socket.socket] = []
        self._outgoing: dict[str, socket.socket] = {}
        self._own: list[bytes] = []
        self._peers_mtime_ns = -1
        self._scanned_s = -math.inf
        self.overruns = 0
        self.channel_info = f"unix socket bus {self.directory}"
        super().__init__(channel=str(channel), **kwargs)

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        if self._own:
            return unpack_frame(self._own.pop(0), time.time(), str(self.directory)), False
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._listener, *self._incoming], [], [], wait)
            for sock in ready:
                if sock is self._listener:
                    self._accept()
                    continue
                try:
                    datagram = sock.recv(_HEADER.size + 64)
                except OSError:
                    datagram = b""
                if len(datagram) < _HEADER.size:  # the sender ended
                    self._incoming.remove(sock)
                    sock.close()
                    continue
                # Stamped on arrival, as a CAN controller does.
                return unpack_frame(datagram, time.time(), str(self.directory)), False
            if deadline is not None and time.monotonic() >= deadline:
                return None, False

    def _accept(self) -> None:
        try:
            sock, _ = self._listener.accept()
        except BlockingIOError:
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._incoming.append(sock)

    def _connect_new_peers(self) -> None:
        # The directory's mtime says when someone joined; it ticks coarsely (a few ms), so two
        # joining within one tick would hide the second: rescan every RESCAN_S as well.
        mtime = self.directory.stat().st_mtime_ns
        now = time.monotonic()
        if mtime == self._peers_mtime_ns and now - self._scanned_s < RESCAN_S:
            return
        self._peers_mtime_ns, self._scanned_s = mtime, now
        for entry in os.scandir(self.directory):
            if (not _PEER_NAME.fullmatch(entry.name) or entry.path == str(self.path)
                    or entry.path in self._outgoing):
                continue
            try:
                if not stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode):
                    continue  # not a participant: never touched
            except OSError:
                continue
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                sock.connect(entry.path)
            except ConnectionRefusedError:
                sock.close()
                _unlink(entry.path)  # a socket left behind by a participant that was killed
                continue
            except OSError:
                sock.close()  # gone meanwhile, or not ours to use: one bad entry never fails a send
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            self._outgoing[entry.path] = sock

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        datagram = pack_frame(msg)
        self._connect_new_peers()
        if self.receive_own_messages:
            self._own.append(datagram)
        acknowledged = False
        for path, sock in list(self._outgoing.items()):
            try:
                sock.send(datagram)
                acknowledged = True
            except BlockingIOError:
                # The receiver's controller acknowledges, but its full buffer loses the frame.
                acknowledged = True
                self.overruns += 1
            except OSError:
                sock.close()  # that participant ended
                del self._outgoing[path]
        if not acknowledged:
            raise can.CanOperationError(f"{self.channel_info}: no other node acknowledged the frame")

    def shutdown(self) -> None:
        super().shutdown()
        for sock in [self._listener, *self._incoming, *self._outgoing.values()]:
            sock.close()
        _unlink(str(self.path))

    @staticmethod
    def _detect_available_configs() -> list:
        return []


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
