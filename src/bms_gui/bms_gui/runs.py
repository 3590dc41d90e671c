"""Recorded runs for the run viewer: listing a runs directory and scrubbing one bag.

A run is opened once into an index of its decoded messages, keyed by topic (and module for cell
measurements), on the run's own clock (header stamps, from the first one: simulated seconds in a
sped-up run). The view at time t is built by feeding the latest message of each key up to t into
a fresh :class:`PackView`, the same view the live page draws.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bms_common import topics
from bms_common.version import INTERFACE_VERSION, compatible
from bms_gui.view import PackView
from bms_tools.bags.reading import BagError, RunClock, open_decoding

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")

# topic -> PackView method; these carry header stamps on the run's clock
HANDLERS: dict[str, str] = {
    topics.CELL_MEASUREMENTS.absolute: "on_cells",
    topics.PACK_MEASUREMENT.absolute: "on_pack_measurement",
    topics.PACK_STATE.absolute: "on_pack_state",
    topics.CURRENT_LIMITS.absolute: "on_current_limits",
    topics.SAFETY_STATUS.absolute: "on_safety",
    topics.CONTACTOR_STATE.absolute: "on_contactor_state",
    topics.CONTACTOR_COMMAND.absolute: "on_contactor_command",
    topics.CELL_STATES.absolute: "on_cell_states",
    topics.FAULT_LOG.absolute: "on_fault_log",
    topics.COMMAND_AUDIT.absolute: "on_audit",
}


class RunError(Exception):
    """A request for a run that is not there or not allowed; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


def resolve_run(runs_dir: Path, name: str) -> Path:
    """The run directory ``name`` directly under ``runs_dir``; nothing outside it."""
    if not RUN_NAME.match(name) or ".." in name:
        raise RunError(f"invalid run name {name!r}: a directory name under the runs directory", 400)
    root = runs_dir.resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise RunError(f"run {name!r} is outside the runs directory", 400)
    if not (path / "metadata.yaml").is_file():
        raise RunError(f"no run {name!r} in {runs_dir} (no rosbag2 metadata.yaml)")
    return path


def list_runs(runs_dir: Path) -> list[dict]:
    if not runs_dir.is_dir():
        return []
    out = []
    for path in sorted(runs_dir.iterdir(), reverse=True):
        if path.is_dir() and RUN_NAME.match(path.name) and (path / "metadata.yaml").is_file():
            size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
            out.append({"name": path.name, "size_bytes": size, "modified": path.stat().st_mtime})
    return out


@dataclass
class RunIndex:
    name: str
    keyed: dict[tuple[str, int], tuple[list[float], list[Any]]] = field(default_factory=dict)
    components: list[Any] = field(default_factory=list)
    duration_s: float = 0.0
    series: list[list] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path, progress: Callable[[int], None] | None = None) -> RunIndex:
        index = cls(path.name)
        clock = RunClock()
        whole = PackView(history_s=math.inf, series=deque())
        try:
            with open_decoding(path) as reader:
                wanted = [c for c in reader.connections
                          if c.topic in HANDLERS or c.topic == topics.COMPONENTS.absolute]
                for count, (connection, receive_ns, raw) in enumerate(reader.messages(connections=wanted)):
                    msg = reader.deserialize(raw, connection.msgtype)
                    if connection.topic == topics.COMPONENTS.absolute:
                        index.components.append(msg)
                        continue
                    t = clock.seconds(msg, receive_ns)
                    key = (connection.topic, int(getattr(msg, "module_id", 0))
                           if connection.topic == topics.CELL_MEASUREMENTS.absolute else 0)
                    times, messages = index.keyed.setdefault(key, ([], []))
                    if times and t < times[-1]:  # out of order on the run's clock: keep sorted
                        at = bisect.bisect_right(times, t)
                        times.insert(at, t)
                        messages.insert(at, msg)
                    else:
                        times.append(t)
                        messages.append(msg)
                    getattr(whole, HANDLERS[connection.topic])(msg, t)
                    index.duration_s = max(index.duration_s, t)
                    if progress and count % 10000 == 0:
                        progress(count)
        except BagError as error:
            raise RunError(str(error), 422) from error
        except Exception as error:  # a damaged bag: say which and why, keep serving
            raise RunError(f"cannot read run {path.name}: {type(error).__name__}: {error}", 422) from error
        origin = clock.seconds_of_origin()
        index.series = [[round(p[0] - origin, 3), *p[1:]] for p in whole.series]
        return index

    def view_at(self, t: float) -> PackView:
        view = PackView()
        for (topic, _), (times, messages) in self.keyed.items():
            at = bisect.bisect_right(times, t) - 1
            if at >= 0:
                getattr(view, HANDLERS[topic])(messages[at], times[at])
        for msg in self.components:
            view.on_component(msg, t, compatible(INTERFACE_VERSION, msg.interface_version))
        view.run_time = t
        return view

    def cell_history(self, module_id: int, cell: int, t: float, window_s: float = 300.0) -> list:
        times, messages = self.keyed.get((topics.CELL_MEASUREMENTS.absolute, module_id), ([], []))
        lo, hi = bisect.bisect_left(times, t - window_s), bisect.bisect_right(times, t)
        step = max(1, (hi - lo) // 600)
        out = []
        for i in range(lo, hi, step):
            volts = messages[i].cell_voltages_v
            value = float(volts[cell]) if cell < len(volts) else math.nan
            out.append([round(times[i], 3), None if math.isnan(value) else value])
        return out
