"""Launch file semantics: what ``bms launch`` resolves a file to, checked without starting it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from launch_support import SAMPLES, make_prefix, prefix_env  # noqa: E402

from bms_tools.launcher import composition  # noqa: E402
from bms_tools.launcher.command import launch_arguments  # noqa: E402
from bms_tools.launcher.errors import LaunchError  # noqa: E402
from bms_tools.launcher.model import NodeAction  # noqa: E402
from bms_tools.launcher.parser import load  # noqa: E402


@pytest.fixture(scope="module")
def prefix(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_prefix(tmp_path_factory.mktemp("prefix"))


@pytest.fixture(autouse=True)
def test_packages(prefix: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in prefix_env(prefix, tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(prefix / "lib" / "python"))
    monkeypatch.delenv("LAUNCH_TEST_SUFFIX", raising=False)


def nodes_of(path: Path, **arguments: str) -> dict[str, NodeAction]:
    return {node.label: node for node in load(path, arguments).nodes}


def ros_args(node: NodeAction) -> str:
    return " ".join(node.ros_arguments())


def test_defaults_lets_eval_params_and_remaps() -> None:
    nodes = nodes_of(SAMPLES / "semantics.launch.xml", pack="demo")
    configured = nodes["configured"]
    assert configured.namespace == "/bms"
    assert configured.args == ["--exit-code", "0"]
    assert ros_args(configured) == (
        "--ros-args --log-level warn --ros-args -r __node:=configured -r __ns:=/bms -p pack:=demo -p cells:=4 "
        f"--params-file {SAMPLES}/params.yaml -r in:=/bms/pack_demo")
    assert nodes["plain"].ros_arguments() == ["--ros-args", "-r", "__node:=plain"]
    ros = configured.ros_arguments()
    assert configured.command_line()[-len(ros) - 2:] == [*configured.args, *ros]


def test_command_line_arguments_override_defaults() -> None:
    nodes = nodes_of(SAMPLES / "semantics.launch.xml", pack="big", modules="6", use_extra="true")
    assert "-p cells:=12" in ros_args(nodes["configured"])
    assert "-r in:=/bms/pack_big" in ros_args(nodes["configured"])
    assert {"extra", "many"} <= set(nodes) and "no_extra" not in nodes


def test_conditions_env_and_find_pkg_share(prefix: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = nodes_of(SAMPLES / "semantics.launch.xml", pack="demo")
    assert {"no_extra", "env_plain"} <= set(nodes) and not {"extra", "many"} & set(nodes)
    assert f"-p share:={prefix}/share/launch_test_pkg" in ros_args(nodes["shared"])
    monkeypatch.setenv("LAUNCH_TEST_SUFFIX", "set")
    assert "env_set" in nodes_of(SAMPLES / "semantics.launch.xml", pack="demo")


def test_groups_scope_lets_and_namespaces() -> None:
    nodes = nodes_of(SAMPLES / "semantics.launch.xml", pack="demo")
    assert nodes["grouped"].namespace == "/bms"
    assert "-p label:=inner" in ros_args(nodes["grouped"])
    assert nodes["nested"].namespace == "/bms/deeper"
    assert nodes["absolute"].namespace == "/elsewhere"
    assert nodes["after_group"].namespace is None
    assert "-p label:=pack_demo" in ros_args(nodes["after_group"])


def test_includes_pass_arguments_and_leak_like_jazzy() -> None:
    nodes = nodes_of(SAMPLES / "includes.launch.xml")
    assert nodes["first_left"].namespace is None
    assert f"-p dir:={SAMPLES}" in ros_args(nodes["first_left"])
    assert nodes["second"].namespace == "/scoped"
    # What the first (ungrouped) include set stays set; the grouped one's does not.
    assert "-p seen:=from_first_left -p who:=first_left" in ros_args(nodes["after"])
    assert nodes["after"].namespace is None
    assert "-p who:=first_right" in ros_args(nodes_of(SAMPLES / "includes.launch.xml", side="right")["after"])


ERRORS = [
    ("unknown_tag", 3, "unknown tag <nod>"),
    ("unknown_attribute", 2, "<node> has no attribute 'nmae'"),
    ("unknown_substitution", 3, "unknown substitution '$(vra"),
    ("undefined_var", 2, "no argument or let named 'nope'"),
    ("bad_condition", 3, "must be true/false/1/0, got 'maybe'"),
    ("both_conditions", 2, "'if' or 'unless', not both"),
    ("eval_error", 2, "ZeroDivisionError"),
    ("param_without_value", 3, "<param> needs 'name' and 'value', or 'from'"),
    ("malformed_xml", 3, "not well-formed XML"),
    ("wrong_child", 3, "<node> takes <param> and <remap> children, got <arg>"),
    ("missing_attribute", 3, "<node> needs attribute 'exec'"),
    ("bad_on_exit", 2, "on_exit supports only 'shutdown'"),
    ("unknown_package", 2, "package 'no_such_pkg' not found"),
    ("unterminated", 2, "unterminated '$(var'"),
    ("wrong_root", 1, "root element must be <launch>"),
    ("bad_respawn", 2, "respawn must be a boolean"),
    # Rejected by ros2 launch too (launch / launch_ros, Jazzy):
    ("invalid_node_name", 2, "invalid node name"),
    ("invalid_namespace", 3, "invalid namespace"),
    ("negative_respawn_delay", 2, "respawn_delay must not be negative"),
    ("executable_args", 2, "<executable> has no attribute 'args'"),
    ("param_mapping", 3, "YAML reads it as dict"),
    ("param_null", 3, "YAML reads it as NoneType"),
    ("param_date", 3, "YAML reads it as date"),
    ("param_mixed_list", 3, "YAML reads it as list"),
    ("param_bad_type", 3, "invalid literal for int()"),
]


@pytest.mark.parametrize(("name", "line", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_name_file_and_line(name: str, line: int, message: str) -> None:
    path = SAMPLES / "errors" / f"{name}.launch.xml"
    with pytest.raises(LaunchError) as caught:
        load(path, {})
    assert str(caught.value).startswith(f"{path}:{line}: "), str(caught.value)
    assert message in str(caught.value)


def test_error_in_included_file_names_that_file() -> None:
    with pytest.raises(LaunchError) as caught:
        load(SAMPLES / "errors" / "include_missing_arg.launch.xml", {})
    assert str(caught.value).startswith(f"{SAMPLES / 'included.launch.xml'}:2: argument 'who' is required")
    # Set outside but not passed to the <include>: ros2 launch refuses it too.
    with pytest.raises(LaunchError, match=r"included.launch.xml:2: argument 'who' is required \(it has no "
                                          r"default\) and only inherited: pass it to the <include>"):
        load(SAMPLES / "errors" / "include_inherited_arg.launch.xml", {})


def test_required_and_undeclared_arguments() -> None:
    path = SAMPLES / "semantics.launch.xml"
    with pytest.raises(LaunchError, match=r"semantics.launch.xml:4: argument 'pack' is required"):
        load(path, {})
    # ros2 launch ignores an argument that no file declares: a warning, an error with --strict.
    message = "semantics.launch.xml:1: argument(s) pakc given on the command line but not declared"
    assert message in load(path, {"pack": "demo", "pakc": "demo"}).warnings[0]
    with pytest.raises(LaunchError, match=re.escape(message)):
        load(path, {"pack": "demo", "pakc": "demo"}, strict=True)


LENIENT = [
    ("missing_param_file", 3, "no_such.yaml does not exist, so it is skipped"),
    ("include_undeclared_arg", 4, "argument 'whom' is not declared by"),
]


@pytest.mark.parametrize(("name", "line", "message"), LENIENT, ids=[e[0] for e in LENIENT])
def test_what_ros2_launch_lets_pass_is_a_warning_or_strict_error(name: str, line: int, message: str) -> None:
    path = SAMPLES / "warnings" / f"{name}.launch.xml"
    (warning,) = load(path, {}).warnings
    assert warning.startswith(f"{path}:{line}: ") and message in warning, warning
    with pytest.raises(LaunchError, match=re.escape(message)):
        load(path, {}, strict=True)


def test_empty_command_line_value_is_refused() -> None:
    with pytest.raises(ValueError, match=r"launch argument 'mode' has no value"):
        launch_arguments(["mode:="])
    assert launch_arguments(["mode:=''"]) == {"mode": "''"}


def test_resolution_matches_ros2_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(SAMPLES)
    nodes = nodes_of(SAMPLES / "resolution.launch.xml")
    ordered = nodes["ordered"]
    # A substitution's value stays one argument; literal text is split like a shell line.
    assert ordered.args == ["--flag", "x y", "--joined=x y", "quoted words"]
    # ros_args first, in a block of their own: rcl takes the first __node and the last -p, so the
    # node is renamed but the <param> wins, as under ros2 launch.
    assert ordered.ros_arguments() == ["--ros-args", "-r", "__node:=renamed", "-p", "rate:=1",
                                       "--ros-args", "-r", "__node:=ordered", "-p", "rate:=2"]
    typed = dict(p[1:] for p in nodes["typed"].parameters)
    assert typed == {"underscored": "1000", "hex": "16", "word_bool": "true", "quoted": "'123'",
                     "as_string": "'1_000'", "as_int": "1000", "as_float": "2.0", "ints": "[1, 2]",
                     "words": "[a, b]", "empty": "''", "pi": "true"}
    assert nodes["typed"].respawn and nodes["typed"].output == "own_log"
    assert nodes["rooted"].namespace == "/" and "__ns:=/" in ros_args(nodes["rooted"])
    assert nodes["rooted"].respawn and not nodes["unnamespaced"].respawn
    assert nodes["unnamespaced"].namespace is None and "__ns" not in ros_args(nodes["unnamespaced"])
    assert nodes["empty_namespace"].namespace == "/"
    assert nodes["relative"].parameters == [("file", f"{SAMPLES}/params.yaml", "")]


def test_every_sample_outside_errors_and_warnings_loads_strictly(monkeypatch: pytest.MonkeyPatch) -> None:
    """As far as can be checked here, each is a file that ros2 launch runs without complaint."""
    monkeypatch.chdir(SAMPLES)  # for the samples that show relative paths
    required = {"semantics": {"pack": "demo"}, "included": {"who": "x"}}
    for path in sorted(SAMPLES.glob("*.launch.xml")):
        stem = path.name.removesuffix(".launch.xml")
        assert load(path, required.get(stem, {}), strict=True).nodes, path


def test_relative_paths_are_relative_to_the_current_directory(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    monkeypatch.chdir(SAMPLES)
    assert "included_relative" in nodes_of(SAMPLES / "relative_include.launch.xml")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(LaunchError, match=rf"relative_include.launch.xml:2: no launch file {tmp_path}/included"):
        load(SAMPLES / "relative_include.launch.xml", {})
    (warning,) = load(SAMPLES / "resolution.launch.xml", {}).warnings
    assert f"parameter file {tmp_path}/params.yaml does not exist" in warning


def test_unknown_executable_is_reported_at_its_node() -> None:
    path = SAMPLES / "errors" / "unknown_executable.launch.xml"
    with pytest.raises(LaunchError, match=rf"^{path}:2: package 'launch_test_pkg' has no executable 'no_such_exec'"):
        composition.isolated(load(path, {}).nodes)


def test_composed_mode_keeps_supervisor_contactor_and_manager_apart() -> None:
    def node(package: str, executable: str, **extra) -> NodeAction:
        return NodeAction(where=None, package=package, executable=executable, **extra)

    assert composition.composable_module(node("launch_test_pkg", "composable")) == "launch_test_pkg.composable"
    for apart in (node("bms_safety", "supervisor"), node("bms_master", "contactor"),
                  node("bms_common", "lifecycle_manager"), node("launch_test_pkg", "probe"),
                  node("launch_test_pkg", "composable", respawn=True),
                  node("launch_test_pkg", "composable", args=["-v"])):
        assert composition.composable_module(apart) is None, apart
