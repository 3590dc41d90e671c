"""What a launch file resolves to: the processes to run, with every substitution done."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bms_tools.launcher.errors import LaunchError, Location

LIFECYCLE_MANAGER = ("bms_common", "lifecycle_manager")
EMPTY_YAML = "''"


@dataclass
class NodeAction:
    """One ``<node>`` (``package`` set) or ``<executable>`` (``package`` None, ``executable`` is
    the command)."""

    where: Location
    package: str | None
    executable: str
    name: str | None = None
    namespace: str = ""
    # ("param", name, value) or ("file", path, ""), in file order: later entries win, as in rcl.
    parameters: list[tuple[str, str, str]] = field(default_factory=list)
    remaps: list[tuple[str, str]] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    ros_args: list[str] = field(default_factory=list)
    prefix: list[str] = field(default_factory=list)
    output: str = "log"
    respawn: bool = False
    respawn_delay_s: float = 0.0
    shutdown_on_exit: bool = False

    @property
    def label(self) -> str:
        return self.name or os.path.basename(self.executable)

    @property
    def is_lifecycle_manager(self) -> bool:
        return (self.package, self.executable) == LIFECYCLE_MANAGER

    def ros_arguments(self) -> list[str]:
        """The ``--ros-args`` part of the command line (without the ``--ros-args`` marker)."""
        if self.package is None:
            return []
        out: list[str] = []
        if self.name:
            out += ["-r", f"__node:={self.name}"]
        if self.namespace:
            out += ["-r", f"__ns:={self.namespace}"]
        for kind, key, value in self.parameters:
            # rcl reads `-p` values as YAML and rejects an empty one; '' is YAML's empty string,
            # which is what launch_ros passes for value="".
            out += ["-p", f"{key}:={value or EMPTY_YAML}"] if kind == "param" else ["--params-file", key]
        for source, target in self.remaps:
            out += ["-r", f"{source}:={target}"]
        return out + self.ros_args

    def command_line(self) -> list[str]:
        ros = self.ros_arguments()
        program = (executable_path(self.package, self.executable, self.where) if self.package
                   else self.executable)
        return [*self.prefix, program, *self.args, *(["--ros-args", *ros] if ros else [])]


def executable_path(package: str, executable: str, where: Location) -> str:
    """``<prefix of package>/lib/<package>/<executable>``, where ament installs node executables."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        prefix = get_package_prefix(package)
    except PackageNotFoundError:
        raise LaunchError(where, f"package '{package}' not found in AMENT_PREFIX_PATH "
                                 "(is the workspace built and env.sh sourced?)") from None
    path = Path(prefix) / "lib" / package / executable
    if not os.access(path, os.X_OK):
        raise LaunchError(where, f"package '{package}' has no executable '{executable}' (looked for {path})")
    return str(path)


def join_namespace(outer: str, inner: str) -> str:
    """launch_ros semantics: an absolute namespace replaces, a relative one nests."""
    if inner.startswith("/"):
        return inner.rstrip("/") or "/"
    parts = [p for p in (outer.strip("/"), inner.strip("/")) if p]
    return "/" + "/".join(parts) if parts else ""
