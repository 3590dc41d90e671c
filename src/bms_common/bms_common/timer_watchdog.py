"""Notice a node's periodic timer that stops running while the node's inputs keep arriving.

A node whose outputs come from a timer (the estimator, the master, the safety supervisor, a
self-timed module node; the contactor node's check on the node clock) goes silent if the executor
stops running that timer, while it still answers its lifecycle services and takes its inputs: to
a listener it looks like a node that is alive and has nothing to say. Issue 19 saw exactly that
(rclpy's EventsExecutor, a fast simulated clock). The inputs are the evidence that time goes on:
each input arrival costs one monotonic-clock read; only after ``wall_s`` without a tick is the
node's clock read, and the stall reported once it has also moved ``missed_periods`` periods past
the last tick. A paused simulation (no /clock, no inputs) and a slow one are therefore no stall.

    self.watchdog = TimerWatchdog(self, period_s)      # after creating the timer
    self.watchdog.ticked()                              # first thing in the timer callback
    self.watchdog.input_arrived()                       # in the input callbacks
"""

from __future__ import annotations

import time

from rclpy.node import Node

__all__ = ["TimerWatchdog"]


class TimerWatchdog:
    def __init__(self, node: Node, period_s: float, what: str = "periodic step", missed_periods: int = 20,
                 wall_s: float = 2.0, consequence: str = "its outputs have stopped") -> None:
        """``what`` names the timer's work, ``consequence`` says what its stop means."""
        self.node = node
        self.what = what
        self.consequence = consequence
        self.limit_s = missed_periods * period_s
        self.wall_s = wall_s
        self.last_tick_s = node.get_clock().now().nanoseconds * 1e-9
        self.last_tick_wall_s = time.monotonic()
        self.stalled = False
        self.stalls = 0  # how many times it stopped (and was reported)

    def ticked(self) -> None:
        self.last_tick_wall_s = time.monotonic()
        self.last_tick_s = self.node.get_clock().now().nanoseconds * 1e-9
        if self.stalled:
            self.stalled = False
            self.node.get_logger().warning(f"{self.what} runs again")

    def input_arrived(self) -> bool:
        """Check on an input's arrival; True while the timer is stalled."""
        wall_s = time.monotonic() - self.last_tick_wall_s
        if self.stalled or wall_s < self.wall_s:
            return self.stalled
        behind_s = self.node.get_clock().now().nanoseconds * 1e-9 - self.last_tick_s
        if behind_s >= self.limit_s:
            self.stalled = True
            self.stalls += 1
            self.node.get_logger().error(
                f"{self.what} has not run for {behind_s:.1f} s of node clock ({wall_s:.1f} s of wall time) "
                f"while inputs keep arriving: {self.consequence}. Either the executor does not run "
                "the timer (the EventsExecutor on simulated time; BMS_EXECUTOR=single avoids it) or the "
                "process cannot keep up with its inputs")
        return self.stalled
