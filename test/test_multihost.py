"""The system over four hosts in network namespaces (docs/deployment.md): it reaches DRIVE with
the README's multi-host discovery settings (SUBNET multicast, static peers), every host lists
every component with its host, and faults between hosts get their documented reactions: an
unplugged slave host, an HV host cut off from the master host, a host killed and restarted,
packet loss on a slave host's link, a slave host's clock ahead of the others.

One SUBNET system is shared by the fault tests, which leave it in DRIVE again; the measured
times are printed (pytest -s) and gathered in docs/deployment.md."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent / "helpers"))

from multihost import HOSTS, SENSOR_HOST, SLAVE_MODULES, Probe, System, assert_inside  # noqa: E402
from netns import Network, ensure_nftables  # noqa: E402

from bms_common.plausibility import STAMP_AHEAD_TOLERANCE_S  # noqa: E402
from bms_common.testing import wait_for  # noqa: E402
from bms_interfaces.msg import PackState  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root (CI runs as root)")

LIMITS = yaml.safe_load((ROOT / "config/limits/nmc.yaml").read_text())
MODULE_STALE_S = LIMITS["timeouts"]["module_stale_s"]
STALE_DEBOUNCE_S = LIMITS["events"]["STALE_MODULE"]["debounce_s"]
SAMPLE_PERIOD_S = 0.1  # of every module
PACE_MAX_LAG_S = 0.3  # how far behind simulated time the plant lets the supervisor run (Pacing)
# From the arrival of a host's newest sample to STALE_MODULE, on simulated time: the configured
# timeout and debounce plus one sample period (the sample that did not come), plus the lag pacing
# allows the supervisor's evaluation on a starved machine.
STALE_BOUND_S = MODULE_STALE_S + STALE_DEBOUNCE_S + SAMPLE_PERIOD_S + PACE_MAX_LAG_S + 1e-6
SILENCE_WALL_TIMEOUT_S = 3.0  # the contactor node's default
STARVED_MARGIN_S = 2.0  # wall time a process of the loaded 2-core machine may be late to react
DRIVE = PackState.STATE_DRIVE
# Bring-up across hosts (discovery, lifecycle, precharge) on the loaded 2-core machine.
BRING_UP_S = 150
LOSS_PERCENT = 20
LOSS_SAMPLES = 100  # of module 0 while its host loses packets: 10 s of simulated time


def figure(text: str) -> None:
    print(f"\n[multihost] {text}")


@pytest.fixture(scope="module")
def network():
    net = Network(HOSTS).up()
    yield net
    net.down()


def bring_up(system: System) -> tuple[Probe, Probe]:
    """Every host's processes, then DRIVE; a bring-up that fails shows the processes' logs."""
    try:
        probe, hv_probe = system.probe("master"), system.probe("hv")
        start = time.monotonic()
        system.start_all()
        drive = probe.first("pack", start, lambda e: e["state"] == DRIVE, BRING_UP_S, "DRIVE across hosts")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{system.logs()}") from None
    figure(f"{system.discovery}: DRIVE {drive['t'] - start:.1f} s after the processes started")
    return probe, hv_probe


@pytest.fixture(scope="module")
def subnet(network: Network, tmp_path_factory: pytest.TempPathFactory):
    system = System(network, "subnet", tmp_path_factory.mktemp("multihost"))
    try:
        yield (system, *bring_up(system))
    finally:
        system.stop()


def node_lists(system: System, hosts: tuple[str, ...]) -> dict[str, str]:
    """`bms node list` run inside each host's namespace at once."""
    runs = {h: subprocess.Popen(system.network.exec_argv(h, ["bms", "node", "list", "--wait", "40"]),
                                env=system.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for h in hosts}
    for host, run in runs.items():
        assert_inside(system.network, host, run, "bms node list")
    return {h: run.communicate(timeout=90)[0] for h, run in runs.items()}


def expected_components() -> dict[str, str]:
    nodes = {f"/bms/{n}": "master" for n in ("plant", "safety_supervisor", "master", "estimator",
                                              "lifecycle_manager", "multihost_probe_master")}
    nodes |= {"/bms/contactor": "hv", "/bms/multihost_probe_hv": "hv"}
    nodes |= {"/bms/current_sensor": SENSOR_HOST, "/bms/sim_link_current_sensor": SENSOR_HOST}
    for host, modules in SLAVE_MODULES.items():
        nodes |= {f"/bms/module_{m}": host for m in modules}
        nodes[f"/bms/sim_link_{'_'.join(map(str, modules))}"] = host
    return nodes


def assert_lists_every_component(listing: str, host: str) -> None:
    for node, where in expected_components().items():
        line = next((x for x in listing.splitlines() if x.startswith(node + " ")), None)
        assert line is not None, f"`bms node list` on host {host} misses {node}:\n{listing}"
        assert f" host={where} " in line, f"`bms node list` on host {host}: {node} should be on {where}: {line}"


def recover(probe: Probe) -> None:
    """By the rules: reset the latched faults (once their cause is gone), STANDBY, then DRIVE."""
    wait_for(lambda: probe.command("reset")["ok"], 60, "reset_faults to clear every latched fault")
    since = time.monotonic()
    # The master leaves ERROR once it has seen the cleared status too.
    wait_for(lambda: probe.command("request STANDBY")["ok"], 30, "the master to accept STANDBY")
    wait_for(lambda: probe.command("request DRIVE")["ok"], 30, "the master to accept DRIVE (contactors open)")
    probe.first("pack", since, lambda e: e["state"] == DRIVE, 60, "DRIVE again after the reset")


def test_drive_with_subnet_discovery_and_every_host_lists_every_component(subnet):
    system, _, _ = subnet
    for host, listing in node_lists(system, HOSTS).items():
        assert_lists_every_component(listing, host)


def silence_before(stale: dict, modules: list[int]) -> float:
    """Simulated time from the arrival of the modules' newest sample to the status raising the fault."""
    return stale["stamp"] - max(stale["last_arrival"][str(m)] for m in modules)


def test_an_unplugged_slave_host_makes_exactly_its_modules_stale_and_opens_the_contactors(subnet):
    system, probe, _ = subnet
    assert SENSOR_HOST == "slave1"  # this host carries the current sensor too
    mine = list(SLAVE_MODULES["slave1"])
    cut = time.monotonic()
    system.network.set_link("slave1", up=False)
    try:
        stale = probe.first("safety", cut, lambda e: e["stale"] == mine, 30, f"STALE_MODULE for modules {mine}")
        sensor = probe.first("safety", cut, lambda e: "STALE_CURRENT_SENSOR" in e["codes"], 30,
                             "STALE_CURRENT_SENSOR (the current sensor is on the unplugged host)")
        opened = probe.first("contactor", cut, lambda e: not e["closed"], 30, "the contactors to open")
        probe.first("pack", cut, lambda e: e["state"] == PackState.STATE_ERROR, 30, "the master in ERROR")
    finally:
        system.network.set_link("slave1", up=True)
    plugged = time.monotonic()
    assert stale["stale"] == mine and not stale["allowed"], stale
    assert all(set(e["stale"]) <= set(mine) for e in probe.events("safety", cut)), probe.events("safety", cut)
    silent_s = silence_before(stale, mine)
    figure(f"slave host unplugged: STALE_MODULE {mine} {stale['t'] - cut:.2f} s after the cut (wall), "
           f"{silent_s:.2f} s after its newest sample (sim); STALE_CURRENT_SENSOR {sensor['t'] - cut:.2f} s "
           f"after the cut (wall); contactors open {opened['t'] - cut:.2f} s after the cut")
    assert silent_s <= STALE_BOUND_S, f"stale after {silent_s:.3f} s of silence, bound {STALE_BOUND_S:.3f} s"

    for m in mine:
        probe.first("cells", plugged, lambda e, m=m: e["module"] == m, 30, f"module {m}'s samples after re-plugging")
    probe.first("current", plugged, lambda e: True, 30, "the current sensor's samples after re-plugging")
    # The data flows again, but STALE_MODULE is a latched FAULT: the pack stays open until reset.
    latest = probe.events("safety")[-1]
    assert latest["stale"] == mine and not latest["allowed"], latest
    recover(probe)


def test_an_hv_host_cut_off_from_the_master_host_opens_its_contactors_on_its_own(subnet):
    system, probe, hv_probe = subnet
    assert hv_probe.events("contactor")[-1]["closed"]
    cut = time.monotonic()
    system.network.set_link("hv", up=False)
    try:
        opened = hv_probe.first("contactor", cut, lambda e: not e["closed"], 30,
                                "the contactor node to open when the supervisor's status stops arriving")
    finally:
        system.network.set_link("hv", up=True)
    figure(f"HV host cut off: contactor node opened {opened['t'] - cut:.2f} s after the cut (wall)")
    assert opened["by_safety"], opened
    # Its simulated clock stands still without /clock: the wall-clock silence timeout opens it.
    assert opened["t"] - cut <= SILENCE_WALL_TIMEOUT_S + STARVED_MARGIN_S, opened
    recover(probe)


def test_a_killed_slave_host_restarts_rejoins_and_the_system_recovers(subnet):
    system, probe, _ = subnet
    killed = time.monotonic()
    system.stop_host("slave2", sig=9)
    theirs = list(SLAVE_MODULES["slave2"])
    stale = probe.first("safety", killed, lambda e: e["stale"] == theirs, 30, f"STALE_MODULE for modules {theirs}")
    assert all(set(e["stale"]) <= set(theirs) for e in probe.events("safety", killed))
    # The current sensor is on another host: it stays fresh.
    assert not [e for e in probe.events("safety", killed) if "STALE_CURRENT_SENSOR" in e["codes"]]
    assert silence_before(stale, theirs) <= STALE_BOUND_S, stale
    probe.first("contactor", killed, lambda e: not e["closed"], 30, "the contactors to open")
    restarted = time.monotonic()
    # The lifecycle manager brings nodes up once, at the system's start: a board restarted on its
    # own (systemd's Restart=) activates its nodes itself, as the supervisor and contactor node do.
    system.start_slave_host("slave2", "-p", "autostart:=true")
    for m in SLAVE_MODULES["slave2"]:
        probe.first("cells", restarted, lambda e, m=m: e["module"] == m, 90, f"module {m} back from the restarted host")
    figure(f"slave host killed: STALE_MODULE {stale['t'] - killed:.2f} s after the kill (wall), "
           f"{silence_before(stale, theirs):.2f} s after its newest sample (sim); restarted host's modules "
           f"publishing {time.monotonic() - restarted:.1f} s after its start")
    recover(probe)


def test_packet_loss_on_a_slave_host_delays_samples_without_a_false_stale_fault(subnet):
    if not ensure_nftables():
        pytest.skip("nft (Debian package nftables) is not installed; CI=true as root installs it")
    system, probe, _ = subnet
    probe.command("gaps")
    since = time.monotonic()
    totals: dict[str, int] = {}
    worst: dict[str, float] = {}

    def enough() -> bool:
        answer = probe.command("gaps")
        for module, count in answer["samples"].items():
            totals[module] = totals.get(module, 0) + count
        for module, gap in answer["max_gap_s"].items():
            worst[module] = max(worst.get(module, 0.0), gap)
        return totals.get("0", 0) >= LOSS_SAMPLES

    system.network.set_loss("slave1", LOSS_PERCENT)
    try:
        wait_for(enough, 120, f"{LOSS_SAMPLES} samples of module 0 through {LOSS_PERCENT} % packet loss", poll_s=1.0)
    finally:
        system.network.set_loss("slave1", 0)
    figure(f"{LOSS_PERCENT} % packet loss on slave1: longest gap between samples (wall) "
           + ", ".join(f"module {m} {worst[m]:.2f} s" for m in sorted(worst)) + f"; stale timeout {MODULE_STALE_S} s")
    assert not [e for e in probe.events("safety", since) if e["stale"]], probe.events("safety", since)
    assert probe.events("pack")[-1]["state"] == DRIVE


def restart_slave2(system: System, stamp_offset_s: float) -> float:
    system.stop_host("slave2")
    started = time.monotonic()
    system.start_slave_host("slave2", "-p", "autostart:=true", "-p", f"stamp_offset_s:={stamp_offset_s}")
    return started


def test_a_slave_host_clock_ahead_beyond_the_tolerance_makes_its_modules_stale(subnet):
    system, probe, _ = subnet
    theirs = list(SLAVE_MODULES["slave2"])
    # Well beyond: a board that lags behind simulated time delivers its samples later on the
    # receivers' clocks, and pacing does not hold for a board whose stamps are ahead.
    ahead_s = 8 * STAMP_AHEAD_TOLERANCE_S
    started = restart_slave2(system, ahead_s)
    # Its samples arrive, every receiver drops them (PLAUS_STAMP), so its modules are stale.
    for m in theirs:
        probe.first("cells", started, lambda e, m=m: e["module"] == m, 90, f"module {m} back with its clock ahead")
    probe.first("safety", started, lambda e: e["stale"] == theirs and "PLAUS_STAMP" in e["codes"], 60,
                f"PLAUS_STAMP and STALE_MODULE for modules {theirs}, whose samples are stamped {ahead_s} s ahead")
    probe.first("contactor", started, lambda e: not e["closed"], 30, "the contactors to open")
    assert not probe.command("reset")["ok"], "reset_faults cleared STALE_MODULE while the samples are dropped"
    # Within the tolerance the host's samples are used: the system drives again.
    started = restart_slave2(system, STAMP_AHEAD_TOLERANCE_S / 2)
    for m in theirs:
        probe.first("cells", started, lambda e, m=m: e["module"] == m, 90, f"module {m} back with its clock ahead")
    recover(probe)


def test_drive_with_static_peers(network: Network, subnet, tmp_path: Path):
    # After the SUBNET system: it is stopped first, the namespaces stay.
    system, _, _ = subnet
    system.stop()
    peers = System(network, "static_peers", tmp_path)
    try:
        probe, _ = bring_up(peers)
        assert_lists_every_component(node_lists(peers, ("slave2",))["slave2"], "slave2")
        assert probe.events("pack")[-1]["state"] == DRIVE
    finally:
        peers.stop()
