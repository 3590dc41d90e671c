"""Recorded against replayed outputs: the tolerance table and the comparison. No ROS imports.

Outputs are matched by their header stamps (sim time), never by arrival order: a recorded message
is compared with the replayed one nearest in stamp, if that lies within the topic's time
tolerance. Values are compared field by field; the error of a field is its largest element error
(absolute, or relative to the recorded value's magnitude with a floor for values near zero).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FieldTolerance:
    name: str
    tolerance: float
    relative: bool = False
    # Relative errors are taken against max(|recorded|, floor): a limit of 0 A is not 100 % off
    # from 0.01 A.
    floor: float = 1.0


@dataclass(frozen=True)
class TopicTolerance:
    topic: str
    time_tolerance_s: float
    fields: tuple[FieldTolerance, ...]
    # Exact fields (levels, flags) match if any replayed message within the time tolerance
    # carries the recorded value: a transition one period earlier or later is not a divergence.
    exact: tuple[str, ...] = ()


# The documented tolerances (docs/replay.md). Time tolerances are one output period.
TOLERANCES: tuple[TopicTolerance, ...] = (
    # The recorded CellStates come once per cell_states_period_s (1 s), at whatever tick was due
    # (late ticks drift off the 0.1 s grid at high speed); the fresh estimator publishes them at
    # every tick (session.py), so each recorded one has a replayed one within a period.
    TopicTolerance("/bms/cell_states", 0.1, (
        FieldTolerance("soc", 0.01),
        FieldTolerance("pack_soc", 0.01),
        FieldTolerance("capacity_ah", 0.01, relative=True),
        FieldTolerance("soh", 0.01),
        FieldTolerance("internal_resistance_ohm", 0.05, relative=True, floor=1e-4),
    )),
    TopicTolerance("/bms/power_limits", 0.1, (
        FieldTolerance("max_charge_current_a", 0.02, relative=True),
        FieldTolerance("max_discharge_current_a", 0.02, relative=True),
        FieldTolerance("max_charge_power_w", 0.02, relative=True, floor=10.0),
        FieldTolerance("max_discharge_power_w", 0.02, relative=True, floor=10.0),
    )),
    TopicTolerance("/bms/safety_status", 0.05, (), exact=("level", "contactors_allowed")),
)


@dataclass
class Divergence:
    stamp_s: float
    what: str


@dataclass
class TopicReport:
    topic: str
    compared: int = 0
    missing: int = 0
    largest: dict[str, float] = field(default_factory=dict)  # field -> largest error
    mismatched: dict[str, int] = field(default_factory=dict)  # exact field -> messages off
    first: Divergence | None = None

    @property
    def passed(self) -> bool:
        return self.first is None

    def note(self, stamp_s: float, what: str) -> None:
        if self.first is None:
            self.first = Divergence(stamp_s, what)


Stamped = Sequence[tuple[int, Any]]  # (stamp in ns, message), sorted by stamp


def field_error(recorded: Any, replayed: Any, spec: FieldTolerance) -> float:
    a = np.atleast_1d(np.asarray(recorded, dtype=float))
    b = np.atleast_1d(np.asarray(replayed, dtype=float))
    if a.shape != b.shape:
        return math.inf
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    if spec.relative:
        diff = diff / np.maximum(np.abs(a), spec.floor)
    diff = np.where(np.isnan(diff), math.inf, diff)  # NaN on one side only
    return float(diff.max()) if diff.size else 0.0


def _within(replayed: Stamped, stamps: np.ndarray, stamp_ns: int, window_ns: int) -> list[tuple[int, Any]]:
    lo = int(np.searchsorted(stamps, stamp_ns - window_ns, side="left"))
    hi = int(np.searchsorted(stamps, stamp_ns + window_ns, side="right"))
    return list(replayed[lo:hi])


def _worst(recorded: Any, replayed: Any, fields: Sequence[FieldTolerance]) -> float:
    """The largest field error in units of its tolerance."""
    return max((field_error(getattr(recorded, f.name), getattr(replayed, f.name), f) / f.tolerance
                for f in fields), default=0.0)


def compare_topic(spec: TopicTolerance, recorded: Stamped, replayed: Stamped) -> TopicReport:
    report = TopicReport(spec.topic)
    stamps = np.asarray([s for s, _ in replayed], dtype=np.int64)
    window_ns = round(spec.time_tolerance_s * 1e9)
    for stamp_ns, msg in recorded:
        stamp_s = stamp_ns * 1e-9
        near = _within(replayed, stamps, stamp_ns, window_ns)
        if not near:
            report.missing += 1
            report.note(stamp_s, "no replayed message within "
                                 f"{spec.time_tolerance_s:g} s of this stamp")
            continue
        report.compared += 1
        nearest = min(near, key=lambda item: abs(item[0] - stamp_ns))[1]
        # The replayed output within the window that agrees best: a live node's tick may see a
        # sample one period later than the lockstep replay does, and at a current step the
        # outputs change within that period.
        best = min(near, key=lambda item: (_worst(msg, item[1], spec.fields), abs(item[0] - stamp_ns)))[1]
        for spec_field in spec.fields:
            error = field_error(getattr(msg, spec_field.name), getattr(best, spec_field.name), spec_field)
            report.largest[spec_field.name] = max(report.largest.get(spec_field.name, 0.0), error)
            if error > spec_field.tolerance:
                unit = " (relative)" if spec_field.relative else ""
                report.note(stamp_s, f"{spec_field.name} off by {error:.4g}{unit}, "
                                     f"tolerance {spec_field.tolerance:g}")
        for name in spec.exact:
            wanted = getattr(msg, name)
            if not any(getattr(m, name) == wanted for _, m in near):
                report.mismatched[name] = report.mismatched.get(name, 0) + 1
                report.note(stamp_s, f"{name} {wanted!r} recorded, replayed "
                                     f"{getattr(nearest, name)!r}")
    return report


def compare(recorded: dict[str, Stamped], replayed: dict[str, Stamped],
            tolerances: Sequence[TopicTolerance] = TOLERANCES) -> list[TopicReport]:
    return [compare_topic(spec, recorded.get(spec.topic, []), replayed.get(spec.topic, []))
            for spec in tolerances]


def format_report(reports: Sequence[TopicReport], emit: Callable[[str], None] = print) -> None:
    for report in reports:
        verdict = "ok" if report.passed else "DIVERGED"
        emit(f"{report.topic}: {verdict}, {report.compared} compared, {report.missing} missing")
        for name, error in report.largest.items():
            emit(f"    largest {name} error {error:.4g}")
        for name, count in report.mismatched.items():
            emit(f"    {name} differs in {count} messages")
        if report.first:
            emit(f"    first divergence at t={report.first.stamp_s:.3f} s: {report.first.what}")
