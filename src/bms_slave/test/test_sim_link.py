"""A module measured in another process: the plant's AFE inputs sent over /sim (as messages, no
DDS here) give the outside simulated AFE the readings sim_host's own AFE takes of the same cells."""

from __future__ import annotations

import numpy as np
from slave_test_helpers import close_mains, plant_of, run

from bms_common.stamps import to_stamp
from bms_slave.load import ConstantCurrent
from bms_slave.plant import AfeInputs
from bms_slave.sim_afe import SimulatedAfe
from bms_slave.sim_link import inputs_of, truth_message


class Received:
    """The outside AFE's end: the last /sim/cell_truth message, and the bleed switches it sent."""

    def __init__(self) -> None:
        self.inputs: AfeInputs | None = None
        self.switches: dict[int, np.ndarray] = {}

    def afe_inputs(self, module: int) -> AfeInputs:
        assert self.inputs is not None
        return self.inputs

    def set_module_balancing(self, module: int, mask: np.ndarray) -> None:
        self.switches[module] = mask


def test_an_outside_afe_reads_what_the_hosted_one_reads() -> None:
    plant = plant_of(afe_sample_skew_s=0.06)
    close_mains(plant)
    plant.set_profile(ConstantCurrent(-80.0))
    module = plant.pack.modules - 1  # the most skewed one
    hosted = SimulatedAfe.create(plant, plant.pack, plant.sim, module)
    link = Received()
    outside = SimulatedAfe.create(link, plant.pack, plant.sim, module)
    for sequence in range(50):
        run(plant, 0.1, dt_s=0.05)
        link.inputs = inputs_of(truth_message(module, plant.afe_inputs(module), sequence))
        mine, theirs = hosted.read(), outside.read()
        assert to_stamp(theirs.stamp_s) == to_stamp(mine.stamp_s)  # what the messages carry
        # The same seeded measurement stream; the wire carries float32, so an ADC step may
        # round the other way now and then.
        np.testing.assert_allclose(theirs.cell_voltage_v, mine.cell_voltage_v, atol=1.01e-4)
        np.testing.assert_allclose(theirs.temperature_degc, mine.temperature_degc, atol=0.101)
    assert np.mean(theirs.cell_voltage_v == mine.cell_voltage_v) > 0.9


def test_bleed_switches_of_the_outside_afe_reach_the_plant_cells() -> None:
    plant = plant_of()
    link = Received()
    outside = SimulatedAfe.create(link, plant.pack, plant.sim, 1)
    mask = np.zeros(plant.pack.cells_per_module, dtype=bool)
    mask[3] = True
    outside.set_balancing(mask)
    plant.set_module_balancing(1, link.switches[1])  # what sim_host does with /sim/bleed_switches
    before = plant.afe_inputs(1).cell_voltage_v
    run(plant, 600.0, dt_s=1.0)
    change = plant.afe_inputs(1).cell_voltage_v - before
    others = np.delete(change, 3)
    assert change[3] < others.min() - 0.0003, change  # the bled cell falls, the others do not
    assert plant.afe_inputs(1).balancing.tolist() == mask.tolist()
