"""Launcher test support: a throw-away ament prefix with stand-in node executables, and a
``bms launch`` process whose output a test can wait on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from bms_common.testing import wait_for

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "launch_samples"
PACKAGE = "launch_test_pkg"


def make_prefix(root: Path, fake_manager: bool = True) -> Path:
    """An install prefix holding ``launch_test_pkg`` (executables ``probe`` and ``composable``)
    and, with ``fake_manager``, a ``bms_common`` whose ``lifecycle_manager`` is the probe, so that
    ordering tests need no real lifecycle nodes."""
    shebang = f"#!{sys.executable}\n"
    packages = [(PACKAGE, {"probe": "launch_probe.py", "composable": None})]
    if fake_manager:
        packages.append(("bms_common", {"lifecycle_manager": "launch_probe.py"}))
    for package, executables in packages:
        index = root / "share" / "ament_index" / "resource_index" / "packages"
        index.mkdir(parents=True, exist_ok=True)
        (index / package).write_text("")
        (root / "share" / package).mkdir(parents=True, exist_ok=True)
        (root / "lib" / package).mkdir(parents=True, exist_ok=True)
        for exe, source in executables.items():
            body = ((HERE / source).read_text() if source
                    else f"import sys\nfrom {PACKAGE}.composable import main\nsys.exit(main())\n")
            path = root / "lib" / package / exe
            path.write_text(shebang + body)
            path.chmod(0o755)
    site = root / "lib" / "python"
    (site / PACKAGE).mkdir(parents=True, exist_ok=True)
    (site / PACKAGE / "__init__.py").write_text("")
    (site / PACKAGE / "composable.py").write_text((HERE / "launch_composable.py").read_text())
    dist = site / f"{PACKAGE}-0.0.0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 0.0.0\n")
    (dist / "entry_points.txt").write_text(
        f"[console_scripts]\ncomposable = {PACKAGE}.composable:main\nprobe = {PACKAGE}.probe:main\n")
    return root


def prefix_env(prefix: Path, probe_dir: Path) -> dict[str, str]:
    def prepend(variable: str, value: Path) -> str:
        return os.pathsep.join([str(value), *filter(None, [os.environ.get(variable)])])

    return {"AMENT_PREFIX_PATH": prepend("AMENT_PREFIX_PATH", prefix),
            "PYTHONPATH": prepend("PYTHONPATH", prefix / "lib" / "python"), "PROBE_DIR": str(probe_dir)}


def read_events(probe_dir: Path, name: str) -> list[tuple[str, int, int]]:
    path = probe_dir / f"{name}.events"
    if not path.exists():
        return []
    rows = [line.split() for line in path.read_text().splitlines()]
    return [(event, int(pid), int(stamp)) for event, pid, stamp in rows]


class Launch:
    """``bms launch ARGS`` as a child process; its output is collected line by line."""

    started: list[Launch] = []

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bms_tools.cli", "launch", *args], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env={**os.environ, **env}, start_new_session=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        Launch.started.append(self)

    @classmethod
    def stop_all(cls) -> None:
        """After a failed test: Ctrl-C whatever launch is still running, so it stops its nodes."""
        while cls.started:
            launch = cls.started.pop()
            if launch.proc.poll() is None:
                launch.interrupt()
                launch.wait()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_line(self, text: str, timeout_s: float = 10.0) -> str:
        return wait_for(lambda: next((line for line in self.lines if text in line), None), timeout_s,
                        f"a line with {text!r} from bms launch; got:\n{self.output}")

    def interrupt(self) -> None:
        os.kill(self.proc.pid, signal.SIGINT)

    def wait(self, timeout_s: float = 20.0) -> int:
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"bms launch did not end within {timeout_s} s; output:\n{self.output}") from None
        self._reader.join(timeout=5.0)
        return code
