"""A test network of hosts in Linux network namespaces (docs/deployment.md, "Testing on one machine").

Every host is a namespace of its own with ``lo`` and one veth (``eth0``, 10.47.0.<n>/24); the
other ends of the veths are ports of a bridge that lives in a namespace of its own too, so nothing
is created in the machine's own namespace and the test addresses exist only inside these
namespaces: no DDS packet of a process started here can reach the machine's real interfaces.
Namespace names carry the creating process id, so parallel sessions never clash, and a session
removes what a killed session left behind.

As a script (root): ``python test/helpers/netns.py up master slave`` builds a network and prints
how to run commands on it; ``python test/helpers/netns.py down`` removes every test network whose
creator is gone.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "bmsnet"
LOSS_TABLE = "bmsloss"
SUBNET = "10.47.0"
NETNS_DIR = Path("/run/netns")
# Discovery environments of the README's multi-host section, keyed by name.
DISCOVERY_MODES = ("subnet", "static_peers")


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def namespaces() -> list[str]:
    return sorted(line.split()[0] for line in run("ip", "netns", "list").splitlines() if line.strip())


def remove_orphans() -> None:
    """Remove the test namespaces of sessions that are gone (killed before their clean-up ran)."""
    for name in namespaces():
        match = re.fullmatch(rf"{PREFIX}(\d+)-\w+", name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            remove_namespace(name)


def remove_namespace(name: str) -> None:
    """End every process inside the namespace (only test processes live there), then delete it."""
    pids = run("ip", "netns", "pids", name).split() if (NETNS_DIR / name).exists() else []
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in pids:
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.02)  # reaping a SIGKILLed process: no condition to wait on but its exit
    if (NETNS_DIR / name).exists():
        run("ip", "netns", "delete", name)


@dataclass
class Host:
    name: str
    namespace: str
    address: str
    port: str  # the bridge-side end of the host's veth

    def inode(self) -> int:
        return os.stat(NETNS_DIR / self.namespace).st_ino


@dataclass
class Network:
    """Hosts joined by one bridge. ``up()`` builds it, ``down()`` removes it (also at exit)."""

    host_names: Sequence[str]
    hosts: dict[str, Host] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tag = f"{PREFIX}{os.getpid()}"
        self.bridge_namespace = f"{tag}-bridge"
        for index, name in enumerate(self.host_names, start=1):
            if not re.fullmatch(r"[a-z0-9]{1,8}", name):
                raise ValueError(f"host name {name!r}: 1-8 lower-case letters or digits")
            self.hosts[name] = Host(name, f"{tag}-{name}", f"{SUBNET}.{index}", f"p{index}")

    def up(self) -> Network:
        if os.geteuid() != 0:
            raise PermissionError("network namespaces need root (CI runs as root)")
        remove_orphans()
        atexit.register(self.down)
        run("ip", "netns", "add", self.bridge_namespace)
        bridge = ("ip", "-n", self.bridge_namespace)
        run(*bridge, "link", "set", "lo", "up")
        run(*bridge, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        run(*bridge, "link", "set", "br0", "up")
        for host in self.hosts.values():
            run("ip", "netns", "add", host.namespace)
            inside = ("ip", "-n", host.namespace)
            run(*inside, "link", "set", "lo", "up")
            run(*inside, "link", "add", "eth0", "type", "veth", "peer", "name", host.port,
                "netns", self.bridge_namespace)
            run(*inside, "addr", "add", f"{host.address}/24", "dev", "eth0")
            run(*inside, "link", "set", "eth0", "up")
            # DDS discovery multicast (239.255.0.1) leaves through eth0: there is no other route.
            run(*inside, "route", "add", "224.0.0.0/4", "dev", "eth0")
            run(*bridge, "link", "set", host.port, "master", "br0")
            run(*bridge, "link", "set", host.port, "up")
        return self

    def down(self) -> None:
        for host in self.hosts.values():
            remove_namespace(host.namespace)
        remove_namespace(self.bridge_namespace)

    def set_link(self, host: str, up: bool) -> None:
        """Plug (up) or unplug (down) the host's cable at the bridge."""
        run("ip", "-n", self.bridge_namespace, "link", "set", self.hosts[host].port, "up" if up else "down")

    def set_loss(self, host: str, percent: int) -> None:
        """Drop ``percent`` % of the packets the host sends (nftables ``numgen random``, inside
        the host's namespace: this kernel has no netem); 0 removes the rule."""
        nft = ("ip", "netns", "exec", self.hosts[host].namespace, "nft")
        if LOSS_TABLE in run(*nft, "list", "tables"):
            run(*nft, "delete", "table", "inet", LOSS_TABLE)
        if percent > 0:
            run(*nft, "add", "table", "inet", LOSS_TABLE)
            run(*nft, "add", "chain", "inet", LOSS_TABLE, "out",
                "{ type filter hook output priority 0 ; policy accept ; }")
            run(*nft, "add", "rule", "inet", LOSS_TABLE, "out", "oifname", "eth0", "numgen", "random", "mod", "100",
                "<", str(percent), "drop")

    def exec_argv(self, host: str, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.hosts[host].namespace, *argv]

    def discovery_env(self, mode: str) -> dict[str, str]:
        """The README's multi-host settings: SUBNET multicast discovery, or unicast static peers."""
        if mode == "subnet":
            return {"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET", "ROS_STATIC_PEERS": ""}
        if mode == "static_peers":
            peers = ";".join(h.address for h in self.hosts.values())
            return {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "ROS_STATIC_PEERS": peers}
        raise ValueError(f"discovery mode {mode!r}: one of {', '.join(DISCOVERY_MODES)}")

    def host_of(self, pid: int) -> str | None:
        """The test host whose namespace the process runs in, None when it is outside them all."""
        inode = os.stat(f"/proc/{pid}/ns/net").st_ino
        return next((h.name for h in self.hosts.values() if h.inode() == inode), None)


def ensure_nftables() -> bool:
    """Whether ``nft`` is there; in CI (CI=true, root) it is installed first (Debian: nftables)."""
    if shutil.which("nft"):
        return True
    if os.environ.get("CI") == "true" and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ("apt-get", "install", "-y", "-qq", "nftables")
        if subprocess.run(install, capture_output=True, env=env, timeout=300).returncode != 0:
            subprocess.run(("apt-get", "update", "-qq"), capture_output=True, env=env, timeout=300)
            subprocess.run(install, capture_output=True, env=env, timeout=300)
    return shutil.which("nft") is not None


def main(argv: list[str]) -> int:
    if argv[:1] == ["down"]:
        remove_orphans()
        return 0
    if argv[:1] != ["up"] or len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    network = Network(argv[1:]).up()
    for host in network.hosts.values():
        print(f"{host.name}: {host.address}  ip netns exec {host.namespace} <command>")
    print("Ctrl-C removes the network")
    try:
        signal.pause()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
