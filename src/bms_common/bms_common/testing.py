"""Test support shared by package tests and system tests: isolated DDS, node processes, waits.

Tests never synchronise with bare sleeps: :func:`wait_for` polls a condition until a deadline
and fails with a message saying what was awaited. :class:`RosHarness` spins a test node in a
background thread so the test body only reads what arrived.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

LOOPBACK_ENV = {
    "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
    "FASTDDS_BUILTIN_TRANSPORTS": "UDPv4",
    "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
}
_domain_lock: Any = None


def lock_domain_id(first: int, last: int) -> tuple[int, Any]:
    """A ROS_DOMAIN_ID in ``first..last`` that no other holder on this machine has locked, and the
    open lock file that holds it (closing it releases the domain)."""
    start = first + os.getpid() % (last - first + 1)
    for offset in range(last - first + 1):
        domain = first + (start - first + offset) % (last - first + 1)
        handle = open(f"/tmp/bms-ros-domain-{domain}.lock", "w")  # noqa: SIM115 - held by the caller
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return domain, handle
    raise RuntimeError(f"every ROS_DOMAIN_ID in {first}..{last} is held by another test session")


def claim_domain_id(first: int = 20, last: int = 101) -> int:
    """Claim a ROS_DOMAIN_ID no other test session on this machine holds (until process exit)."""
    global _domain_lock
    if _domain_lock is not None:
        return int(os.environ["ROS_DOMAIN_ID"])
    domain, _domain_lock = lock_domain_id(first, last)
    return domain


def isolate_dds() -> int:
    """Loopback-only discovery and a private domain for this test session; returns the domain."""
    os.environ.update(LOOPBACK_ENV)
    domain = claim_domain_id()
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    return domain


def wait_for(predicate: Callable[[], Any], timeout_s: float = 10.0, what: str = "condition",
             poll_s: float = 0.01) -> Any:
    """Return the predicate's first truthy value; fail after ``timeout_s`` naming ``what``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(poll_s)


class NodeProcess:
    """A node executable in its own process group, ended by PID (SIGINT, then SIGKILL).

    Every instance is remembered, so a test session can end whatever a failed fixture left
    running (:func:`stop_all`)."""

    started: list[NodeProcess] = []

    def __init__(self, argv: Sequence[str], log_path: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.log_path = log_path
        self._log = open(log_path, "w") if log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        NodeProcess.started.append(self)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path and self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 10.0) -> int:
        """Signal, wait, then SIGKILL. A process that must be killed takes its descendants
        along: a ``bms launch`` killed while it shut down would leave its nodes (each in a
        session of its own) publishing into the tests that follow."""
        if self.proc.poll() is None:
            if sig == signal.SIGKILL:
                self._kill_tree()
            else:
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    self._kill_tree()
        if self._log is not subprocess.DEVNULL:
            self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL, 5)

    def _kill_tree(self) -> None:
        left = descendants(self.proc.pid)
        self.proc.kill()
        self.proc.wait(5)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue


def children_of() -> dict[int, list[int]]:
    """Every process's children by parent PID (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        # The command name may hold spaces and parentheses: the fields start after the last ')'.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def descendants(pid: int) -> list[int]:
    """The PIDs of a process's children, theirs, and so on."""
    children = children_of()
    found, queue = [], [pid]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


def stop_all() -> None:
    """End every NodeProcess of this Python process that still runs."""
    for proc in NodeProcess.started:
        proc.stop(timeout_s=5.0)
    NodeProcess.started.clear()


def executable(package: str, name: str) -> str:
    """``<prefix>/lib/<package>/<name>``: where launch files find node executables."""
    from ament_index_python.packages import get_package_prefix

    return str(Path(get_package_prefix(package)) / "lib" / package / name)


def start_node(log_dir: Path, package: str, name: str, *ros_args: str, log: str | None = None) -> NodeProcess:
    """Start a node executable in the /bms namespace with extra ``--ros-args``."""
    argv = [executable(package, name), "--ros-args", "-r", "__ns:=/bms", *ros_args]
    return NodeProcess(argv, log_dir / f"{log or name}.log")


def params(**values: object) -> list[str]:
    """``-p key:=value`` arguments; booleans in ROS spelling."""
    out: list[str] = []
    for key, value in values.items():
        if isinstance(value, bool):
            value = str(value).lower()
        out += ["-p", f"{key}:={value}"]
    return out


class RosHarness:
    """A test-side node spinning in a background thread, with thread-safe message capture."""

    def __init__(self, name: str = "test_harness", namespace: str = "/bms") -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, namespace=namespace, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.lock = threading.Lock()
        self.received: dict[str, list] = {}
        self._clients: dict[tuple[type, str], Any] = {}
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._running:
            self.executor.spin_once(timeout_sec=0.05)

    def collect(self, msg_type: type, topic: str, qos: Any, raw: bool = False) -> list:
        """Subscribe and return the list that arriving messages are appended to."""
        bucket = self.received.setdefault(topic, [])

        def on_message(msg: Any) -> None:
            with self.lock:
                bucket.append(msg)

        self.node.create_subscription(msg_type, topic, on_message, qos, raw=raw)
        return bucket

    def snapshot(self, topic: str) -> list:
        with self.lock:
            return list(self.received.get(topic, []))

    def call(self, srv_type: type, name: str, request: Any, timeout_s: float = 20.0,
             resend_s: float = 3.0) -> Any:
        """Call a service and return the first answer. One client per service is kept, and a
        request that got no answer within ``resend_s`` is sent again (every request of the
        contract may be repeated: asking for the state it is in, injecting a fault again or
        resetting twice changes nothing). Under load an answer can be lost to DDS discovery: the
        request side of a new client matches the server before its answer side does."""
        key = (srv_type, name)
        with self.lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self.node.create_client(srv_type, name)
        wait_for(client.service_is_ready, timeout_s, f"service {name}")
        deadline = time.monotonic() + timeout_s
        futures = [client.call_async(request)]
        sent_at = time.monotonic()
        while True:
            done = next((f for f in futures if f.done()), None)
            if done is not None:
                return done.result()
            now = time.monotonic()
            if now >= deadline:
                raise AssertionError(f"timed out after {timeout_s:g} s waiting for an answer from {name} "
                                   f"({len(futures)} request(s) sent)")
            if now - sent_at >= resend_s:
                futures.append(client.call_async(request))
                sent_at = now
            time.sleep(0.02)

    def close(self) -> None:
        self._running = False
        self._thread.join(5)
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()
