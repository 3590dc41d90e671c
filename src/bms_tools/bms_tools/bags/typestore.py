"""Message definitions for bags, loaded from the installed ``.msg`` files.

Definitions come from each package's share directory (the colcon install for bms_interfaces,
the venv for std_msgs and friends), so the stored definitions and RIHS01 hashes are the ones
rclpy's publishers announce: a reader without our packages still decodes every message.
"""

from __future__ import annotations

from pathlib import Path

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from rosbags.interfaces import Nodetype
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

SEPARATOR = "=" * 80


class TypeLibrary:
    """A rosbags typestore that loads whole message packages on first use."""

    def __init__(self) -> None:
        self.store: Typestore = get_typestore(Stores.EMPTY)
        self._packages: set[str] = set()
        self._texts: dict[str, str] = {}

    def _load_package(self, package: str) -> None:
        if package in self._packages:
            return
        self._packages.add(package)
        try:
            msg_dir = Path(get_package_share_directory(package)) / "msg"
        except PackageNotFoundError as error:
            raise LookupError(
                f"message package {package!r} is not installed (AMENT_PREFIX_PATH); "
                "source env.sh or install it"
            ) from error
        types = {}
        for path in sorted(msg_dir.glob("*.msg")):
            name = f"{package}/msg/{path.stem}"
            self._texts[name] = path.read_text()
            types.update(get_types_from_msg(self._texts[name], name))
        self.store.register(types)

    def ensure(self, type_name: str) -> list[str]:
        """Load the type's package and every package its fields use; returns the type and its
        dependencies in order of first use."""
        ordered: list[str] = []
        pending = [type_name]
        while pending:
            name = pending.pop(0)
            if name in ordered:
                continue
            ordered.append(name)
            self._load_package(name.split("/")[0])
            if name not in self.store.fielddefs:
                raise LookupError(f"type {name} not found in the {name.split('/')[0]} package")
            pending.extend(_nested_types(self.store.fielddefs[name][1]))
        return ordered

    def definition(self, type_name: str) -> tuple[str, str]:
        """(concatenated ros2msg definition, RIHS01 hash) of a type.

        The definition is the installed .msg text of the type followed by each dependency's
        (``====...\nMSG: pkg/Name``), as rosbag2 stores it. rosbags' own generate_msgdef is not
        used: it drops the quotes of string constants (``INTERFACE_VERSION="1.0.0"``), which
        readers then fail to parse.
        """
        first, *dependencies = self.ensure(type_name)
        parts = [self._texts[first].strip()]
        for name in dependencies:
            package, _, short = name.split("/")
            parts.append(f"{SEPARATOR}\nMSG: {package}/{short}\n{self._texts[name].strip()}")
        return "\n".join(parts) + "\n", self.store.hash_rihs01(type_name)


def _nested_types(fields: list) -> list[str]:
    """Names of the message types a rosbags field list refers to, directly or as array elements."""
    nested = []
    for _name, (nodetype, detail) in fields:
        if nodetype in (Nodetype.ARRAY, Nodetype.SEQUENCE):
            nodetype, detail = detail[0]
        if nodetype == Nodetype.NAME:
            nested.append(detail)
    return nested
