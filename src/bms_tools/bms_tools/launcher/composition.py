"""Turns resolved nodes into processes: one per node (isolated mode), or as few as ARCHITECTURE.md
allows (composed mode).

Composed mode puts every composable node into one container process (``bms_tools.container``).
A node executable is composable when the module of its console entry point defines
``build(stop, cli_args)`` (docs/launch.md). These stay in processes of their own:
- the safety supervisor (any executable of ``bms_safety``) and the contactor node
  (``bms_master``/``contactor``): ARCHITECTURE.md, Processes;
- the lifecycle manager: it must be stopped, and finish deactivating the others, before anything
  else gets a signal, which a shared process could not do;
- nodes that respawn, have a launch-prefix or non-ROS ``args`` (a container cannot honour them),
  ``<executable>`` commands, and executables without ``build``.
"""

from __future__ import annotations

import ast
import json
import sys
from importlib import metadata, util

from bms_tools.launcher.model import NodeAction
from bms_tools.launcher.runner import ProcessSpec

ISOLATED_PACKAGES = {"bms_safety"}
ISOLATED_EXECUTABLES = {("bms_master", "contactor")}
CONTAINER_LABEL = "container"


def isolated(nodes: list[NodeAction]) -> list[ProcessSpec]:
    return [_own_process(node) for node in nodes]


def composed(nodes: list[NodeAction]) -> list[ProcessSpec]:
    specs: list[ProcessSpec] = []
    members: list[tuple[NodeAction, str]] = []
    container_at = 0  # the container starts where its first member would have, keeping file order
    for node in nodes:
        module = composable_module(node)
        if module is None:
            specs.append(_own_process(node))
            continue
        if not members:
            container_at = len(specs)
        members.append((node, module))
    if len(members) == 1:
        specs.insert(container_at, _own_process(members[0][0]))
    elif members:
        specs.insert(container_at, _container(members))
    return specs


def _own_process(node: NodeAction) -> ProcessSpec:
    return ProcessSpec(label=node.label, argv=node.command_line(), output=node.output,
                       respawn=node.respawn, respawn_delay_s=node.respawn_delay_s,
                       shutdown_on_exit=node.shutdown_on_exit, stop_first=node.is_lifecycle_manager)


def _container(members: list[tuple[NodeAction, str]]) -> ProcessSpec:
    argv = [sys.executable, "-m", "bms_tools.container"]
    for node, module in members:
        node.command_line()  # the same checks as an own process: the package and executable exist
        argv += ["--node", json.dumps({"module": module, "label": node.label,
                                       "cli_args": node.ros_arguments()})]
    nodes = [node for node, _ in members]
    return ProcessSpec(
        label=CONTAINER_LABEL, argv=argv,
        output="screen" if all(n.output == "screen" for n in nodes) else "both",
        # The container ends when any member asks to stop (e.g. a simulation's duration elapsed),
        # so it ends the launch when any member would have.
        shutdown_on_exit=any(n.shutdown_on_exit for n in nodes),
    )


def composable_module(node: NodeAction) -> str | None:
    """The module of the node's entry point if it can join a container, else None."""
    if (node.package is None or node.package in ISOLATED_PACKAGES or node.is_lifecycle_manager
            or (node.package, node.executable) in ISOLATED_EXECUTABLES
            or node.respawn or node.prefix or node.args):
        return None
    module = entry_point_module(node.package, node.executable)
    return module if module and defines_build(module) else None


# Executables installed as scripts rather than console entry points (lib/<package>/<name>) name
# their module under this entry point group: ``[bms_composable] recorder = package.module``.
COMPOSABLE_GROUP = "bms_composable"


def entry_point_module(package: str, executable: str) -> str | None:
    try:
        points = metadata.distribution(package).entry_points
    except metadata.PackageNotFoundError:
        return None
    for point in points:
        if point.group in ("console_scripts", COMPOSABLE_GROUP) and point.name == executable:
            return point.value.split(":")[0].strip()
    return None


def defines_build(module: str) -> bool:
    """Read the module's source rather than importing it: the launcher stays light and a node
    module's import-time work happens only in the process that runs the node."""
    spec = util.find_spec(module)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return False
    with open(spec.origin, encoding="utf-8") as source:
        tree = ast.parse(source.read(), spec.origin)
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef) and statement.name == "build":
            return len(statement.args.posonlyargs) + len(statement.args.args) >= 2
    return False
