"""``bms launch`` with real processes: prefixed output, log files, respawn, required nodes,
ordered shutdown, escalation, composed mode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch_support import SAMPLES, Launch, make_prefix, prefix_env, read_events  # noqa: E402

from bms_common.testing import wait_for  # noqa: E402


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_prefix(tmp_path_factory.mktemp("prefix"))


@pytest.fixture
def env(prefix: Path, tmp_path: Path) -> dict[str, str]:
    return prefix_env(prefix, tmp_path)


@pytest.fixture(autouse=True)
def stop_leftover_launches() -> None:
    yield
    Launch.stop_all()


def probe_dir(env: dict[str, str]) -> Path:
    return Path(env["PROBE_DIR"])


def test_output_respawn_and_ordered_shutdown(env: dict[str, str], tmp_path: Path) -> None:
    launch = Launch([str(SAMPLES / "runtime.launch.xml"), "--log-dir", str(tmp_path / "logs")], env)
    events = probe_dir(env)
    launch.wait_line("[talker] hello from talker")
    launch.wait_line("[manager] hello from manager")
    wait_for(lambda: sum(e[0] == "start" for e in read_events(events, "flaky")) >= 3, 10.0,
             "flaky to be respawned twice")
    wait_for(lambda: (tmp_path / "logs" / "logger.log").exists()
             and "hello from logger" in (tmp_path / "logs" / "logger.log").read_text(), 5.0, "logger's log file")
    assert "[logger] hello from logger" in launch.output
    launch.interrupt()
    assert launch.wait() == 0
    manager = dict((e, t) for e, _, t in read_events(events, "manager"))
    talker = dict((e, t) for e, _, t in read_events(events, "talker"))
    # The manager got SIGINT first and had finished (bringing the nodes down) before anyone else
    # was signalled.
    assert manager["sigint"] < manager["exit"] < talker["sigint"], (manager, talker)
    assert "exit" in talker
    assert "flaky: respawning in 0.2 s" in launch.output


def test_stubborn_process_gets_sigterm(env: dict[str, str], tmp_path: Path) -> None:
    launch = Launch([str(SAMPLES / "runtime.launch.xml"), "stubborn:=true", "--sigint-timeout", "0.5",
                     "--log-dir", str(tmp_path / "logs")], env)
    launch.wait_line("[stubborn] hello from stubborn")
    launch.interrupt()
    assert launch.wait() == 0
    assert [e for e, _, _ in read_events(probe_dir(env), "stubborn")] == ["start", "sigint", "sigterm", "exit"]


@pytest.mark.parametrize(("code", "expected"), [("0", 0), ("3", 3)])
def test_required_node_ends_the_launch(env: dict[str, str], code: str, expected: int) -> None:
    launch = Launch([str(SAMPLES / "required.launch.xml"), f"code:={code}"], env)
    assert launch.wait() == expected
    assert "main has on_exit=shutdown" in launch.output
    assert [e for e, _, _ in read_events(probe_dir(env), "bystander")] == ["start", "sigint", "exit"]


def test_error_exit_code_and_message(env: dict[str, str]) -> None:
    launch = Launch([str(SAMPLES / "semantics.launch.xml")], env)
    assert launch.wait() == 2
    assert f"bms launch: error: {SAMPLES / 'semantics.launch.xml'}:4: argument 'pack' is required" in launch.output


def test_warnings_and_strict_mode(env: dict[str, str]) -> None:
    sample = str(SAMPLES / "warnings" / "missing_param_file.launch.xml")
    lenient = Launch([sample, "--dry-run"], env)
    assert lenient.wait() == 0
    assert f"bms launch: warning: {sample}:3: parameter file" in lenient.output
    strict = Launch([sample, "--dry-run", "--strict"], env)
    assert strict.wait() == 2
    assert f"bms launch: error: {sample}:3: parameter file" in strict.output
    empty = Launch([str(SAMPLES / "required.launch.xml"), "code:=", "--dry-run"], env)
    assert empty.wait() == 2 and "launch argument 'code' has no value" in empty.output


def test_dry_run_prints_processes_without_starting_them(env: dict[str, str]) -> None:
    launch = Launch([str(SAMPLES / "required.launch.xml"), "--dry-run"], env)
    assert launch.wait() == 0
    assert "2 processes (isolated)" in launch.output
    assert "[main] " in launch.output and "--exit-after 0.5 --exit-code 0 --ros-args -r __node:=main" in launch.output
    assert "# on_exit=shutdown" in launch.output
    assert not read_events(probe_dir(env), "main")


def composed_events(events: Path, name: str) -> list[str]:
    path = events / f"{name}.events"
    return path.read_text().splitlines() if path.exists() else []


def test_composed_mode_hosts_composable_nodes_in_one_process(env: dict[str, str]) -> None:
    dry = Launch([str(SAMPLES / "composed.launch.xml"), "--composed", "--dry-run"], env)
    assert dry.wait() == 0
    assert "3 processes (composed)" in dry.output, dry.output
    launch = Launch([str(SAMPLES / "composed.launch.xml"), "--composed"], env)
    events = probe_dir(env)
    launch.wait_line("[container] hosting 2 nodes", 20.0)
    launch.interrupt()
    assert launch.wait() == 0
    (pid_1, name_1, params_1), (pid_2, name_2, params_2) = (
        composed_events(events, name)[0].split(" ", 2) for name in ("first", "second"))
    assert pid_1 == pid_2
    assert (name_1, name_2) == ("/bms/first", "/bms/inner/second")
    assert "('rate_hz', 10)" in params_1 and "('rate_hz', 20)" in params_2
    assert read_events(events, "apart")[0][1] != int(pid_1)


def test_real_lifecycle_manager_brings_composed_nodes_down_before_they_are_signalled(
        tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    env = prefix_env(make_prefix(tmp_path_factory.mktemp("prefix"), fake_manager=False), tmp_path)
    launch = Launch([str(SAMPLES / "lifecycle.launch.xml"), "--composed"], env)
    launch.wait_line("[lifecycle_manager]", 20.0)
    wait_for(lambda: "activate" in [line.split(" ", 1)[1] for line in composed_events(tmp_path, "second")],
             20.0, "the manager to activate both nodes")
    launch.interrupt()
    assert launch.wait() == 0
    steps = [[line.split(" ", 1)[1] for line in composed_events(tmp_path, name)][1:] for name in ("first", "second")]
    assert steps == [["configure", "activate", "deactivate", "cleanup"]] * 2
    assert launch.output.index("[launch] lifecycle_manager: exited with code 0") < launch.output.index(
        "[launch] container: sent SIGINT")
