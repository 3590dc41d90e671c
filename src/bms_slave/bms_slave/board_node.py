"""The ``board`` executable: the slave module nodes (and optionally the current sensor node) of one
physical slave board, each backed by a hardware driver (launch/boards.launch.xml).

Drivers are plug-ins: a package registers a factory under the entry point group
``bms_slave.afe_backends`` (``factory(pack, module_id) -> AfeBackend``) or
``bms_slave.pack_sensor_backends`` (``factory(pack) -> PackSensorBackend``), and the board
selects it by name. No hardware driver ships yet; docs/launch.md ("Prototype boards") says how
to write one. A name that is not installed stops the process with an error that lists the
installed ones. ``afe_backend:=sim`` is built in: simulated AFEs whose cells are in the plant of
a ``sim_host`` that leaves these modules out (``external_modules``), linked over /sim
(bms_slave.sim_link); run the board with ``use_sim_time:=true``. ``current_sensor_backend:=sim``
likewise: the simulated current sensor, measuring the plant of a ``sim_host`` started with
``current_sensor:=false``.

Parameters (read by a short-lived ``board`` node; every node of the process sees them):
  pack (demo)                 pack configuration name or path
  modules ("" = every module)  module ids this board carries, e.g. "0, 1"
  afe_backend ("")            AFE driver name (required); sim = the simulated AFE over /sim
  current_sensor_backend ("") pack sensor driver name; "" = this board has no current sensor;
                              sim = the simulated current sensor over /sim
  sample_period_s (0.1)       sampling period of each module and of the current sensor
"""

from __future__ import annotations

import sys
import threading
from importlib import metadata

from rclpy.node import Node

from bms_common.lifecycle import declare, run_main
from bms_common.pack_config import PackConfig, load_pack_config, parse_module_ids
from bms_slave.current_sensor_node import CurrentSensorNode, simulated_current_sensor
from bms_slave.fault_service import inject_fault_service
from bms_slave.faults import FaultInjector
from bms_slave.module_node import ModuleNode
from bms_slave.sim_afe import SimulatedAfe
from bms_slave.sim_config import load_sim_config
from bms_slave.sim_link import SimTruthLink

AFE_GROUP = "bms_slave.afe_backends"
PACK_SENSOR_GROUP = "bms_slave.pack_sensor_backends"
# Built in: simulated AFEs measuring the cells of sim_host's plant over /sim (docs/simulation.md).
SIM_BACKEND = "sim"


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
    where = f"{board.get_fully_qualified_name()}: parameter modules"
    listed = parse_module_ids(declare(board, "modules", ""), pack.modules, where)
    afe_name = str(declare(board, "afe_backend", ""))
    if afe_name == SIM_BACKEND and not listed:
        raise ValueError(f"{where} is required with afe_backend {SIM_BACKEND}: the modules sim_host leaves "
                         "out (its external_modules), e.g. \"2\"")
    wanted = listed or list(range(pack.modules))
    sensor_name = str(declare(board, "current_sensor_backend", ""))
    if not afe_name:
        raise ValueError(f"{board.get_fully_qualified_name()}: parameter afe_backend is required "
                         f"(installed AFE drivers: {', '.join(installed(AFE_GROUP)) or 'none'})")
    namespace = board.get_namespace()
    if afe_name == SIM_BACKEND:
        nodes = simulated_modules(pack, wanted, namespace, cli_args)
    else:
        afe_factory = load_factory(AFE_GROUP, afe_name)
        nodes = [ModuleNode(m, afe_factory(pack, m), namespace=namespace, cli_args=cli_args) for m in wanted]
    if sensor_name == SIM_BACKEND:
        nodes.extend(simulated_current_sensor(pack, namespace, cli_args))
    elif sensor_name:
        sensor = load_factory(PACK_SENSOR_GROUP, sensor_name)(pack)
        nodes.append(CurrentSensorNode(sensor, sensor_name, namespace, self_timed=True, cli_args=cli_args))
    return nodes


def simulated_modules(pack: PackConfig, wanted: list[int], namespace: str,
                      cli_args: list[str] | None) -> list[Node]:
    """Module nodes on simulated AFEs whose cells are in sim_host's plant: each samples when the
    plant's /sim/cell_truth for it arrives (bms_slave.sim_link), and takes the AFE faults."""
    link = SimTruthLink(pack.cells_per_module, pack.sensors_per_module, wanted, namespace=namespace,
                        cli_args=cli_args)
    sim = load_sim_config(pack)
    nodes: list[Node] = [link]
    for module_id in wanted:
        afe = SimulatedAfe.create(link, pack, sim, module_id)
        node = ModuleNode(module_id, afe, self_timed=False, namespace=namespace, cli_args=cli_args)
        inject_fault_service(node, FaultInjector(pack, afes={module_id: afe}))
        link.samplers[module_id] = node.sample
        nodes.append(node)
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
