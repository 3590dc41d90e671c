"""Reads ROS 2 XML launch files (the launch_xml frontend) into the processes they start.

Semantics follow launch / launch_ros on Jazzy for the vocabulary in docs/launch.md:
- ``<arg>`` keeps a value that is already set (command line, ``<include>`` argument, an outer
  file) and otherwise takes its default; without a default it is required.
- ``<group>`` is scoped: args, lets and pushed namespaces inside it do not leak out.
- ``<include>`` is not scoped (Jazzy's IncludeLaunchDescription is not): what the included file
  sets stays set; wrap it in a ``<group>`` to contain it. ``$(dirname)`` is the included file's.
  An unconditional required argument of the included file must be passed to the ``<include>``.
- Relative ``<include file>`` and ``<param from>`` paths are relative to the current directory.
Anything outside that vocabulary is an error naming the file and line, so a misspelt attribute
cannot be silently ignored. What ``ros2 launch`` lets pass with at most a warning (an argument
nobody declares, a missing parameter file) is a warning, or an error with ``strict``.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from rclpy.exceptions import InvalidNamespaceException, InvalidNodeNameException
from rclpy.validate_namespace import validate_namespace
from rclpy.validate_node_name import validate_node_name

from bms_tools.launcher.errors import LaunchError, Location
from bms_tools.launcher.model import NodeAction, join_namespace
from bms_tools.launcher.params import parameter_value
from bms_tools.launcher.substitutions import Scope, as_bool, split_command_line, substitute, yaml_bool
from bms_tools.launcher.xmlreader import Element, read_xml

_CONDITIONS = {"if", "unless"}
_PROCESS_ATTRS = {"name", "output", "respawn", "respawn_delay", "launch-prefix", "on_exit"}
_OUTPUTS = ("screen", "log", "both", "own_log", "full")
_ATTRS: dict[str, set[str]] = {
    "arg": {"name", "default", "description"} | _CONDITIONS,
    "let": {"name", "value"} | _CONDITIONS,
    "node": {"pkg", "exec", "namespace", "args", "ros_args"} | _PROCESS_ATTRS | _CONDITIONS,
    "executable": {"cmd"} | _PROCESS_ATTRS | _CONDITIONS,
    "group": {"scoped"} | _CONDITIONS,
    "push-ros-namespace": {"namespace"} | _CONDITIONS,
    "include": {"file"} | _CONDITIONS,
}
_REQUIRED: dict[str, tuple[str, ...]] = {
    "arg": ("name",), "let": ("name", "value"), "node": ("pkg", "exec"), "executable": ("cmd",),
    "push-ros-namespace": ("namespace",), "include": ("file",),
}


@dataclass
class LaunchPlan:
    nodes: list[NodeAction] = field(default_factory=list)
    declared: set[str] = field(default_factory=set)
    strict: bool = False
    warnings: list[str] = field(default_factory=list)

    def lenient(self, where: Location, message: str) -> None:
        """What ``ros2 launch`` accepts but is probably a mistake: a warning, an error if strict."""
        if self.strict:
            raise LaunchError(where, f"{message} (an error with --strict)")
        self.warnings.append(f"{where}: {message}")


def load(path: Path, arguments: dict[str, str], strict: bool = False) -> LaunchPlan:
    """Resolve ``path`` with command-line ``arguments`` (``name:=value``) into processes."""
    path = path.resolve()
    root = read_xml(path)
    if root.tag != "launch":
        raise LaunchError(root.where, f"the root element must be <launch>, got <{root.tag}>")
    _check(root, set())
    plan = LaunchPlan(strict=strict)
    scope = Scope(dict(arguments), None, path, frozenset(arguments))
    _actions(root.children, scope, plan)
    undeclared = sorted(set(arguments) - plan.declared)
    if undeclared:
        plan.lenient(Location(path, root.where.line),
                     f"argument(s) {', '.join(undeclared)} given on the command line but not declared "
                     f"by this launch file (ros2 launch ignores them); declared: "
                     f"{', '.join(sorted(plan.declared)) or 'none'}")
    return plan


def _check(element: Element, allowed: set[str]) -> None:
    unknown = sorted(set(element.attrs) - allowed)
    if unknown:
        raise LaunchError(element.where, f"<{element.tag}> has no attribute '{unknown[0]}'; "
                                         f"allowed: {', '.join(sorted(allowed)) or 'none'}")
    missing = [a for a in _REQUIRED.get(element.tag, ()) if a not in element.attrs]
    if missing:
        raise LaunchError(element.where, f"<{element.tag}> needs attribute '{missing[0]}'")


def _actions(elements: list[Element], scope: Scope, plan: LaunchPlan) -> None:
    for element in elements:
        if element.tag not in _ATTRS:
            raise LaunchError(element.where, f"unknown tag <{element.tag}>; known: "
                                             f"{', '.join(sorted(_ATTRS))}")
        _check(element, _ATTRS[element.tag])
        if not _condition_holds(element, scope):
            continue
        handler = _HANDLERS[element.tag]
        conditional = scope.conditional
        scope.conditional = conditional or bool(_CONDITIONS & set(element.attrs))
        try:
            handler(element, scope, plan)
        finally:
            scope.conditional = conditional


def _condition_holds(element: Element, scope: Scope) -> bool:
    if "if" in element.attrs and "unless" in element.attrs:
        raise LaunchError(element.where, f"<{element.tag}> may have 'if' or 'unless', not both")
    for attr, wanted in (("if", True), ("unless", False)):
        if attr in element.attrs:
            value = substitute(element.attrs[attr], scope, element.where)
            return as_bool(value, element.where, f"condition {attr}={element.attrs[attr]!r}") == wanted
    return True


def _no_children(element: Element) -> None:
    if element.children:
        child = element.children[0]
        raise LaunchError(child.where, f"<{element.tag}> takes no child elements, got <{child.tag}>")


def _arg(element: Element, scope: Scope, plan: LaunchPlan) -> None:
    _no_children(element)
    name = substitute(element.attrs["name"], scope, element.where)
    plan.declared.add(name)
    if "default" not in element.attrs:
        if name not in scope.configurations:
            raise LaunchError(element.where, f"argument '{name}' is required (it has no default): "
                                             f"pass {name}:=VALUE")
        if not scope.conditional and name not in scope.passed:
            raise LaunchError(element.where, f"argument '{name}' is required (it has no default) and only "
                                             "inherited: pass it to the <include> of this file with <arg name="
                                             f"'{name}' value=...> (ros2 launch does not let it inherit the value)")
        return
    if name not in scope.configurations:
        scope.configurations[name] = substitute(element.attrs["default"], scope, element.where)


def _let(element: Element, scope: Scope, plan: LaunchPlan) -> None:
    _no_children(element)
    name = substitute(element.attrs["name"], scope, element.where)
    scope.configurations[name] = substitute(element.attrs["value"], scope, element.where)


def _group(element: Element, scope: Scope, plan: LaunchPlan) -> None:
    scoped = yaml_bool(substitute(element.attrs.get("scoped", "true"), scope, element.where),
                       element.where, "scoped")
    inner = scope.child() if scoped else scope
    _actions(element.children, inner, plan)


def _push_namespace(element: Element, scope: Scope, plan: LaunchPlan) -> None:
    _no_children(element)
    pushed = substitute(element.attrs["namespace"], scope, element.where)
    scope.namespace = _valid_namespace(join_namespace(scope.namespace, pushed), element.where)


def _valid_namespace(namespace: str | None, where: Location) -> str | None:
    try:
        if namespace is not None:
            validate_namespace(namespace)
    except InvalidNamespaceException as exc:
        raise LaunchError(where, f"invalid namespace: {exc}") from None
    return namespace


def _cwd_path(text: str) -> Path:
    """A relative path is relative to the current directory, as under ``ros2 launch``."""
    return Path(text) if Path(text).is_absolute() else Path.cwd() / text


def _include(element: Element, scope: Scope, plan: LaunchPlan) -> None:
    target = _cwd_path(substitute(element.attrs["file"], scope, element.where))
    if not target.is_file():
        raise LaunchError(element.where, f"no launch file {target} (a relative path is relative to the "
                                         "current directory: write $(dirname)/... for one next to this file)")
    passed: dict[str, Location] = {}
    for child in element.children:
        if child.tag != "arg":
            raise LaunchError(child.where, f"<include> takes only <arg name value> children, got <{child.tag}>")
        _check(child, {"name", "value"})
        if "value" not in child.attrs:
            raise LaunchError(child.where, "<arg> inside <include> needs attribute 'value'")
        name = substitute(child.attrs["name"], scope, child.where)
        scope.configurations[name] = substitute(child.attrs["value"], scope, child.where)
        passed[name] = child.where
    root = read_xml(target.resolve())
    if root.tag != "launch":
        raise LaunchError(root.where, f"the root element must be <launch>, got <{root.tag}>")
    _check(root, set())
    included = LaunchPlan(plan.nodes, strict=plan.strict, warnings=plan.warnings)
    outer = scope.file, scope.passed, scope.conditional
    scope.file, scope.passed, scope.conditional = target.resolve(), frozenset(passed), False
    try:
        _actions(root.children, scope, included)
    finally:
        scope.file, scope.passed, scope.conditional = outer
    for name, where in passed.items():
        if name not in included.declared:
            plan.lenient(where, f"argument '{name}' is not declared by {target} (ros2 launch sets it "
                                f"anyway); declared: {', '.join(sorted(included.declared)) or 'none'}")
    plan.declared |= included.declared


# Split as launch splits them; launch-prefix is split like a shell line after substitution.
_COMMAND_LINES = {"args", "ros_args", "cmd"}


def _process(element: Element, scope: Scope, plan: LaunchPlan) -> None:
    where = element.where
    attrs = {key: substitute(value, scope, where) for key, value in element.attrs.items()
             if key not in _CONDITIONS | _COMMAND_LINES}
    lines = {key: split_command_line(element.attrs.get(key, ""), scope, where) for key in _COMMAND_LINES}
    on_exit = attrs.get("on_exit")
    if on_exit not in (None, "shutdown"):
        raise LaunchError(where, f"on_exit supports only 'shutdown', got {on_exit!r}")
    output = attrs.get("output", "log")
    if output not in _OUTPUTS:
        raise LaunchError(where, f"output must be one of {', '.join(_OUTPUTS)}, got {output!r}")
    try:
        respawn_delay_s = float(attrs.get("respawn_delay", "0"))
    except ValueError:
        raise LaunchError(where, f"respawn_delay must be a number of seconds, got "
                                 f"{attrs['respawn_delay']!r}") from None
    if respawn_delay_s < 0:
        raise LaunchError(where, f"respawn_delay must not be negative, got {respawn_delay_s:g}")
    is_node = element.tag == "node"
    if is_node and "name" in attrs:
        try:
            validate_node_name(attrs["name"])
        except InvalidNodeNameException as exc:
            raise LaunchError(where, f"invalid node name: {exc}") from None
    namespace = join_namespace(scope.namespace, attrs.get("namespace")) if is_node else None
    if not lines["cmd"] and not is_node:
        raise LaunchError(where, "<executable> has an empty 'cmd'")
    action = NodeAction(
        where=where, package=attrs["pkg"] if is_node else None,
        executable=attrs["exec"] if is_node else lines["cmd"][0], name=attrs.get("name"),
        namespace=_valid_namespace(namespace, where),
        # <executable cmd="prog a b"> runs a command line, not a package's node.
        args=lines["args"] if is_node else lines["cmd"][1:], ros_args=lines["ros_args"],
        prefix=shlex.split(attrs.get("launch-prefix", "")), output=output,
        respawn=yaml_bool(attrs.get("respawn", "false"), where, "respawn"),
        respawn_delay_s=respawn_delay_s, shutdown_on_exit=on_exit == "shutdown",
    )
    if not is_node:
        _no_children(element)
    for child in element.children:
        _node_child(child, scope, action, plan)
    plan.nodes.append(action)


def _node_child(child: Element, scope: Scope, action: NodeAction, plan: LaunchPlan) -> None:
    _no_children(child)
    if child.tag == "remap":
        _check(child, {"from", "to"})
        if not {"from", "to"} <= set(child.attrs):
            raise LaunchError(child.where, "<remap> needs attributes 'from' and 'to'")
        action.remaps.append((substitute(child.attrs["from"], scope, child.where),
                              substitute(child.attrs["to"], scope, child.where)))
    elif child.tag == "param":
        _check(child, {"name", "value", "type", "from"})
        if "from" in child.attrs:
            if set(child.attrs) != {"from"}:
                raise LaunchError(child.where, "<param from=...> takes no 'name', 'value' or 'type'")
            path = _cwd_path(substitute(child.attrs["from"], scope, child.where))
            if not path.is_file():
                plan.lenient(child.where, f"parameter file {path} does not exist, so it is skipped as ros2 "
                                          "launch does (a relative path is relative to the current directory)")
                return
            action.parameters.append(("file", str(path), ""))
        elif {"name", "value"} <= set(child.attrs):
            name = substitute(child.attrs["name"], scope, child.where)
            value = substitute(child.attrs["value"], scope, child.where)
            type_name = substitute(child.attrs["type"], scope, child.where) if "type" in child.attrs else None
            action.parameters.append(("param", name, parameter_value(value, type_name, child.where, name)))
        else:
            raise LaunchError(child.where, "<param> needs 'name' and 'value', or 'from' (a YAML file)")
    else:
        raise LaunchError(child.where, f"<node> takes <param> and <remap> children, got <{child.tag}>")


_HANDLERS = {
    "arg": _arg, "let": _let, "group": _group, "push-ros-namespace": _push_namespace,
    "include": _include, "node": _process, "executable": _process,
}
