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


def test_a_sender_never_touches_what_is_not_a_bus_socket(can_dir: str) -> None:
    with can.Bus(interface="unix", channel=can_dir) as sender, can.Bus(interface="unix", channel=can_dir) as receiver:
        # Put there after the buses started (a start refuses them): a file, a directory, a link and a
        # socket of another name, each of which a send used to connect to and remove, or fail on.
        keep = {"important.txt": b"do not lose me", "12345-6.txt": b"not a socket either"}
        for name, content in keep.items():
            with open(os.path.join(can_dir, name), "wb") as f:
                f.write(content)
        os.mkdir(os.path.join(can_dir, "777-1"))
        os.symlink("/nonexistent", os.path.join(can_dir, "778-1"))
        import socket

        other = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        other.bind(os.path.join(can_dir, "not-a-peer"))
        other.close()
        before = sorted(os.listdir(can_dir))
        for n in range(3):
            sender.send(can.Message(arbitration_id=0x10 + n, data=b"x", is_extended_id=False))
            assert receiver.recv(timeout=10.0).arbitration_id == 0x10 + n
        assert sorted(os.listdir(can_dir)) == before
        for name, content in keep.items():
            with open(os.path.join(can_dir, name), "rb") as f:
                assert f.read() == content


def test_a_channel_directory_holding_other_files_is_refused(can_dir: str) -> None:
    path = os.path.join(can_dir, "important.txt")
    with open(path, "w") as f:
        f.write("data")
    with pytest.raises(can.CanInitializationError, match=f"{can_dir} holds important.txt, which are not bus sockets"):
        can.Bus(interface="unix", channel=can_dir)
    assert os.path.exists(path)


def test_a_bare_channel_name_is_a_private_directory_of_the_user(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    with can.Bus(interface="unix", channel="c0") as a, can.Bus(interface="unix", channel="c0") as b:
        a.send(can.Message(arbitration_id=5, data=b"", is_extended_id=False))
        assert b.recv(timeout=10.0).arbitration_id == 5
        assert str(a.directory) == str(tmp_path / "bms-can" / "c0")
    assert (tmp_path / "bms-can").stat().st_mode & 0o777 == 0o700
    os.chmod(tmp_path / "bms-can", 0o755)  # others may enter: refused
    with pytest.raises(can.CanInitializationError, match="mode 0700"):
        can.Bus(interface="unix", channel="c0")


def test_a_receiver_that_does_not_read_loses_frames_counted_as_overruns(can_dir: str) -> None:
    with can.Bus(interface="unix", channel=can_dir) as sender, can.Bus(interface="unix", channel=can_dir) as idle:
        for n in range(100_000):  # the receiver's buffer fills long before (about 1 MiB)
            sender.send(can.Message(arbitration_id=n & 0x7FF, data=bytes(8), is_extended_id=False))
            if sender.overruns:
                break
        assert sender.overruns == 1  # the frame is lost, the send does not fail
        assert idle.recv(timeout=10.0).arbitration_id == 0  # what its buffer kept is still delivered
