"""``<param name value [type]>`` values typed as launch_ros types them, written for rcl's ``-p``.

launch_ros reads a value as YAML 1.1 (``1_000`` and ``0x10`` are integers, ``yes`` is true) and
accepts only a boolean, integer, float, string or a list of one of those (strings may not mix
with numbers): a mapping, ``null``, a date or ``[1, a]`` is an error. ``type`` (str, int, float,
bool, list_of_str, ..., yaml) forces the type instead. The typed value is written back as YAML,
as launch_ros writes its parameter file, so rcl reads the same value from ``-p name:=VALUE``.
"""

from __future__ import annotations

import yaml

from bms_tools.launcher.errors import LaunchError, Location
from bms_tools.launcher.substitutions import yaml_bool, yaml_value

SCALARS = {"str": str, "int": int, "float": float, "bool": bool}
TYPES = sorted([*SCALARS, *(f"list_of_{name}" for name in SCALARS), "yaml"])


def parameter_value(text: str, type_name: str | None, where: Location, name: str) -> str:
    """The value of parameter ``name`` as rcl's ``-p`` reads it, typed like launch_ros."""
    if type_name is not None and type_name not in TYPES:
        raise LaunchError(where, f"<param name={name!r}>: type must be one of {', '.join(TYPES)}, got {type_name!r}")
    try:
        value = _typed(text, None if type_name in (None, "yaml") else type_name, where)
    except ValueError as exc:
        raise LaunchError(where, f"<param name={name!r}> value {text!r}: {exc}") from None
    return _as_yaml(value)


def _typed(text: str, type_name: str | None, where: Location) -> object:
    if text == "":
        return ""
    if type_name is None:
        value = yaml_value(text)
        if not _allowed(value):
            raise ValueError(f"YAML reads it as {type(value).__name__} {value!r}; a parameter is a "
                             "bool, int, float, string or a list of one of those (quote a string: "
                             "value=\"'...'\", or say type=\"str\")")
        return value
    if type_name == "str":
        return text
    if type_name in ("int", "float"):
        return SCALARS[type_name](text)
    if type_name == "bool":
        try:
            return yaml_bool(text, where, "value")
        except LaunchError:
            raise ValueError("not a boolean") from None
    member = SCALARS[type_name.removeprefix("list_of_")]
    value = yaml_value(text)
    if not isinstance(value, list) or not all(type(item) is member for item in value):
        raise ValueError(f"not a list of {member.__name__}")
    return value


def _allowed(value: object) -> bool:
    if isinstance(value, list):
        return len({type(item) for item in value}) <= 1 and all(type(item) in SCALARS.values() for item in value)
    return type(value) in SCALARS.values()


def _as_yaml(value: object) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf"))
    return text.removesuffix("\n").removesuffix("\n...")
