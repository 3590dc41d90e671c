"""What a launch file resolves to: the processes to run, with every substitution done."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bms_tools.launcher.errors import LaunchError, Location

LIFECYCLE_MANAGER = ("bms_common", "lifecycle_manager")


@dataclass
class NodeAction:
    """One ``<node>`` (``package`` set) or ``<executable>`` (``package`` None, ``executable`` is
    the command)."""

    where: Location
    package: str | None
    executable: str
    name: str | None = None
    namespace: str | None = None  # None: no namespace given or pushed, so no __ns remap
    # ("param", name, YAML value) or ("file", path, ""), in file order: later entries win, as in rcl.
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
        """What follows the node's own ``args``, in launch_ros's order: ``ros_args`` in a
        ``--ros-args`` block of their own, then ``--ros-args`` with the name, namespace,
        parameters and remaps. rcl takes the first ``__node`` remap and the last value of a
        parameter, so a conflicting ``ros_args`` renames the node but does not change a
        ``<param>``."""
        if self.package is None:
            return []
        out = ["--ros-args", *self.ros_args] if self.ros_args else []
        out.append("--ros-args")
        if self.name:
            out += ["-r", f"__node:={self.name}"]
        if self.namespace:
            out += ["-r", f"__ns:={self.namespace}"]
        for kind, key, value in self.parameters:
            out += ["-p", f"{key}:={value}"] if kind == "param" else ["--params-file", key]
        for source, target in self.remaps:
            out += ["-r", f"{source}:={target}"]
        return out

    def command_line(self) -> list[str]:
        program = (executable_path(self.package, self.executable, self.where) if self.package
                   else self.executable)
        return [*self.prefix, program, *self.args, *self.ros_arguments()]


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


def join_namespace(outer: str | None, inner: str | None) -> str | None:
    """launch_ros semantics: an absolute namespace replaces, a relative one nests, the result is
    absolute; None when neither is given. An empty one given is the root: ``<push-ros-namespace
    namespace="">`` or ``namespace=""`` yields ``__ns:=/``."""
    if inner is None:
        joined = outer
    elif not outer or inner.startswith("/"):
        joined = inner
    else:
        joined = f"{'' if outer == '/' else outer}/{inner}"
    if joined is None:
        return None
    if joined != "/":
        joined = joined.rstrip("/")
    return joined if joined.startswith("/") else f"/{joined}"
