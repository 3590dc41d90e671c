"""Cloud bridge figures (bms_bridge, docs/cloud.md), against a real mosquitto and PostgreSQL:

1. bytes per cell frame of a 16 x 12 pack (4 sensors per module) per encoding: the bridge's
   quantised JSON, the same JSON with float voltages, raw float32; and stored bytes per frame
   in PostgreSQL (table + index + TOAST), giving storage per day at 1 Hz and 10 Hz;
2. records per second through outbox -> broker -> sink -> PostgreSQL -> ack -> outbox delete
   (the bridge's forwarder without ROS, cell frames of 16 x 12);
3. the cloud_bridge node's CPU (share of one core) fed 16 modules at 10 Hz over real DDS, with
   cell frames at 1 Hz and at 10 Hz.

    source env.sh && python bench/cloud.py [--records 3000] [--cpu-seconds 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import psycopg

from bms_bridge import records
from bms_bridge.forwarder import Forwarder
from bms_bridge.mqtt_link import BrokerSettings, MqttLink
from bms_bridge.outbox import Outbox
from bms_bridge.servers import start_broker, start_database, stop_process
from bms_bridge.sink import Sink, apply_schema
from bms_common.testing import NodeProcess, isolate_dds, params, start_node

MODULES, CELLS, SENSORS = 16, 12, 4


def fake_samples(seq: int) -> dict[int, SimpleNamespace]:
    rng = np.random.default_rng(seq)
    stamp = SimpleNamespace(sec=1000 + seq, nanosec=0)
    return {m: SimpleNamespace(cell_voltages_v=np.round(3.6 + 0.2 * rng.random(CELLS), 4).astype(np.float32).tolist(),
                               temperatures_degc=(25 + rng.random(SENSORS)).tolist(), header=SimpleNamespace(stamp=stamp),
                               sequence=seq, module_flags=0) for m in range(MODULES)}


def frame_payload(seq: int) -> bytes:
    body = records.cell_frame(fake_samples(seq), MODULES, CELLS, SENSORS)
    return records.envelope("bench", "p16x12", seq, "cells", 1000.0 + seq, body)


def encodings() -> dict[str, int]:
    samples = fake_samples(1)
    quantised = len(frame_payload(1))
    floats_body = records.cell_frame(samples, MODULES, CELLS, SENSORS)
    floats_body["v_01mv"] = [v for m in range(MODULES) for v in samples[m].cell_voltages_v]
    floats_body["t_001c"] = [t for m in range(MODULES) for t in samples[m].temperatures_degc]
    as_floats = len(records.envelope("bench", "p16x12", 1, "cells", 1001.0, floats_body))
    raw = len(struct.pack(f"<{MODULES * (CELLS + SENSORS)}f", *([0.0] * MODULES * (CELLS + SENSORS)))) + MODULES * 12
    return {"quantised JSON (the bridge's)": quantised, "JSON, float voltages": as_floats,
            "raw float32 + per-module stamp/seq": raw}


def throughput(broker, database, n: int, workdir: Path) -> tuple[float, float]:
    sink_settings = BrokerSettings(port=broker.port, username="sink", password=broker.users["sink"])
    sink = Sink(database.dsn, sink_settings, "bench-sink", log=lambda _t: None)
    threading.Thread(target=sink.run, daemon=True).start()
    outbox = Outbox(workdir / "bench_outbox.sqlite")
    forwarder = Forwarder(outbox, window=1000, ack_timeout_s=30)
    topic = records.pack_topic("bench", "p16x12", "cells")
    link = MqttLink(BrokerSettings(port=broker.port, username="bridge", password=broker.users["bridge"]),
                    "bench-bridge", clean_start=True, subscriptions=(records.pack_topic("bench", "p16x12", "ack"),),
                    on_message=lambda msg: forwarder.on_ack(msg.payload))
    forwarder.link = link
    link.connected.wait(30)
    payloads = [frame_payload(i) for i in range(1, n + 1)]
    start = time.perf_counter()
    for i, payload in enumerate(payloads):
        outbox.append("cells", False, topic, lambda _seq, p=payload: p)
        if i % 50 == 0:
            forwarder.pump()
    appended = time.perf_counter() - start
    while sum(outbox.counts()) and time.perf_counter() - start < 300:
        forwarder.pump()
        time.sleep(0.005)
    total = time.perf_counter() - start
    left = sum(outbox.counts())
    sink.stop()
    link.close()
    outbox.close()
    if left:
        print(f"  warning: {left} records still unacknowledged after 300 s")
    return n / appended, n / total


def stored_bytes_per_frame(database) -> float:
    with psycopg.connect(database.dsn) as conn:
        rows = conn.execute("SELECT count(*) FROM cell_frames WHERE site = 'bench'").fetchone()[0]
        size = conn.execute("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_inherits i "
                            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'cell_frames'::regclass"
                            ).fetchone()[0]
    return float(size) / max(rows, 1)


def bridge_cpu(broker, workdir: Path, seconds: float, cell_rate_hz: float) -> float:
    """Share of one core the cloud_bridge process uses, fed 16 modules at 10 Hz."""
    import rclpy
    from rclpy.node import Node

    from bms_common import topics
    from bms_interfaces.msg import CellMeasurements, PackState

    bridge: NodeProcess = start_node(workdir, "bms_bridge", "cloud_bridge", *params(
        site="bench", pack="nmc_16x12", broker_port=broker.port, username="bridge", password=broker.users["bridge"],
        outbox=str(workdir / f"cpu_{cell_rate_hz:g}.sqlite"), cell_rate_hz=cell_rate_hz, ack_mode="broker"),
        log=f"bridge_{cell_rate_hz:g}")
    rclpy.init()
    node = Node("bench_feed", namespace="/bms")
    cells = node.create_publisher(CellMeasurements, topics.CELL_MEASUREMENTS.name, topics.CELL_MEASUREMENTS.qos)
    pack = node.create_publisher(PackState, topics.PACK_STATE.name, topics.PACK_STATE.qos)
    seq = [0]

    def tick() -> None:
        seq[0] += 1
        now = node.get_clock().now().to_msg()
        for m in range(MODULES):
            msg = CellMeasurements(module_id=m, sequence=seq[0], cell_voltages_v=[3.7] * CELLS,
                                   temperatures_degc=[25.0] * SENSORS, balancing=[False] * CELLS)
            msg.header.stamp = now
            cells.publish(msg)
        state = PackState(module_status=[1] * MODULES)
        state.header.stamp = now
        pack.publish(state)

    node.create_timer(0.1, tick)
    deadline = time.monotonic() + 8.0  # discovery and start-up
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    ticks = os.sysconf("SC_CLK_TCK")

    def cpu_s() -> float:
        fields = Path(f"/proc/{bridge.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    c0, t0 = cpu_s(), time.monotonic()
    while time.monotonic() - t0 < seconds:
        rclpy.spin_once(node, timeout_sec=0.05)
    share = (cpu_s() - c0) / (time.monotonic() - t0)
    node.destroy_node()
    rclpy.shutdown()
    bridge.stop()
    return share


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--cpu-seconds", type=float, default=20.0)
    args = parser.parse_args()
    isolate_dds()
    root = Path(tempfile.mkdtemp(prefix="bms-cloud-bench-"))
    root.chmod(0o755)
    broker_proc, broker = start_broker(root / "mosquitto")
    db_proc, database = start_database(root / "postgres")
    try:
        with psycopg.connect(database.dsn) as conn:
            apply_schema(conn)
        print("1. bytes per cell frame, 16 x 12 cells + 16 x 4 temperatures:")
        sizes = encodings()
        wire = sizes["quantised JSON (the bridge's)"]
        for name, size in sizes.items():
            print(f"   {name:40s} {size:6d} B")
        sent, through = throughput(broker, database, args.records, root)
        stored = stored_bytes_per_frame(database)
        print(f"   stored in PostgreSQL (row, index, TOAST): {stored:.0f} B per frame")
        for rate in (1, 10):
            print(f"   storage per day at {rate:2d} Hz: {stored * rate * 86400 / 1e9:.2f} GB "
                  f"(MQTT payload {wire * rate * 86400 / 1e9:.2f} GB)")
        print(f"2. {args.records} cell frames: outbox append {sent:.0f} records/s; through broker, sink, "
              f"commit and ack {through:.0f} records/s")
        for rate in (1.0, 10.0):
            share = bridge_cpu(broker, root, args.cpu_seconds, rate)
            print(f"3. cloud_bridge CPU at 16 x 12, inputs 10 Hz, cell frames {rate:g} Hz: {100 * share:.1f} % of one core")
    finally:
        stop_process(broker_proc)
        stop_process(db_proc, signal.SIGINT)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
