"""Balancing over real DDS: a BalancingCommand reaches the slave and drains only its cells; a
frozen or confused master leaves no bleed resistor on."""

from __future__ import annotations

import signal

import numpy as np

from bms_common import topics
from bms_common.stamps import to_seconds
from bms_common.testing import RosHarness, params, start_node, wait_for
from bms_interfaces.msg import BalancingCommand, CellMeasurements

# A small pack with a strong bleed (0.37 A into 2 Ah cells) so the drain shows within minutes of
# simulated time; the physics is the same as in the shipped packs.
PACK = """chemistry: NMC
modules: 1
cells_per_module: 4
nominal_capacity_ah: 2.0
temperature_sensors: [[0, 1], [2, 3]]
balancing: {bleed_resistance_ohm: 10.0}
simulation: {seed: 5, initial_soc: 0.5, initial_soc_spread: 0.0}
"""


def test_commanded_cell_drains_and_the_others_do_not(tmp_path):
    pack = tmp_path / "small.yaml"
    pack.write_text(PACK)
    sim = start_node(tmp_path, "bms_slave", "sim_host", *params(pack=str(pack), speed=20.0, profile="rest"))
    manager = start_node(tmp_path, "bms_common", "lifecycle_manager", *params(pack=str(pack)),
                         "-p", "node_names:=[module_*, current_sensor]")
    ros = RosHarness("balancing_test")
    try:
        samples = ros.collect(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.CELL_MEASUREMENTS.qos)
        pub = ros.node.create_publisher(BalancingCommand, topics.BALANCING_COMMAND.name,
                                        topics.BALANCING_COMMAND.qos)
        wait_for(lambda: len(ros.snapshot(topics.CELL_MEASUREMENTS.name)) >= 10, 60, "samples")

        def stamp(m: CellMeasurements) -> float:
            return m.header.stamp.sec + m.header.stamp.nanosec * 1e-9

        def mean_voltages(first_s: float, last_s: float) -> np.ndarray:
            chosen = [m.cell_voltages_v for m in ros.snapshot(topics.CELL_MEASUREMENTS.name)
                      if first_s <= stamp(m) < last_s]
            return np.mean(chosen, axis=0)

        # The slave stops bleeding when commands stop (its safety timeout), so repeat the command
        # as a master does.
        command = BalancingCommand(module_id=0, balance=[True, False, False, False])
        ros.node.create_timer(0.05, lambda: pub.publish(command))
        start_s = stamp(wait_for(lambda: [m for m in list(samples) if m.balancing[0]], 30,
                                 "the slave to report cell 0 bleeding")[0])
        wait_for(lambda: stamp(samples[-1]) > start_s + 330, 120, "330 s of simulated bleeding")
        before, after = mean_voltages(start_s - 20, start_s), mean_voltages(start_s + 300, start_s + 330)
        change = after - before
        assert change[0] < -0.005, change  # cell 0 lost charge: its voltage fell by millivolts
        assert np.all(np.abs(change[1:] - change[1:].mean()) < 0.001), change  # the others alike
        assert all(m.balancing == [True, False, False, False] for m in list(samples)[-20:])
    finally:
        ros.close()
        manager.stop()
        sim.stop()


SPREAD_PACK = PACK.replace("initial_soc_spread: 0.0", "initial_soc_spread: 0.1")
BALANCING_TIMEOUT_S = 5.0  # the module node's balancing_timeout_s default


def test_a_frozen_master_leaves_no_bleed_resistor_on(tmp_path):
    """The master commands bleeding, then freezes (SIGSTOP): the slave opens its switches after
    balancing_timeout_s of simulated time; a malformed command opens them at once."""
    pack = tmp_path / "spread.yaml"
    pack.write_text(SPREAD_PACK)
    speed = 5.0
    sim = start_node(tmp_path, "bms_slave", "sim_host", *params(pack=str(pack), speed=speed, profile="rest"))
    master = start_node(tmp_path, "bms_master", "master", *params(pack=str(pack), use_sim_time=True))
    manager = start_node(tmp_path, "bms_common", "lifecycle_manager", *params(pack=str(pack)),
                         "-p", "node_names:=[module_*, current_sensor, master]")
    ros = RosHarness("frozen_master_test")
    frozen = False
    try:
        samples = ros.collect(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.CELL_MEASUREMENTS.qos)
        commands = ros.collect(BalancingCommand, topics.BALANCING_COMMAND.name, topics.BALANCING_COMMAND.qos)
        wait_for(lambda: any(any(m.balancing) for m in list(samples)) and any(any(c.balance) for c in list(commands)),
                 90, "the master to make the slave bleed")
        master.proc.send_signal(signal.SIGSTOP)
        frozen = True
        last_command_s = to_seconds(commands[-1].header.stamp)
        opened = wait_for(lambda: next((m for m in list(samples) if to_seconds(m.header.stamp) > last_command_s
                                        and not any(m.balancing)), None),
                          60, "the slave to open its bleed switches with the master frozen")
        after_s = to_seconds(opened.header.stamp) - last_command_s
        print(f"\nbleed switches opened {after_s:.2f} s (sim) after the frozen master's last command")
        # The timeout, plus a sample period, plus the command's delivery at this speed.
        assert BALANCING_TIMEOUT_S <= after_s <= BALANCING_TIMEOUT_S + 2 * 0.1 + 0.1 * speed, after_s
        assert "bleed switches opened" in sim.output()

        master.proc.send_signal(signal.SIGCONT)
        frozen = False
        resumed_s = to_seconds(samples[-1].header.stamp)
        wait_for(lambda: any(any(m.balancing) for m in list(samples) if to_seconds(m.header.stamp) > resumed_s),
                 60, "bleeding again once the master runs")
        master.proc.send_signal(signal.SIGSTOP)
        frozen = True
        bad = BalancingCommand(module_id=0, balance=[True])  # one cell for a module of four
        pub = ros.node.create_publisher(BalancingCommand, topics.BALANCING_COMMAND.name, topics.BALANCING_COMMAND.qos)
        wait_for(lambda: pub.get_subscription_count() > 0, 10, "the slave to match the test's publisher")
        sent_s = to_seconds(samples[-1].header.stamp)
        pub.publish(bad)
        opened = wait_for(lambda: next((m for m in list(samples) if to_seconds(m.header.stamp) > sent_s
                                        and not any(m.balancing)), None), 30, "the malformed command to open them")
        assert to_seconds(opened.header.stamp) - sent_s < BALANCING_TIMEOUT_S / 2
        wait_for(lambda: "has 1 cells, this module has 4: bleed switches opened" in sim.output(), 10,
                 "the slave to report the malformed command")
    finally:
        if frozen:
            master.proc.send_signal(signal.SIGCONT)
        ros.close()
        manager.stop()
        master.stop()
        sim.stop()
