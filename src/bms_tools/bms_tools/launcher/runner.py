"""Runs the processes of a launch: prefixed output, respawn, required nodes, ordered shutdown.

Every process starts in a process group of its own, so a Ctrl-C in the terminal reaches only the
launcher, which then stops things in order: the lifecycle manager first (it deactivates and cleans
up the managed nodes in reverse while they are still running), then SIGINT to everything else,
SIGTERM after ``sigint_timeout_s``, SIGKILL after ``sigterm_timeout_s``. Processes are signalled
by PID, never by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO


@dataclass
class ProcessSpec:
    label: str
    argv: list[str]
    output: str = "log"
    respawn: bool = False
    respawn_delay_s: float = 0.0
    shutdown_on_exit: bool = False
    stop_first: bool = False  # the lifecycle manager: stopped, and waited for, before the rest


@dataclass
class _Running:
    spec: ProcessSpec
    proc: subprocess.Popen | None = None
    reader: threading.Thread | None = None
    restart_at: float | None = None
    starts: int = 0


@dataclass
class Timeouts:
    manager_s: float = 30.0
    sigint_s: float = 5.0
    sigterm_s: float = 5.0


@dataclass
class Runner:
    specs: list[ProcessSpec]
    log_dir: Path
    timeouts: Timeouts = field(default_factory=Timeouts)
    out: IO[str] = field(default_factory=lambda: sys.stdout)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._hurry = threading.Event()
        self._processes = [_Running(spec) for spec in self.specs]

    # -- output ---------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        with self._lock:
            self.out.write(f"[launch] {text}\n")
            self.out.flush()

    def _pump(self, running: _Running, stream: IO[bytes]) -> None:
        spec = running.spec
        log = None
        if spec.output in ("log", "both", "own_log", "full"):
            self.log_dir.mkdir(parents=True, exist_ok=True)
            log = open(self.log_dir / f"{spec.label}.log", "a", encoding="utf-8")  # noqa: SIM115
        try:
            for raw in stream:
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                with self._lock:
                    self.out.write(f"[{spec.label}] {line}\n")
                    self.out.flush()
                if log:
                    log.write(line + "\n")
                    log.flush()
        finally:
            stream.close()
            if log:
                log.close()

    # -- process control ------------------------------------------------------------------------
    def _start(self, running: _Running) -> None:
        spec = running.spec
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        try:
            running.proc = subprocess.Popen(spec.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True, env=env)
        except OSError as exc:
            self.say(f"{spec.label}: cannot start {spec.argv[0]}: {exc.strerror}")
            running.proc = None
            return
        running.starts += 1
        running.restart_at = None
        running.reader = threading.Thread(target=self._pump, args=(running, running.proc.stdout),
                                          daemon=True)
        running.reader.start()
        self.say(f"{spec.label}: started, pid {running.proc.pid}")

    def _alive(self, group: list[_Running] | None = None) -> list[_Running]:
        return [r for r in (self._processes if group is None else group) if r.proc is not None and r.proc.poll() is None]

    def _signal(self, group: list[_Running], sig: signal.Signals) -> None:
        for running in self._alive(group):
            try:
                os.kill(running.proc.pid, sig)
            except ProcessLookupError:
                continue
            self.say(f"{running.spec.label}: sent {sig.name}")

    def _wait(self, group: list[_Running], timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self._alive(group):
            if time.monotonic() >= deadline or self._hurry.is_set():
                return False
            time.sleep(0.02)
        return True

    def _on_signal(self, signum: int, _frame: object) -> None:
        if self._stop.is_set():
            self._hurry.set()  # a second Ctrl-C: do not wait out the timeouts
        self._stop.set()

    # -- the launch -----------------------------------------------------------------------------
    def run(self) -> int:
        """Start everything, supervise until a signal, a required process ending or all ending;
        then shut down in order. Returns the launch's exit code."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._on_signal)
        for running in self._processes:
            self._start(running)
        exit_code = 0
        while not self._stop.is_set():
            ended = self._supervise()
            if ended is not None:
                exit_code = ended
                break
            if not self._alive() and not any(r.restart_at for r in self._processes):
                self.say("all processes have ended")
                break
            self._stop.wait(0.02)
        self.shutdown()
        return exit_code

    def _supervise(self) -> int | None:
        """Restart and reap processes; the exit code once a required process has ended."""
        now = time.monotonic()
        for running in self._processes:
            if running.restart_at is not None and now >= running.restart_at:
                self._start(running)
            proc = running.proc
            if proc is None or proc.poll() is None:
                continue
            code = proc.returncode
            running.proc = None
            if running.reader:
                running.reader.join(timeout=2.0)
            spec = running.spec
            self.say(f"{spec.label}: exited with code {code}")
            if spec.shutdown_on_exit:
                self.say(f"{spec.label} has on_exit=shutdown: shutting the launch down")
                return 0 if code == 0 else (code if code > 0 else 1)
            if spec.respawn:
                running.restart_at = now + spec.respawn_delay_s
                self.say(f"{spec.label}: respawning in {spec.respawn_delay_s:g} s")
        return None

    def shutdown(self) -> None:
        for running in self._processes:
            running.restart_at = None
        managers = [r for r in self._processes if r.spec.stop_first]
        if self._alive(managers):
            self.say("stopping the lifecycle manager first (it deactivates and cleans up the nodes)")
            self._signal(managers, signal.SIGINT)
            self._wait(managers, self.timeouts.manager_s)
            self._report_ended(managers)
        everything = self._processes
        self._signal(everything, signal.SIGINT)
        if not self._wait(everything, self.timeouts.sigint_s):
            self._signal(everything, signal.SIGTERM)
            if not self._wait(everything, self.timeouts.sigterm_s):
                self._signal(everything, signal.SIGKILL)
        for running in self._processes:
            if running.proc is not None:
                running.proc.wait()
        self._report_ended(self._processes)

    def _report_ended(self, group: list[_Running]) -> None:
        for running in group:
            if running.proc is not None and running.proc.poll() is not None:
                if running.reader:
                    running.reader.join(timeout=2.0)
                self.say(f"{running.spec.label}: exited with code {running.proc.returncode}")
                running.proc = None
