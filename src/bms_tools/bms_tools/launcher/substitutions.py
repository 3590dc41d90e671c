"""Substitutions of the launch_xml frontend: ``$(var x)``, ``$(env X [default])``,
``$(find-pkg-share pkg)``, ``$(eval 'expr')``, ``$(dirname)``.

Text is parsed into literal pieces and :class:`Substitution` calls whose arguments are text
themselves (substitutions nest, as in ``$(eval '$(var n) > 2')``), then evaluated against a
:class:`Scope`. Arguments are separated by whitespace; single quotes group an argument that holds
spaces, as launch's own frontend grammar does.

Typed values follow launch's rules: boolean attributes (``respawn``, ``scoped``) and parameter
values are read as YAML 1.1 (``yes``/``on``/``True`` are true, ``1_000`` is an integer), while
conditions (``if``/``unless``) accept only true/false/1/0.
"""

from __future__ import annotations

import importlib
import math
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bms_tools.launcher.errors import LaunchError, Location

Text = list["str | Substitution"]


@dataclass
class Substitution:
    kind: str
    args: list[Text]


@dataclass
class Scope:
    """What substitutions see: launch configurations (args and lets), the pushed ROS namespace
    and the file being read."""

    configurations: dict[str, str] = field(default_factory=dict)
    namespace: str | None = None  # None: no <push-ros-namespace> yet (launch_ros tells it from "/")
    file: Path = Path(".")
    # Arguments given to the file being read (its <include>'s <arg>s, or the command line): an
    # unconditional required argument must be among them, it may not be inherited.
    passed: frozenset[str] = frozenset()
    conditional: bool = False  # inside an element or group with if/unless

    def child(self) -> Scope:
        return Scope(dict(self.configurations), self.namespace, self.file, self.passed, self.conditional)


_ARITY = {"var": (1, 1), "env": (1, 2), "find-pkg-share": (1, 1), "eval": (1, 2), "dirname": (0, 0)}


def parse(text: str, where: Location) -> Text:
    parts, end = _parse_text(text, 0, where, stop_chars="")
    assert end == len(text)
    return parts


def _parse_text(text: str, pos: int, where: Location, stop_chars: str) -> tuple[Text, int]:
    parts: Text = []
    literal: list[str] = []
    while pos < len(text) and text[pos] not in stop_chars:
        if text.startswith("$(", pos):
            if literal:
                parts.append("".join(literal))
                literal = []
            sub, pos = _parse_substitution(text, pos + 2, where)
            parts.append(sub)
        elif text[pos] == "\\" and pos + 1 < len(text) and text[pos + 1] in "'\\" and "'" in stop_chars:
            literal.append(text[pos + 1])
            pos += 2
        else:
            literal.append(text[pos])
            pos += 1
    if literal:
        parts.append("".join(literal))
    return parts, pos


def _parse_substitution(text: str, pos: int, where: Location) -> tuple[Substitution, int]:
    start = pos
    while pos < len(text) and (text[pos].isalnum() or text[pos] in "-_"):
        pos += 1
    kind = text[start:pos]
    if kind not in _ARITY:
        raise LaunchError(where, f"unknown substitution '$({kind} ...)' in {text!r}; "
                                 f"known: {', '.join(sorted(_ARITY))}")
    args: list[Text] = []
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            raise LaunchError(where, f"unterminated '$({kind}' in {text!r}: missing ')'")
        if text[pos] == ")":
            pos += 1
            break
        if text[pos] == "'":
            arg, pos = _parse_text(text, pos + 1, where, stop_chars="'")
            if pos >= len(text):
                raise LaunchError(where, f"unterminated quote in {text!r}")
            pos += 1
        else:
            arg, pos = _parse_text(text, pos, where, stop_chars=" \t\n)")
        args.append(arg)
    low, high = _ARITY[kind]
    if not low <= len(args) <= high:
        raise LaunchError(where, f"'$({kind})' takes {low}..{high} arguments, got {len(args)} in {text!r}")
    return Substitution(kind, args), pos


def evaluate(parts: Text, scope: Scope, where: Location) -> str:
    return "".join(p if isinstance(p, str) else _evaluate_one(p, scope, where) for p in parts)


