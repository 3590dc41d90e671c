"""The ``board`` executable: the slave module nodes (and optionally the current sensor node) of one
physical slave board, each backed by a hardware driver (launch/boards.launch.xml).

Drivers are plug-ins: a package registers a factory under the entry point group
``bms_slave.afe_backends`` (``factory(pack, module_id) -> AfeBackend``) or
``bms_slave.pack_sensor_backends`` (``factory(pack) -> PackSensorBackend``), and the board
selects it by name. No hardware driver ships yet; docs/simulation.md ("Hardware backends") says
how to write one. A name that is not installed stops the process with an error that lists the
installed ones.

Parameters (read by a short-lived ``board`` node; every node of the process sees them):
  pack (demo)                 pack configuration name or path
  modules ("" = every module)  module ids this board carries, e.g. "0, 1"
  afe_backend ("")            AFE driver name (required)
  current_sensor_backend ("") pack sensor driver name; "" = this board has no current sensor
  sample_period_s (0.1)       sampling period of each module and of the current sensor
"""

from __future__ import annotations

import sys
import threading
from importlib import metadata

from rclpy.node import Node

from bms_common.lifecycle import declare, run_main
from bms_common.pack_config import load_pack_config
from bms_slave.module_node import ModuleNode
from bms_slave.sim_host import CurrentSensorNode

AFE_GROUP = "bms_slave.afe_backends"
PACK_SENSOR_GROUP = "bms_slave.pack_sensor_backends"


class BackendNotFound(LookupError):
    pass


def installed(group: str) -> list[str]:
    return sorted(point.name for point in metadata.entry_points(group=group))


def load_factory(group: str, name: str):
    for point in metadata.entry_points(group=group):
        if point.name == name:
            return point.load()
    known = ", ".join(installed(group)) or "none"
    raise BackendNotFound(f"no driver {name!r} in entry point group {group} (installed: {known})")


def module_ids(value: object, modules: int, where: str) -> list[int]:
    """``modules`` as given: "" (every module), "0, 1", "[0, 1]" or an integer list."""
    items = value if isinstance(value, list) else str(value).strip().strip("[]").split(",")
    try:
        wanted = [int(str(item).strip()) for item in items if str(item).strip()]
    except ValueError:
        raise ValueError(f"{where}: parameter modules must list module ids, e.g. \"0, 1\"; got {value!r}") from None
    if len(set(wanted)) != len(wanted):
        raise ValueError(f"{where}: parameter modules lists a module twice: {value!r}")
    outside = [m for m in wanted if not 0 <= m < modules]
    if outside:
        raise ValueError(f"{where}: modules {outside} are not in the pack (0..{modules - 1})")
    return wanted or list(range(modules))


def build(stop: threading.Event, cli_args: list[str] | None = None) -> list[Node]:
    # The parameters are read through a short-lived node: the process hosts only the module and
    # sensor nodes, so boards started without a launch-file name never collide.
    board = Node("board", namespace="/bms", cli_args=cli_args)
    try:
        return _build(board, cli_args)
    finally:
        board.destroy_node()


def _build(board: Node, cli_args: list[str] | None) -> list[Node]:
    pack = load_pack_config(str(declare(board, "pack", "demo")))
    wanted = module_ids(declare(board, "modules", ""), pack.modules, board.get_fully_qualified_name())
    afe_name = str(declare(board, "afe_backend", ""))
    sensor_name = str(declare(board, "current_sensor_backend", ""))
    if not afe_name:
        raise ValueError(f"{board.get_fully_qualified_name()}: parameter afe_backend is required "
                         f"(installed AFE drivers: {', '.join(installed(AFE_GROUP)) or 'none'})")
    afe_factory = load_factory(AFE_GROUP, afe_name)
    namespace = board.get_namespace()
    nodes: list[Node] = []
    for module_id in wanted:
        backend = afe_factory(pack, module_id)
        nodes.append(ModuleNode(module_id, backend, namespace=namespace, cli_args=cli_args))
    if sensor_name:
        sensor = load_factory(PACK_SENSOR_GROUP, sensor_name)(pack)
        nodes.append(CurrentSensorNode(sensor, sensor_name, namespace, self_timed=True, cli_args=cli_args))
    return nodes


def main(args: list[str] | None = None) -> int:
    stop = threading.Event()
    try:
        return run_main(lambda: build(stop), args, stop=stop)
    except (BackendNotFound, ValueError) as error:
        print(f"board: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
