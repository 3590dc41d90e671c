"""The slave kind's intrusive checks: bleed switches commanded, ignored, opened on a malformed
command, on silence and on deactivation; the sequence over a whole run. And the stimulus that
stands in for the plant, so a node on the simulated AFE has cells to measure."""

from __future__ import annotations

import time

import numpy as np
from lifecycle_msgs.msg import Transition

from bms_common import topics
from bms_common.plausibility import SEQUENCE_MODULUS
from bms_common.stamps import to_stamp
from bms_interfaces.msg import BalancingCommand, CellMeasurements
from bms_tools.conformance.kinds import Context
from bms_tools.conformance.probe import Probe, wait_until
from bms_tools.conformance.report import Report

STIMULUS_PERIOD_S = 0.1
SEEN_TIMEOUT_S = 5.0  # for a command to show in the samples
INACTIVE_S = 1.0  # SLV-12: between deactivation and activation


class Stimulus:
    """Plays the plant for one module: ``/sim/cell_truth`` every 0.1 s on the kit's clock (cells
    near 3.7 V, sensors at 25 degC) with the bleed switches the node sent on
    ``/sim/bleed_switches`` (docs/simulation.md). A hardware node ignores both topics."""

    def __init__(self, probe: Probe, ctx: Context) -> None:
        pack = ctx.pack
        self.module_id = ctx.module_id
        self.voltages = (3.70 + 0.002 * np.arange(pack.cells_per_module)).astype(np.float32)
        self.temperatures = np.full(pack.sensors_per_module, 25.0, dtype=np.float32)
        self.switches = [False] * pack.cells_per_module
        self.sequence = 0
        self.probe = probe
        self.truth = probe.node.create_publisher(CellMeasurements, topics.SIM_CELL_TRUTH, topics.PER_MODULE)
        probe.node.create_subscription(BalancingCommand, topics.SIM_BLEED_SWITCHES, self._on_switches,
                                       topics.PER_MODULE)
        self.commands = probe.node.create_publisher(BalancingCommand, topics.BALANCING_COMMAND.name,
                                                    topics.BALANCING_COMMAND.qos)
        self.command: BalancingCommand | None = None  # repeated every period while set
        probe.node.create_timer(STIMULUS_PERIOD_S, self._tick)

    def _on_switches(self, msg: BalancingCommand) -> None:
        if msg.module_id == self.module_id and len(msg.balance) == len(self.switches):
            self.switches = list(msg.balance)

    def _tick(self) -> None:
        self.sequence += 1
        msg = CellMeasurements(module_id=self.module_id, sequence=self.sequence, cell_voltages_v=self.voltages,
                               temperatures_degc=self.temperatures, balancing=self.switches)
        msg.header.stamp = to_stamp(self.probe.now_s())
        msg.header.frame_id = "plant"
        self.truth.publish(msg)
        if self.command is not None:
            self.commands.publish(self.command)

    def send(self, module_id: int, balance: list[bool], repeat: bool = True) -> None:
        command = BalancingCommand(module_id=module_id, balance=balance)
        command.header.stamp = to_stamp(self.probe.now_s())
        self.command = command if repeat else None
        if not repeat:
            self.commands.publish(command)


def _samples_since(watch, ctx: Context, mark: dict[str, int]) -> list:
    return [a.msg for a in watch.since(topics.CELL_MEASUREMENTS.name, mark) if a.msg.module_id == ctx.module_id]


def _shows(watch, ctx: Context, mark: dict[str, int], pattern: list[bool], timeout_s: float) -> bool:
    return bool(wait_until(lambda: any(list(m.balancing) == pattern for m in _samples_since(watch, ctx, mark)),
                           timeout_s))


