"""Progress display for long operations: one rewritten line on a terminal, periodic lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import TextIO

TTY_PERIOD_S = 0.2
LOG_PERIOD_S = 5.0


class Progress:
    def __init__(self, stream: TextIO | None = None, period_s: float | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.period_s = period_s if period_s is not None else (TTY_PERIOD_S if self.tty else LOG_PERIOD_S)
        self._last = 0.0
        self._width = 0

    def update(self, text: str, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.period_s:
            return
        self._last = now
        if self.tty:
            padding = " " * max(0, self._width - len(text))
            self.stream.write(f"\r{text}{padding}")
            self._width = len(text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self, text: str) -> None:
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
        self.stream.write(text + "\n")
        self.stream.flush()
        self._width = 0


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"