def substitute(text: str, scope: Scope, where: Location) -> str:
    return evaluate(parse(text, where), scope, where)


def _evaluate_one(sub: Substitution, scope: Scope, where: Location) -> str:
    args = [evaluate(a, scope, where) for a in sub.args]
    if sub.kind == "var":
        if args[0] not in scope.configurations:
            raise LaunchError(where, f"$(var {args[0]}): no argument or let named '{args[0]}' is set here")
        return scope.configurations[args[0]]
    if sub.kind == "env":
        value = os.environ.get(args[0], args[1] if len(args) == 2 else None)
        if value is None:
            raise LaunchError(where, f"$(env {args[0]}): environment variable not set and no default given")
        return value
    if sub.kind == "find-pkg-share":
        return find_package_share(args[0], where)
    if sub.kind == "dirname":
        return str(scope.file.parent)
    return _eval(args[0], args[1] if len(args) == 2 else "math", where)


def _eval(expression: str, modules: str, where: Location) -> str:
    """launch's PythonExpression: Python with its builtins, the named modules (``math`` unless a
    second argument lists others, comma-separated) and, for ``math``, its names unqualified. A
    launch file is code that starts programs; it is trusted as much as under ``ros2 launch``."""
    names: dict[str, object] = {}
    try:
        for module in (m.strip() for m in modules.split(",") if m.strip()):
            loaded = importlib.import_module(module)
            if module == "math":
                names.update(vars(math))
            names[module] = loaded
        value = eval(expression, {}, names)  # noqa: S307 - what ros2 launch evaluates too
    except Exception as exc:
        raise LaunchError(where, f"$(eval {expression!r}) failed: {type(exc).__name__}: {exc}") from None
    return str(value)


def split_command_line(text: str, scope: Scope, where: Location) -> list[str]:
    """``args``, ``ros_args`` and ``cmd`` as launch splits them: the literal text between
    substitutions is split like a shell line, but what a substitution gives is never split
    (``--flag $(var a)`` with ``a`` = ``x y`` is two arguments, the second ``x y``); a
    substitution joins the literal text it touches (``--x=$(var a)`` is one argument)."""
    arguments: list[str] = []
    current: list[str] | None = None  # the argument being built, None between arguments

    def finish() -> None:
        nonlocal current
        arguments.append("".join(current or []))
        current = None

    for part in parse(text, where):
        if not isinstance(part, str):
            current = (current or []) + [_evaluate_one(part, scope, where)]
            continue
        try:
            tokens = shlex.split(part)
        except ValueError as exc:
            raise LaunchError(where, f"cannot split {text!r} into arguments: {exc}") from None
        if not tokens:  # only whitespace: it separates the substitutions around it
            finish()
            continue
        if part[0].isspace() and current:
            finish()
        current = (current or []) + [tokens[0]]
        if len(tokens) > 1:
            finish()
            arguments.extend(tokens[1:-1])
            current = [tokens[-1]]
        if part[-1].isspace():
            finish()
    if current:
        finish()
    return arguments


def find_package_share(package: str, where: Location) -> str:
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return get_package_share_directory(package)
    except PackageNotFoundError:
        raise LaunchError(where, f"package '{package}' not found in AMENT_PREFIX_PATH "
                                 "(is the workspace built and env.sh sourced?)") from None


def as_bool(value: str, where: Location, what: str) -> bool:
    """Conditions accept what launch's conditions accept: true/false/1/0, in any case."""
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise LaunchError(where, f"{what} must be true/false/1/0, got {value!r}")


def yaml_bool(value: str, where: Location, what: str) -> bool:
    """Boolean attributes (``respawn``, ``scoped``) as launch types them: 1/0, else YAML 1.1
    (true/false, yes/no, on/off, in any of YAML's spellings)."""
    typed = yaml_value({"1": "true", "0": "false"}.get(value, value))
    if not isinstance(typed, bool):
        raise LaunchError(where, f"{what} must be a boolean (true/false, yes/no, on/off, 1/0), got {value!r}")
    return typed


def yaml_value(text: str) -> object:
    """``text`` read as YAML 1.1 (PyYAML, as launch reads it), or ``text`` itself when it is not YAML."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
