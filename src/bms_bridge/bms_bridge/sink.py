"""``cloud_sink``: MQTT records into PostgreSQL, acknowledged to the bridge after the commit.

No ROS: it can run in a data centre. It subscribes to every site's and pack's records
(``bms/v1/+/+/<kind>``), inserts them in batches (``ON CONFLICT DO NOTHING``: a resent record is
stored once), commits, and only then publishes ``{"ranges": [[first, last], ...]}`` on each
pack's ``ack`` topic, so the bridge deletes a record from its outbox only once it is stored.
Its MQTT session is persistent, so the broker queues records while the sink is down.

    cloud_sink --dsn "host=127.0.0.1 port=5432 dbname=bms user=postgres" --broker-port 1883 \\
        --username sink --password-env BMS_MQTT_PASSWORD [--tls --ca-file ca.crt]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import sys
import threading
import time
from datetime import timedelta
from importlib import resources

import psycopg

from . import records
from .forwarder import ranges_of
from .mqtt_link import BrokerSettings, MqttLink

TABLES = ("cell_frames", "pack_summaries", "estimates", "limits", "events")
KIND_TABLE = {"cells": "cell_frames", "summary": "pack_summaries", "estimates": "estimates", "limits": "limits",
              records.EVENT: "events", "birth": "events"}
SUBSCRIPTIONS = tuple(f"{records.TOPIC_ROOT}/+/+/{leaf}" for leaf in (*records.TELEMETRY_KINDS, "birth", "event/#"))


def apply_schema(conn: psycopg.Connection) -> None:
    conn.execute(resources.files("bms_bridge").joinpath("schema.sql").read_text())
    conn.commit()


def _nan(values: list) -> list[float]:
    return [float("nan") if v is None else v for v in values]


def row_of(record: dict) -> tuple[str, tuple]:
    """(table, values after the common columns) for one parsed record."""
    body = record["body"]
    kind = record["kind"]
    if kind == "cells":
        volts, temps = records.decoded_cell_frame(body)
        return "cell_frames", (body["modules"], body["cells"], body["sensors"], body["module_stamp"],
                               body["module_seq"], body["module_flags"], volts, temps)
    if kind == "summary":
        return "pack_summaries", (body.get("state"), body.get("safety_level"), body.get("pack_voltage_v"),
                                  body.get("pack_current_a"), body.get("pack_soc"), body.get("min_cell_v"),
                                  body.get("max_cell_v"), body.get("min_temp_degc"), body.get("max_temp_degc"),
                                  json.dumps(body))
    if kind == "estimates":
        return "estimates", (_nan(body["soc"]), _nan(body["soh"]), _nan(body["capacity_ah"]),
                             _nan(body["resistance_ohm"]), body.get("pack_soc"), body.get("pack_soh"))
    if kind == "limits":
        return "limits", (body.get("max_charge_current_a"), body.get("max_discharge_current_a"), json.dumps(body))
    return "events", ("birth" if kind == "birth" else body.get("type", "unknown"), json.dumps(body))


COLUMNS = {
    "cell_frames": "modules, cells_per_module, sensors_per_module, module_stamp_s, module_seq, module_flags, "
                   "voltages_v, temperatures_degc",
    "pack_summaries": "state, safety_level, pack_voltage_v, pack_current_a, pack_soc, min_cell_v, max_cell_v, "
                      "min_temp_degc, max_temp_degc, body",
    "estimates": "soc, soh, capacity_ah, resistance_ohm, pack_soc, pack_soh",
    "limits": "max_charge_current_a, max_discharge_current_a, body",
    "events": "type, body",
}


def insert_sql(table: str) -> str:
    columns = COLUMNS[table]
    marks = ", ".join(["%s"] * (5 + columns.count(",") + 1))
    return (f"INSERT INTO {table} (site, pack, seq, wall, stamp_s, {columns}) VALUES ({marks}) "
            "ON CONFLICT DO NOTHING")


class Sink:
    def __init__(self, dsn: str, settings: BrokerSettings, client_id: str = "bms-cloud-sink",
                 batch_s: float = 0.2, log=print) -> None:
        self.dsn = dsn
        self.log = log
        self.batch_s = batch_s
        self.stored = 0
        self.duplicates = 0
        self.rejected = 0
        self._days: set[tuple[str, object]] = set()
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self.conn = self._connect()
        apply_schema(self.conn)
        self.link = MqttLink(settings, client_id, clean_start=False, session_expiry_s=7 * 86400,
                             subscriptions=SUBSCRIPTIONS, on_message=self._queue.put,
                             on_state=lambda text: log(f"cloud_sink: MQTT: {text or 'connected'}"))

    def _connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.dsn)
        except psycopg.OperationalError as exc:
            raise SystemExit(f"cloud_sink: cannot connect to PostgreSQL ({self.dsn}): {exc}") from exc

    def _partition(self, table: str, wall) -> None:
        day = wall.date()
        if (table, day) in self._days:
            return
        name = f"{table}_{day:%Y%m%d}"
        with self.conn.transaction():
            self.conn.execute(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} "
                              f"FOR VALUES FROM ('{day}') TO ('{day + timedelta(days=1)}')")
        self._days.add((table, day))

    def store(self, messages: list) -> dict[tuple[str, str], list[int]]:
        """Insert one batch in one transaction; returns the sequences to acknowledge per pack."""
        rows: list[tuple[str, tuple]] = []
        acks: dict[tuple[str, str], list[int]] = {}
        bad: list[tuple[str, str, bytes]] = []
        for msg in messages:
            try:
                record = records.parse(msg.payload)
                table, values = row_of(record)
            except (records.RecordError, KeyError, TypeError, ValueError) as exc:
                bad.append((msg.topic, str(exc), bytes(msg.payload)))
                continue
            self._partition(table, record["wall_dt"])
            rows.append((table, (record["site"], record["pack"], record["seq"], record["wall_dt"],
                                 record.get("stamp"), *values)))
            acks.setdefault((record["site"], record["pack"]), []).append(record["seq"])
        by_table: dict[str, list[tuple]] = {}
        for table, values in rows:
            by_table.setdefault(table, []).append(values)
        with self.conn.transaction(), self.conn.cursor() as cur:
            for table, values in by_table.items():
                # One pipelined round trip per table and batch (psycopg 3 executemany).
                cur.executemany(insert_sql(table), values, returning=False)
                stored = max(cur.rowcount, 0)
                self.stored += stored
                self.duplicates += len(values) - stored
            for topic, error, payload in bad:
                cur.execute("INSERT INTO rejected_records (topic, error, payload) VALUES (%s, %s, %s)",
                            (topic, error, payload))
        for topic, error, _ in bad:
            self.rejected += 1
            self.log(f"cloud_sink: record on {topic} rejected (kept in rejected_records): {error}")
        return acks

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + self.batch_s
            while len(batch) < 2000 and time.monotonic() < deadline:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            while not self._stop.is_set():
                try:
                    acks = self.store(batch)
                    break
                except psycopg.OperationalError as exc:
                    self.log(f"cloud_sink: database error, retrying in 1 s (nothing acknowledged): {exc}")
                    self._stop.wait(1.0)
                    self.conn = self._connect_retry()
            else:
                return
            for (site, pack), seqs in acks.items():
                self.link.publish(records.pack_topic(site, pack, "ack"),
                                  json.dumps({"ranges": ranges_of(seqs)}).encode(), qos=1)

    def _connect_retry(self) -> psycopg.Connection:
        while not self._stop.is_set():
            try:
                return psycopg.connect(self.dsn)
            except psycopg.OperationalError:
                self._stop.wait(1.0)
        return self.conn

    def stop(self) -> None:
        self._stop.set()
        self.link.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cloud_sink", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", required=True, help="PostgreSQL connection string")
    parser.add_argument("--broker-host", default="127.0.0.1")
    parser.add_argument("--broker-port", type=int, default=1883)
    parser.add_argument("--username", default="sink")
    parser.add_argument("--password-env", default="BMS_MQTT_PASSWORD", help="environment variable with the password")
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--ca-file", default="")
    parser.add_argument("--client-cert", default="")
    parser.add_argument("--client-key", default="")
    parser.add_argument("--client-id", default="bms-cloud-sink")
    args = parser.parse_args(argv)
    settings = BrokerSettings(host=args.broker_host, port=args.broker_port, tls=args.tls, ca_file=args.ca_file,
                              client_cert=args.client_cert, client_key=args.client_key, username=args.username,
                              password=os.environ.get(args.password_env, ""))
    sink = Sink(args.dsn, settings, args.client_id, log=lambda text: print(text, flush=True))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sink.stop())
    print(f"cloud_sink: {settings.where} -> {args.dsn}", flush=True)
    sink.run()
    print(f"cloud_sink: stored {sink.stored}, duplicates {sink.duplicates}, rejected {sink.rejected}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
