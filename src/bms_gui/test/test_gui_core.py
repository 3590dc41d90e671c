"""The GUI's plain cores without ROS or a browser: accounts, the view's binary grid, run names."""

from __future__ import annotations

import math
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from bms_gui.auth import FREE_FAILURES, Authenticator, UsersFileError, hash_password, load_users, save_users
from bms_gui.runs import RunError, resolve_run
from bms_gui.view import FLAG_BALANCING, FLAG_MISSING, FLAG_STALE, PackView

STAMP = SimpleNamespace(sec=10, nanosec=0)


def cells(module: int, volts: list[float]) -> SimpleNamespace:
    return SimpleNamespace(module_id=module, cell_voltages_v=volts, temperatures_degc=[25.0],
                           balancing=[i == 0 for i in range(len(volts))], cell_flags=[], module_flags=0,
                           header=SimpleNamespace(stamp=STAMP))


def test_login_checks_the_scrypt_hash_and_throttles_failures(tmp_path: Path) -> None:
    users = tmp_path / "users"
    save_users(users, {"op": hash_password("secret-pass", n=2**10)})
    auth = Authenticator(users)
    assert auth.login("op", "wrong", "1.2.3.4") is None
    session = auth.login("op", "secret-pass", "1.2.3.4")
    assert session and auth.session(auth.token_of(session)) is session
    assert auth.csrf_ok(session, session.csrf) and not auth.csrf_ok(session, "x")
    for _ in range(FREE_FAILURES + 1):
        auth.login("op", "wrong", "5.6.7.8")
    assert auth.wait_s("op", "5.6.7.8") > 0 and auth.wait_s("op", "1.2.3.4") == 0
    assert auth.login("nobody", "secret-pass", "1.2.3.4") is None


def test_a_broken_users_file_names_file_and_line(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("# operators\nop:plain-password\n")
    with pytest.raises(UsersFileError, match=r"users:2: expected name:scrypt"):
        load_users(users)
    assert not Authenticator(users).accounts_exist()


def test_grid_frame_marks_unknown_stale_missing_and_balancing() -> None:
    view = PackView(stale_after_s=1.0)
    view.on_cells(cells(0, [3.7, math.nan]), received=100.0)
    view.on_cells(cells(2, [3.6, 3.65]), received=98.0)  # silent for 2 s at now = 100
    frame = view.grid(now=100.0)
    assert frame[:4] == b"BMSG"
    modules, cell_count, sensors, _ = struct.unpack("<HHHH", frame[4:12])
    assert (modules, cell_count, sensors) == (3, 2, 1)
    volts = np.frombuffer(frame, np.float32, modules * cell_count, 12).reshape(modules, cell_count)
    flags = np.frombuffer(frame, np.uint8, modules * cell_count, len(frame) - modules * cell_count).reshape(modules, cell_count)
    assert volts[0, 0] == pytest.approx(3.7) and math.isnan(volts[0, 1])
    assert flags[0, 0] == FLAG_BALANCING and flags[0, 1] == 0
    assert flags[1, 0] & FLAG_MISSING and flags[2, 1] & FLAG_STALE and not flags[2, 1] & FLAG_MISSING
    assert view.status(now=100.0)["stale_modules"] == [1, 2]


def test_a_module_id_beyond_any_pack_is_refused() -> None:
    with pytest.raises(ValueError, match="module_id 5000"):
        PackView().on_cells(cells(5000, [3.7]), received=0.0)


def test_run_names_stay_inside_the_runs_directory(tmp_path: Path) -> None:
    (tmp_path / "runs" / "good").mkdir(parents=True)
    (tmp_path / "runs" / "good" / "metadata.yaml").write_text("x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "metadata.yaml").write_text("x")
    (tmp_path / "runs" / "link").symlink_to(tmp_path / "outside")
    assert resolve_run(tmp_path / "runs", "good") == (tmp_path / "runs" / "good").resolve()
    for name, status in (("..", 400), ("../outside", 400), (".hidden", 400), ("link", 400), ("none", 404)):
        with pytest.raises(RunError) as error:
            resolve_run(tmp_path / "runs", name)
        assert error.value.status == status, name
