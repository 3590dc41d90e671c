"""A small simulated pack feeding the evaluator, shared by the unit tests."""

from collections.abc import Callable

import numpy as np

from bms_safety.evaluator import SafetyEvaluator
from bms_safety.limits import load_limits
from bms_safety.results import EvaluationResult
from bms_safety.supervisor import SafetySupervisor


class Harness:
    """A small pack fed like the simulation would: 20 Hz samples with AFE noise and quantisation."""

    def __init__(self, table: str = "nmc", modules: int = 2, cells: int = 4, sensors: int = 2,
                 dt_s: float = 0.05) -> None:
        self.ev = SafetyEvaluator(load_limits(table), modules, cells, sensors, start_s=0.0)
        self.rng = np.random.default_rng(7)
        self.volts = np.full((modules, cells), 3.7)
        self.temps = np.full((modules, sensors), 25.0)
        self.current_a = -10.0
        self.insulation_ohm = 5e6
        self.hvil_closed = True
        self.pack_offset_v = 0.0
        self.frozen: dict[tuple[int, int], float] = {}
        self.silent_modules: set[int] = set()
        # module -> edits of its sample's arguments before it is fed (a misbehaving slave)
        self.defects: dict[int, Callable[[dict], None]] = {}
        self.pack_silent = False
        self.pack_stamp_offset_s = 0.0  # the current sensor's clock ahead (+) or behind (-)
        self.estimator_silent = False
        self.seq = [0] * modules
        self.k = 0
        self.dt_s = dt_s
        # what step() calls after feeding; a SafetySupervisor's evaluate to test persistence
        self.evaluate: Callable[[float], EvaluationResult] = self.ev.evaluate

    @property
    def t(self) -> float:
        return round(self.k * self.dt_s, 9)

    def step(self) -> EvaluationResult:
        self.k += 1
        t = self.t
        sample_sum = 0.0
        for m in range(self.volts.shape[0]):
            # 0.5 mV noise quantised to a 100 uV LSB, as a typical AFE reports it
            v = np.round((self.volts[m] + self.rng.normal(0, 5e-4, self.volts.shape[1])) / 1e-4) * 1e-4
            for (fm, fc), value in self.frozen.items():
                if fm == m:
                    v[fc] = value
            temps = self.temps[m] + self.rng.normal(0, 0.02, self.temps.shape[1])
            sample_sum += float(np.nansum(v))
            if m not in self.silent_modules:
                self.seq[m] += 1
                sample = {"module_id": m, "stamp_s": t, "voltages_v": v, "temperatures_degc": temps,
                          "sequence": self.seq[m], "received_s": t}
                if m in self.defects:
                    self.defects[m](sample)
                assert self.ev.update_module(**sample) in (True, False)
        if not self.pack_silent:
            self.ev.update_pack(t + self.pack_stamp_offset_s, self.current_a, sample_sum + self.pack_offset_v,
                                sample_sum, self.insulation_ohm, self.hvil_closed, received_s=t, received_wall_s=t)
        if not self.estimator_silent:
            self.ev.update_estimator(t)
        return self.evaluate(t)

    def run(self, seconds: float) -> EvaluationResult:
        result = self.step()
        for _ in range(round(seconds / self.dt_s) - 1):
            result = self.step()
        return result


def levels(result: EvaluationResult) -> dict[tuple[str, int, int], int]:
    return {(f.code, f.module_id, f.cell): int(f.level) for f in result.faults}


def supervised(state_dir) -> tuple[Harness, SafetySupervisor]:
    """A harness whose evaluations go through a SafetySupervisor keeping its state in ``state_dir``."""
    h = Harness()
    sup = SafetySupervisor(h.ev, state_dir)
    h.evaluate = sup.evaluate
    return h, sup
