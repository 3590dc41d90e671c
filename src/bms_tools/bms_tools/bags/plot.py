"""``bms bag plot``: PNG overview plots of a recorded run.

Envelopes (min/mean/max over every cell of every module) are evaluated at each cell_measurements
message over the latest sample of each module, so a pack whose modules report at slightly
different instants still gives one continuous curve.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on build machines or in CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bms_common import topics  # noqa: E402
from bms_tools.bags.progress import Progress  # noqa: E402
from bms_tools.bags.reading import BagError, RunClock, open_decoding  # noqa: E402

SAFETY_LEVELS = ("OK", "WARNING", "ALARM", "FAULT")


class _Series:
    """Samples of one topic: time (s on the run's own clock) and per-message values."""

    def __init__(self) -> None:
        self.t: list[float] = []
        self.values: list[tuple[float, ...]] = []

    def add(self, t: float, *values: float) -> None:
        self.t.append(t)
        self.values.append(values)

    def columns(self) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.t), np.asarray(self.values, dtype=float)


class _Envelope:
    """min/mean/max over the latest array of each module."""

    def __init__(self) -> None:
        self.latest: dict[int, np.ndarray] = {}
        self.series = _Series()

    def add(self, t: float, module_id: int, values: np.ndarray) -> None:
        self.latest[module_id] = np.asarray(values, dtype=float)
        pack = np.concatenate(list(self.latest.values()))
        if pack.size and not np.all(np.isnan(pack)):
            self.series.add(t, np.nanmin(pack), np.nanmean(pack), np.nanmax(pack))


def _collect(path: Path) -> dict[str, _Series]:
    voltages, temperatures = _Envelope(), _Envelope()
    current, soc, level = _Series(), _Series(), _Series()
    handlers: dict[str, Callable[[float, object], None]] = {
        topics.CELL_MEASUREMENTS.absolute: lambda t, m: (
            voltages.add(t, m.module_id, m.cell_voltages_v),
            temperatures.add(t, m.module_id, m.temperatures_degc),
        ),
        topics.PACK_MEASUREMENT.absolute: lambda t, m: current.add(t, m.current_a),
        topics.CELL_STATES.absolute: lambda t, m: soc.add(t, m.pack_soc),
        topics.SAFETY_STATUS.absolute: lambda t, m: level.add(t, m.level),
    }
    progress = Progress()
    with open_decoding(path) as reader:
        connections = [c for c in reader.connections if c.topic in handlers]
        total, done = sum(c.msgcount for c in connections), 0
        clock = RunClock()
        for connection, timestamp, raw in reader.messages(connections=connections):
            message = reader.deserialize(raw, connection.msgtype)
            handlers[connection.topic](clock.seconds(message, timestamp), message)
            done += 1
            progress.update(f"reading {path}: {done} / {total} messages")
    progress.finish(f"read {done} messages")
    return {"cell_voltages": voltages.series, "temperatures": temperatures.series,
            "pack_current": current, "soc": soc, "safety_level": level}


def _envelope_plot(series: _Series, ylabel: str, title: str, file: Path) -> None:
    t, values = series.columns()
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.fill_between(t, values[:, 0], values[:, 2], alpha=0.3, label="min..max")
    ax.plot(t, values[:, 1], label="mean")
    ax.set(xlabel="time [s]", ylabel=ylabel, title=title)
    ax.legend()
    ax.grid(True)
    fig.savefig(file, dpi=100, bbox_inches="tight")
    plt.close(fig)


def _line_plot(series: _Series, ylabel: str, title: str, file: Path, step: bool = False) -> None:
    t, values = series.columns()
    fig, ax = plt.subplots(figsize=(10, 4))
    if step:
        ax.step(t, values[:, 0], where="post")
        ax.set_yticks(range(len(SAFETY_LEVELS)), SAFETY_LEVELS)
    else:
        ax.plot(t, values[:, 0])
    ax.set(xlabel="time [s]", ylabel=ylabel, title=title)
    ax.grid(True)
    fig.savefig(file, dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_bag(path: Path, output: Path) -> int:
    try:
        data = _collect(path)
    except BagError as error:
        print(f"bms bag plot: {error}")
        return 2
    output.mkdir(parents=True, exist_ok=True)
    plots = {
        "cell_voltages": lambda s, f: _envelope_plot(s, "cell voltage [V]", "Cell voltage envelope", f),
        "temperatures": lambda s, f: _envelope_plot(s, "temperature [degC]", "Temperature envelope", f),
        "pack_current": lambda s, f: _line_plot(s, "current [A] (+ = charging)", "Pack current", f),
        "soc": lambda s, f: _line_plot(s, "pack SOC [0..1]", "Pack state of charge", f),
        "safety_level": lambda s, f: _line_plot(s, "level", "Safety level", f, step=True),
    }
    sources = {"cell_voltages": topics.CELL_MEASUREMENTS, "temperatures": topics.CELL_MEASUREMENTS,
               "pack_current": topics.PACK_MEASUREMENT, "soc": topics.CELL_STATES,
               "safety_level": topics.SAFETY_STATUS}
    for name, draw in plots.items():
        if not data[name].t:
            print(f"skipped {name}.png: no {sources[name].absolute} messages in the bag")
            continue
        draw(data[name], output / f"{name}.png")
        print(f"wrote {output / f'{name}.png'}")
    return 0