def exercise(report: Report, probe: Probe, watch, ctx: Context, life, stimulus: Stimulus,
             balancing_timeout_s: float) -> None:
    cells = ctx.pack.cells_per_module
    pattern = [i % 2 == 0 for i in range(cells)]
    closed_none = [False] * cells
    # SLV-09: a command for the next module leaves this one's switches open.
    other = (ctx.module_id + 1) % max(2, ctx.pack.modules)
    mark = watch.mark()
    stimulus.send(other, [True] * cells)
    time.sleep(1.0)
    stimulus.command = None
    closed = [m for m in _samples_since(watch, ctx, mark) if any(m.balancing)]
    report.record("SLV-09", not closed, f"closed bleed switches {list(closed[0].balancing) if closed else ''} "
                                        f"on a command for module {other}")
    # SLV-08: the commanded switches show in the samples.
    mark = watch.mark()
    stimulus.send(ctx.module_id, pattern)
    shown = _shows(watch, ctx, mark, pattern, SEEN_TIMEOUT_S)
    report.record("SLV-08", shown, f"balancing never showed the commanded {pattern} within {SEEN_TIMEOUT_S:g} s")
    # SLV-10: a command of the wrong length opens every switch; the node keeps publishing.
    stimulus.command = None
    mark = watch.mark()
    stimulus.send(ctx.module_id, [True] * (cells + 1), repeat=False)
    opened = _shows(watch, ctx, mark, closed_none, SEEN_TIMEOUT_S) if shown else False
    after = watch.mark()
    alive = bool(wait_until(lambda: len(_samples_since(watch, ctx, after)) >= 3, SEEN_TIMEOUT_S))
    report.record("SLV-10", opened and alive, f"after a command with {cells + 1} cells: switches opened {opened}, "
                                              f"still publishing {alive}")
    # SLV-12: switches closed, then deactivated: open after the next activation.
    mark = watch.mark()
    stimulus.send(ctx.module_id, pattern)
    if _shows(watch, ctx, mark, pattern, SEEN_TIMEOUT_S):
        stimulus.command = None
        ok = life.change(Transition.TRANSITION_DEACTIVATE)
        # Inactive for a moment: a node on the simulated plant reports the plant's switches, which
        # hear of the opening over /sim/bleed_switches one message later.
        time.sleep(INACTIVE_S)
        mark = watch.mark()
        ok = life.change(Transition.TRANSITION_ACTIVATE) and ok
        first = wait_until(lambda: _samples_since(watch, ctx, mark)[:1], SEEN_TIMEOUT_S)
        report.record("SLV-12", ok and bool(first) and not any(first[0].balancing),
                      f"first sample after deactivate and activate: {list(first[0].balancing) if first else None}")
    else:
        report.record("SLV-12", False, "the commanded switches never showed: nothing to open")
    # SLV-11: commands stop, the switches open after balancing_timeout_s.
    mark = watch.mark()
    stimulus.send(ctx.module_id, pattern)
    if _shows(watch, ctx, mark, pattern, SEEN_TIMEOUT_S):
        stimulus.command = None
        stopped = time.monotonic()
        mark = watch.mark()
        opened = _shows(watch, ctx, mark, closed_none, balancing_timeout_s + 2.0)
        report.record("SLV-11", opened, f"switches still closed {time.monotonic() - stopped:.1f} s after the last "
                                        f"command (balancing_timeout_s {balancing_timeout_s:g} s)")
    else:
        report.record("SLV-11", False, "the commanded switches never showed: nothing to open")


def check_sequence_over_run(report: Report, watch, ctx: Context) -> None:
    """SLV-07: 0 first, then +1 per sample over every activation of the process."""
    sequences = [m.sequence for m in _samples_since(watch, ctx, {})]
    if not sequences:
        report.record("SLV-07", False, "no sample in the whole run")
        return
    steps = [(b - a) % SEQUENCE_MODULUS for a, b in zip(sequences, sequences[1:], strict=False)]
    wrong = [(a, b) for a, b, s in zip(sequences, sequences[1:], steps, strict=False) if s != 1]
    report.record("SLV-07", sequences[0] == 0 and not wrong,
                  f"first sequence {sequences[0]}, steps other than +1 across the cycles: {wrong[:5]}")
