"""A tiny stand-in node executable for launcher tests: records what happens to it.

Options before ``--ros-args``: ``--exit-after S`` and ``--exit-code N`` (exit on its own),
``--linger S`` (take this long to exit after SIGINT, as a lifecycle manager bringing nodes down
does), ``--ignore-sigint`` (forces the launcher to escalate). Events go to
``$PROBE_DIR/<node name>.events``, one ``<event> <pid> <time_ns>`` per line.
"""

import argparse
import os
import signal
import sys
import time

own, _, ros = " ".join(sys.argv[1:]).partition("--ros-args")
parser = argparse.ArgumentParser()
parser.add_argument("--exit-after", type=float)
parser.add_argument("--exit-code", type=int, default=0)
parser.add_argument("--linger", type=float, default=0.0)
parser.add_argument("--ignore-sigint", action="store_true")
options = parser.parse_args(own.split())
name = next((a.split(":=", 1)[1] for a in sys.argv if a.startswith("__node:=")), "probe")
path = os.path.join(os.environ["PROBE_DIR"], f"{name}.events")


def record(event: str) -> None:
    with open(path, "a") as events:
        events.write(f"{event} {os.getpid()} {time.time_ns()}\n")


stopping_since = None


def on_signal(signum, _frame):
    global stopping_since
    record(signal.Signals(signum).name.lower())
    if signum == signal.SIGINT and options.ignore_sigint:
        return
    stopping_since = time.monotonic()


signal.signal(signal.SIGINT, on_signal)
signal.signal(signal.SIGTERM, on_signal)
record("start")
print(f"hello from {name}")
print("argv: " + " ".join(sys.argv[1:]))
started = time.monotonic()
while True:
    now = time.monotonic()
    if stopping_since is not None and now - stopping_since >= options.linger:
        record("exit")
        sys.exit(0)
    if options.exit_after is not None and now - started >= options.exit_after:
        record(f"exit_{options.exit_code}")
        sys.exit(options.exit_code)
    time.sleep(0.01)
