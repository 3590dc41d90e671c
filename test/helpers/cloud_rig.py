"""Test support of the cloud bridge tests: real mosquitto and PostgreSQL, a feed of contract
topics published from the test's own node, and readers of what reached the database."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg

from bms_bridge.servers import BrokerInfo, DatabaseInfo, start_broker, start_database, stop_process
from bms_common import topics
from bms_common.testing import NodeProcess, RosHarness, executable, params, start_node
from bms_interfaces.msg import (
    CellMeasurements,
    CellStates,
    ContactorState,
    CurrentLimits,
    Fault,
    FaultLog,
    FaultLogEntry,
    FreezeFrame,
    PackState,
    SafetyStatus,
)

MODULES, CELLS, SENSORS = 4, 12, 4  # the demo pack


@dataclass
class Servers:
    root: Path
    broker: BrokerInfo
    database: DatabaseInfo
    broker_proc: subprocess.Popen
    db_proc: subprocess.Popen
    site: str = "lab"  # each test its own site: nothing of an earlier test's sessions reaches it

    def kill_broker(self) -> None:
        stop_process(self.broker_proc, sig=signal.SIGKILL)

    def restart_broker(self) -> None:
        self.broker_proc, self.broker = start_broker(Path(self.broker.data_dir), self.broker.port, self.broker.tls_port)

    def stop(self) -> None:
        stop_process(self.broker_proc)
        stop_process(self.db_proc, signal.SIGINT)  # PostgreSQL's fast shutdown


def start_servers(root: Path) -> Servers:
    broker_proc, broker = start_broker(root / "mosquitto")
    db_proc, database = start_database(root / "postgres")
    return Servers(root, broker, database, broker_proc, db_proc)


def start_sink(servers: Servers, log_dir: Path, name: str = "sink") -> NodeProcess:
    return NodeProcess([executable("bms_bridge", "cloud_sink"), "--dsn", servers.database.dsn,
                        "--broker-port", str(servers.broker.port), "--username", "sink",
                        "--client-id", f"sink-{servers.site}"],
                       log_dir / f"{name}.log", env={"BMS_MQTT_PASSWORD": servers.broker.users["sink"]})


def start_bridge(servers: Servers, log_dir: Path, outbox: Path, name: str = "cloud_bridge", **extra) -> NodeProcess:
    values = {"site": servers.site, "pack": "demo", "broker_port": servers.broker.port, "username": "bridge",
              "password": servers.broker.users["bridge"], "outbox": str(outbox), "ack_timeout_s": 4.0} | extra
    return start_node(log_dir, "bms_bridge", "cloud_bridge", "-r", f"__node:={name}", *params(**values), log=name)


def outbox_count(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(str(path), timeout=5) as db:
        try:
            return db.execute("SELECT count(*) FROM records").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def drained(path: Path) -> bool:
    """Nothing left in the outbox, and no drop waiting to be reported as a gap event."""
    if outbox_count(path):
        return False
    with sqlite3.connect(str(path), timeout=5) as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'drops'").fetchone()
    return not row or not int(row[0])


def query(servers: Servers, sql: str, *args) -> list[tuple]:
    with psycopg.connect(servers.database.dsn) as conn:
        return conn.execute(sql, args[0] if len(args) == 1 and isinstance(args[0], dict) else args).fetchall()


def stored_samples(servers: Servers) -> dict[tuple[int, int], list[float]]:
    """(module, sequence) -> voltages, for every module sample in every stored cell frame."""
    out: dict[tuple[int, int], list[float]] = {}
    for seqs, volts, cells in query(servers, "SELECT module_seq, voltages_v, cells_per_module FROM cell_frames "
                                    "WHERE site = %s", servers.site):
        for module, seq in enumerate(seqs):
            if seq >= 0:
                assert (module, seq) not in out, f"module {module} sample {seq} stored twice"
                out[(module, seq)] = volts[module * cells:(module + 1) * cells]
    return out


def stored_events(servers: Servers, type_: str | None = None) -> list[dict]:
    rows = query(servers, "SELECT body FROM events WHERE site = %s AND type = %s ORDER BY seq" if type_ else
                 "SELECT body FROM events WHERE site = %s ORDER BY seq", servers.site, *([type_] if type_ else []))
    return [r[0] if isinstance(r[0], dict) else json.loads(r[0]) for r in rows]


def all_seqs(servers: Servers) -> list[int]:
    rows = query(servers, " UNION ALL ".join(f"SELECT seq FROM {t} WHERE site = %(site)s" for t in
                                             ("cell_frames", "pack_summaries", "estimates", "limits", "events")),
                 {"site": servers.site})
    return sorted(r[0] for r in rows)


@dataclass
class Feed:
    """Publishes the demo pack's contract topics at 10 Hz from the test's node (wall-clock stamps)
    and remembers every cell sample it sent."""

    ros: RosHarness
    published: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    sent_at: dict[tuple[int, int], float] = field(default_factory=dict)
    seq: int = 0
    state: int = PackState.STATE_STANDBY
    level: int = SafetyStatus.LEVEL_OK
    faults: list = field(default_factory=list)
    running: bool = True

    def __post_init__(self) -> None:
        node = self.ros.node
        self.cells = node.create_publisher(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.CELL_MEASUREMENTS.qos)
        self.pack = node.create_publisher(PackState, topics.PACK_STATE.name, topics.PACK_STATE.qos)
        self.safety = node.create_publisher(SafetyStatus, topics.SAFETY_STATUS.name, topics.SAFETY_STATUS.qos)
        self.log = node.create_publisher(FaultLog, topics.FAULT_LOG.name, topics.FAULT_LOG.qos)
        self.contactors = node.create_publisher(ContactorState, topics.CONTACTOR_STATE.name, topics.CONTACTOR_STATE.qos)
        self.estimates = node.create_publisher(CellStates, topics.CELL_STATES.name, topics.CELL_STATES.qos)
        self.limits = node.create_publisher(CurrentLimits, topics.CURRENT_LIMITS.name, topics.CURRENT_LIMITS.qos)
        self.lock = threading.Lock()
        self.log_sequence = 0
        self.publish_fault_log([])
        self.timer = node.create_timer(0.1, self.tick)

    def tick(self) -> None:
        if not self.running:
            return
        now = self.ros.node.get_clock().now().to_msg()
        self.seq += 1
        rng = np.random.default_rng(self.seq)
        with self.lock:
            for module in range(MODULES):
                volts = np.round(3.6 + 0.2 * rng.random(CELLS), 4).astype(np.float32)
                msg = CellMeasurements(module_id=module, sequence=self.seq, cell_voltages_v=volts.tolist(),
                                       temperatures_degc=[25.0 + module] * SENSORS, balancing=[False] * CELLS)
                msg.header.stamp = now
                self.cells.publish(msg)
                self.published[(module, self.seq)] = volts
                self.sent_at[(module, self.seq)] = time.monotonic()
        state = PackState(operating_state=self.state, pack_voltage_v=180.0, pack_current_a=-10.0,
                          module_status=[1] * MODULES, state_reason="test")
        state.header.stamp = now
        self.pack.publish(state)
        status = SafetyStatus(sequence=self.seq, level=self.level, contactors_allowed=self.level < 3, faults=self.faults)
        status.header.stamp = now
        self.safety.publish(status)
        limits = CurrentLimits(max_charge_current_a=50.0, max_discharge_current_a=100.0)
        limits.header.stamp = now
        self.limits.publish(limits)
        if self.seq % 10 == 0:
            est = CellStates(module_count=MODULES, cells_per_module=CELLS, soc=[0.5] * MODULES * CELLS,
                             soh=[1.0] * MODULES * CELLS, capacity_ah=[50.0] * MODULES * CELLS,
                             internal_resistance_ohm=[0.001] * MODULES * CELLS, pack_soc=0.5, pack_soh=1.0)
            est.header.stamp = now
            self.estimates.publish(est)
        contactors = ContactorState(main_plus_closed=self.state == PackState.STATE_DRIVE,
                                    main_minus_closed=self.state == PackState.STATE_DRIVE)
        contactors.header.stamp = now
        self.contactors.publish(contactors)

    def publish_fault_log(self, entries: list[FaultLogEntry], latched: list[Fault] | None = None) -> None:
        self.log_sequence += 1
        msg = FaultLog(sequence=self.log_sequence, entries=entries, latched=latched or [])
        msg.header.stamp = self.ros.node.get_clock().now().to_msg()
        self.log.publish(msg)

    def raise_fault(self, count: int = 1) -> tuple[FaultLogEntry, Fault]:
        """Safety goes to FAULT with CELL_OV at module 1 cell 3, logged with a freeze frame."""
        now = self.ros.node.get_clock().now().to_msg()
        frame = FreezeFrame(pack_current_a=-12.5, pack_voltage_v=181.0, dc_link_voltage_v=180.5,
                            insulation_resistance_ohm=float("nan"), hvil_closed=True, module_id=1,
                            cell_voltages_v=[3.7] * 3 + [4.3] + [3.7] * 8, temperatures_degc=[26.0] * SENSORS)
        frame.pack_stamp = now
        frame.module_stamp = now
        entry = FaultLogEntry(key="CELL_OV/1/3", code="CELL_OV", max_level=3, module_id=1, cell=3, first=now,
                              last=now, count=count, description="cell 1/3 at 4.300 V above 4.25 V",
                              first_frame=frame, last_frame=frame)
        fault = Fault(code="CELL_OV", level=3, module_id=1, cell=3, value=4.3, limit=4.25, since=now, latched=True,
                      description=entry.description)
        with self.lock:
            self.level = SafetyStatus.LEVEL_FAULT
            self.faults = [fault]
        self.publish_fault_log([entry], [fault])
        return entry, fault

    def clear_fault(self, entry: FaultLogEntry) -> None:
        with self.lock:
            self.level = SafetyStatus.LEVEL_OK
            self.faults = []
        self.publish_fault_log([entry], [])
