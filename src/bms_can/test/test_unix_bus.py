"""The Unix-socket python-can interface: a bus between processes through the stock python-can API,
with CAN's acknowledge behaviour and no network socket."""

from __future__ import annotations

import os
import subprocess
import sys

import can
import pytest

SENDER = """
import can, sys
bus = can.Bus(interface="unix", channel=sys.argv[1])
bus.send(can.Message(arbitration_id=0x123, data=b"hi", is_extended_id=False))
bus.send(can.Message(arbitration_id=0x1ABCDEF, data=bytes(8), is_extended_id=True))
bus.send(can.Message(arbitration_id=0x4, data=bytes(8), is_error_frame=True))
bus.shutdown()
"""


def test_frames_cross_processes_through_the_stock_api(can_dir: str) -> None:
    with can.Bus(interface="unix", channel=can_dir) as bus:
        subprocess.run([sys.executable, "-c", SENDER, can_dir], check=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        frames = [bus.recv(timeout=10.0) for _ in range(3)]
    assert (frames[0].arbitration_id, bytes(frames[0].data), frames[0].is_extended_id) == (0x123, b"hi", False)
    assert (frames[1].arbitration_id, frames[1].is_extended_id, frames[1].dlc) == (0x1ABCDEF, True, 8)
    assert frames[2].is_error_frame


def test_a_frame_nobody_receives_is_not_acknowledged(can_dir: str) -> None:
    with can.Bus(interface="unix", channel=can_dir) as alone:
        with pytest.raises(can.CanOperationError, match="no other node acknowledged"):
            alone.send(can.Message(arbitration_id=1, data=b"", is_extended_id=False))
        with can.Bus(interface="unix", channel=can_dir) as other:
            alone.send(can.Message(arbitration_id=2, data=b"x", is_extended_id=False))
            assert other.recv(timeout=5.0).arbitration_id == 2
        with pytest.raises(can.CanOperationError):  # the other node left
            alone.send(can.Message(arbitration_id=3, data=b"", is_extended_id=False))


def test_a_socket_left_by_a_killed_process_is_removed(can_dir: str) -> None:
    import socket

    stale = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    stale.bind(os.path.join(can_dir, "999999-0"))
    stale.close()  # bound but never listening: what a SIGKILLed participant leaves
    with can.Bus(interface="unix", channel=can_dir) as bus:
        with pytest.raises(can.CanOperationError):
            bus.send(can.Message(arbitration_id=1, data=b"", is_extended_id=False))
    assert os.listdir(can_dir) == []


def test_too_long_a_channel_is_refused_with_a_hint() -> None:
    with pytest.raises(can.CanInitializationError, match="too long for a socket path"):
        can.Bus(interface="unix", channel="/tmp/" + "x" * 120)
