"""A lifecycle node for the lifecycle-manager tests.

It appends every transition it performs, with a monotonic timestamp, to the file named by the
``journal`` parameter, and fails the transition named by ``fail_on`` (configure, activate, ...).
The transition named by ``hang_on`` does not answer for 30 s (or until the process is asked to end),
like a node whose process is busy exiting.
"""

from __future__ import annotations

import sys
import time

from bms_common.component_info import Identity
from bms_common.lifecycle import BmsLifecycleNode, TransitionCallbackReturn, run_main


class ProbeNode(BmsLifecycleNode):
    def __init__(self, name: str) -> None:
        super().__init__(name, Identity(kind="tool", implementation="test.probe"), namespace="/bms")
        self.journal = self.declare_parameter("journal", "").value
        self.fail_on = self.declare_parameter("fail_on", "").value
        self.hang_on = self.declare_parameter("hang_on", "").value

    def _record(self, transition: str) -> TransitionCallbackReturn:
        with open(self.journal, "a") as out:
            out.write(f"{time.monotonic():.6f} {self.get_name()} {transition}\n")
        if transition == self.hang_on:
            until = time.monotonic() + 30.0
            while time.monotonic() < until and not self.stopping:
                time.sleep(0.05)
        if transition == self.fail_on:
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_configure(self, state):
        return self._record("configure")

    def on_activate(self, state):
        return self._record("activate")

    def on_deactivate(self, state):
        return self._record("deactivate")

    def on_cleanup(self, state):
        return self._record("cleanup")


if __name__ == "__main__":
    sys.exit(run_main(lambda: ProbeNode(sys.argv[1]), sys.argv))
