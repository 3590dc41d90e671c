"""Substitutions of the launch_xml frontend: ``$(var x)``, ``$(env X [default])``,
``$(find-pkg-share pkg)``, ``$(eval 'expr')``, ``$(dirname)``.

Text is parsed into literal pieces and :class:`Substitution` calls whose arguments are text
themselves (substitutions nest, as in ``$(eval '$(var n) > 2')``), then evaluated against a
:class:`Scope`. Arguments are separated by whitespace; single quotes group an argument that holds
spaces, as launch's own frontend grammar does.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

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
    namespace: str = ""
    file: Path = Path(".")

    def child(self) -> Scope:
        return Scope(dict(self.configurations), self.namespace, self.file)


_ARITY = {"var": (1, 1), "env": (1, 2), "find-pkg-share": (1, 1), "eval": (1, 1), "dirname": (0, 0)}
# $(eval) sees math and a few harmless builtins, nothing that touches files, imports or processes.
_EVAL_NAMES: dict[str, object] = {
    **{name: getattr(math, name) for name in dir(math) if not name.startswith("_")},
    **{fn.__name__: fn for fn in (abs, bool, float, int, len, max, min, round, str)},
    "True": True, "False": False, "None": None,
}


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
    return _eval(args[0], where)


def _eval(expression: str, where: Location) -> str:
    try:
        value = eval(expression, {"__builtins__": {}}, dict(_EVAL_NAMES))  # noqa: S307 - restricted names
    except Exception as exc:
        raise LaunchError(where, f"$(eval {expression!r}) failed: {type(exc).__name__}: {exc}") from None
    return str(value)


def find_package_share(package: str, where: Location) -> str:
    from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

    try:
        return get_package_share_directory(package)
    except PackageNotFoundError:
        raise LaunchError(where, f"package '{package}' not found in AMENT_PREFIX_PATH "
                                 "(is the workspace built and env.sh sourced?)") from None


def as_bool(value: str, where: Location, what: str) -> bool:
    """Conditions and boolean attributes accept what launch accepts: true/false/1/0."""
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise LaunchError(where, f"{what} must be true/false/1/0, got {value!r}")
