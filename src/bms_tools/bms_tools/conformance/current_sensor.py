"""The stimulus for a current sensor on the simulated plant: ``/sim/pack_truth`` every 0.1 s on
the kit's clock (docs/simulation.md), so a node whose sensor is the plant (the project's `board`
with ``current_sensor_backend:=sim``) has something to measure. A hardware node ignores it."""

from __future__ import annotations

from bms_common import topics
from bms_common.stamps import to_stamp
from bms_interfaces.msg import PackMeasurement
from bms_tools.conformance.kinds import Context
from bms_tools.conformance.probe import Probe

PERIOD_S = 0.1
CELL_V = 3.7
CURRENT_A = -10.0  # discharging
INSULATION_OHM = 1e6


class PackStimulus:
    def __init__(self, probe: Probe, ctx: Context) -> None:
        self.probe = probe
        self.pack_v = CELL_V * ctx.pack.cell_count
        self.sequence = 0
        self.truth = probe.node.create_publisher(PackMeasurement, topics.SIM_PACK_TRUTH, topics.RELIABLE)
        probe.node.create_timer(PERIOD_S, self._tick)

    def _tick(self) -> None:
        self.sequence += 1
        msg = PackMeasurement(sequence=self.sequence, current_a=CURRENT_A, pack_voltage_v=self.pack_v,
                              dc_link_voltage_v=self.pack_v, insulation_resistance_ohm=INSULATION_OHM,
                              hvil_closed=True)
        msg.header.stamp = to_stamp(self.probe.now_s())
        msg.header.frame_id = "plant"
        self.truth.publish(msg)
