"""Optional, read-only Foxglove WebSocket endpoint (foxglove-sdk): Foxglove, Lichtblick and
PlotJuggler connect to a live system through it. Off unless the node's ``foxglove_port`` is set;
loopback unless ``foxglove_host`` says otherwise. It advertises JSON channels built from the same
view the web page draws, at the display rate, and offers no services or parameters."""

from __future__ import annotations

import math
from typing import Any

import foxglove

from bms_gui.view import PackView


def _finite(values: Any) -> list:
    return [None if math.isnan(v) else round(float(v), 5) for v in values]


class FoxgloveEndpoint:
    def __init__(self, host: str, port: int) -> None:
        self.context = foxglove.Context()
        self.server = foxglove.start_server(name="open-bms gui", host=host, port=port, context=self.context)
        self.pack = foxglove.Channel("/bms/gui/pack", message_encoding="json", context=self.context)
        self.cells = foxglove.Channel("/bms/gui/cells", message_encoding="json", context=self.context)

    @property
    def port(self) -> int:
        return self.server.port

    def publish(self, view: PackView, now: float) -> None:
        """Called at the display rate with the view lock held."""
        status = view.status(now)
        self.pack.log({"run_time": status["run_time"], "state": status["state"].get("state"),
                       "safety_level": status["safety"].get("level"), **status["pack"],
                       "limits": status["limits"], "pack_soc": status["estimates"].get("pack_soc"),
                       "stale_modules": status["stale_modules"]})
        self.cells.log({"modules": {str(m): {"voltages_v": _finite(module.voltages),
                                             "temperatures_degc": _finite(module.temperatures)}
                                    for m, module in sorted(view.modules.items())}})

    def stop(self) -> None:
        self.server.stop()
