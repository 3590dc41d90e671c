"""``cloud_bridge`` node: the contract topics as MQTT 5 records, stored first, forwarded later.

Every record goes to the outbox (SQLite WAL, survives restarts and power cuts) before it is
sent; it leaves the outbox when the sink acknowledges it after its commit (docs/cloud.md).
Events (safety level, faults raised and cleared with freeze frames, operating state, contactors,
gaps, remote commands) are made on change and never dropped; telemetry (pack summary, per-cell
frames, estimates, limits) is decimated to its configured rate and, when the outbox is full,
dropped oldest first and reported as a gap event.

Parameters: site ("site"), pack ("demo": configuration name or path), pack_id ("" = the pack
configuration's name); broker_host (127.0.0.1), broker_port (1883), tls (false), ca_file,
client_cert, client_key, username, password ("" = $BMS_MQTT_PASSWORD); state_dir ("state"),
outbox ("" = <state_dir>/cloud_outbox.sqlite), max_telemetry_records (1000000), window (1000),
ack_timeout_s (10.0), ack_mode ("sink" or "broker"); cell_rate_hz (1.0, 0 = every sample),
summary_period_s (1.0), estimates_period_s (10.0), limits_period_s (1.0); commands_enabled
(false), command_users (["operator"]), command_max_age_s (10.0).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from rclpy.node import Node

from bms_common import topics
from bms_common.component_info import ComponentAnnouncer, Identity
from bms_common.lifecycle import declare, run_main
from bms_common.pack_config import load_pack_config
from bms_interfaces.msg import (
    CellMeasurements,
    CellStates,
    CommandAudit,
    ComponentInfo,
    ContactorState,
    CurrentLimits,
    FaultLog,
    PackMeasurement,
    PackState,
    PowerLimits,
    SafetyStatus,
)
from bms_interfaces.srv import RequestState, ResetFaults

from . import commands, records
from .events import Watchers, level_name, seconds, state_name
from .forwarder import Forwarder
from .mqtt_link import BrokerSettings, MqttLink
from .outbox import Outbox

ORIGIN = "cloud_bridge"
COMMAND_TIMEOUT_S = 5.0


class CloudBridge(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("cloud_bridge", **kwargs)
        config = load_pack_config(str(declare(self, "pack", "demo")))
        self.site = str(declare(self, "site", "site"))
        self.pack_id = str(declare(self, "pack_id", "")) or config.name
        self.modules, self.cells = config.modules, config.cells_per_module
        self.sensors = len(config.temperature_sensors)
        self.config = config
        settings = BrokerSettings(
            host=str(declare(self, "broker_host", "127.0.0.1")), port=int(declare(self, "broker_port", 1883)),
            tls=bool(declare(self, "tls", False)), ca_file=str(declare(self, "ca_file", "")),
            client_cert=str(declare(self, "client_cert", "")), client_key=str(declare(self, "client_key", "")),
            username=str(declare(self, "username", "")),
            password=str(declare(self, "password", "")) or os.environ.get("BMS_MQTT_PASSWORD", ""))
        state_dir = Path(str(declare(self, "state_dir", "state")))
        outbox_path = Path(str(declare(self, "outbox", "")) or state_dir / "cloud_outbox.sqlite")
        self.cell_rate_hz = float(declare(self, "cell_rate_hz", 1.0))
        periods = {name: float(declare(self, name, default)) for name, default in
                   (("summary_period_s", 1.0), ("estimates_period_s", 10.0), ("limits_period_s", 1.0))}
        for name, value in (*periods.items(), ("cell_rate_hz", self.cell_rate_hz)):
            if not value >= 0 or (name != "cell_rate_hz" and value == 0):
                raise ValueError(f"{self.get_fully_qualified_name()}: parameter {name} must be > 0, got {value!r}")
        self.topic = lambda leaf: records.pack_topic(self.site, self.pack_id, leaf)
        self.outbox = Outbox(outbox_path, int(declare(self, "max_telemetry_records", 1_000_000)))
        self.watchers = Watchers(json.loads(str(self.outbox.get_meta("watchers", "{}"))))
        self._record_lock = threading.Lock()
        self.announcer = ComponentAnnouncer(self, Identity(kind=ComponentInfo.KIND_BRIDGE,
                                                           implementation="bms_bridge.bridge_node",
                                                           hardware_id=f"mqtt:{settings.where}"))
        self._gap_since_restart()

        self.forwarder = Forwarder(self.outbox, None, int(declare(self, "window", 1000)),
                                   float(declare(self, "ack_timeout_s", 10.0)), str(declare(self, "ack_mode", "sink")))
        offline = json.dumps({"online": False}).encode()
        self.link = MqttLink(settings, f"bms-bridge-{self.site}-{self.pack_id}", clean_start=False,
                             session_expiry_s=86400, will=(self.topic("status"), offline),
                             subscriptions=(self.topic("ack"),), on_message=self._on_mqtt,
                             on_connected=self._on_connected, on_state=self._on_link_state)
        self.forwarder.link = self.link

        self.commands_enabled = bool(declare(self, "commands_enabled", False))
        self.command_users = tuple(declare(self, "command_users", ["operator"]))
        self.command_max_age_s = float(declare(self, "command_max_age_s", 10.0))
        self.audit = self.create_publisher(CommandAudit, topics.COMMAND_AUDIT.name, topics.COMMAND_AUDIT.qos)
        self.command_link: MqttLink | None = None
        if self.commands_enabled:
            self.request_state = self.create_client(RequestState, topics.REQUEST_STATE)
            self.reset_faults = self.create_client(ResetFaults, topics.RESET_FAULTS)
            self.command_link = MqttLink(settings, f"bms-bridge-{self.site}-{self.pack_id}-commands",
                                         clean_start=True, subscriptions=(self.topic("cmd/#"),),
                                         on_message=self._on_command, on_state=self._on_link_state,
                                         on_subscribed=lambda: self.get_logger().info(
                                             f"remote commands: listening on {self.topic('cmd/#')}"))

        self.samples: dict[int, CellMeasurements] = {}
        self.latest: dict[str, object] = {}
        self.fresh: set[str] = set()
        self.components_seen = 0
        self.birth_due = time.monotonic() + 1.0
        sub = self.create_subscription
        sub(CellMeasurements, topics.CELL_MEASUREMENTS.name, self._on_cells, topics.CELL_MEASUREMENTS.qos)
        for msg_type, topic in ((PackMeasurement, topics.PACK_MEASUREMENT), (CellStates, topics.CELL_STATES),
                                (PowerLimits, topics.POWER_LIMITS), (CurrentLimits, topics.CURRENT_LIMITS)):
            sub(msg_type, topic.name, lambda msg, key=topic.name: self._keep(key, msg), topic.qos)
        sub(PackState, topics.PACK_STATE.name, self._on_pack_state, topics.PACK_STATE.qos)
        sub(SafetyStatus, topics.SAFETY_STATUS.name, self._on_safety, topics.SAFETY_STATUS.qos)
        sub(ContactorState, topics.CONTACTOR_STATE.name, self._on_contactors, topics.CONTACTOR_STATE.qos)
        sub(FaultLog, topics.FAULT_LOG.name, self._on_fault_log, topics.FAULT_LOG.qos)
        if self.cell_rate_hz > 0:
            self.create_timer(1.0 / self.cell_rate_hz, self._flush_cells)
        self.create_timer(periods["summary_period_s"], self._summary)
        self.create_timer(periods["estimates_period_s"], self._estimates)
        self.create_timer(periods["limits_period_s"], self._limits)
        self.create_timer(0.1, self.forwarder.pump)
        self.create_timer(1.0, self._housekeeping)
        self.get_logger().info(
            f"bridging pack {self.pack_id!r} of site {self.site!r} to {settings.where} "
            f"(outbox {outbox_path}, next sequence {self.outbox.next_seq()}, cells at "
            f"{self.cell_rate_hz or 'every sample'} Hz, remote commands {'ON' if self.commands_enabled else 'off'})")

    # --- records ------------------------------------------------------------------------------
    def record(self, kind: str, stamp_s: float, body: dict) -> int:
        leaf = f"event/{body['type']}" if kind == records.EVENT else kind
        return self.outbox.append(kind, kind == records.EVENT, self.topic(leaf),
                                  lambda seq: records.envelope(self.site, self.pack_id, seq, kind, stamp_s, body))

    def events(self, stamp_s: float, bodies: list[dict]) -> None:
        if not bodies:
            return
        with self._record_lock:
            for body in bodies:
                self.record(records.EVENT, stamp_s, body)
            self.outbox.set_meta(watchers=json.dumps(self.watchers.snapshot()))

    def _gap_since_restart(self) -> None:
        alive = self.outbox.get_meta("alive_utc")
        if alive is None:
            return
        now = time.time()
        self.record(records.EVENT, now, {
            "type": "gap", "reason": "bridge_down", "from_utc": _utc(float(alive)), "to_utc": _utc(now),
            "down_s": round(now - float(alive), 3),
            "note": "telemetry of this interval was not seen; events are recovered from /bms/fault_log"})

    # --- ROS inputs -----------------------------------------------------------------------------
    def _keep(self, key: str, msg: object) -> None:
        self.latest[key] = msg
        self.fresh.add(key)

    def _on_cells(self, msg: CellMeasurements) -> None:
        if msg.module_id >= self.modules or len(msg.cell_voltages_v) != self.cells:
            self.get_logger().warning(
                f"cell_measurements from module {msg.module_id} with {len(msg.cell_voltages_v)} cells ignored: pack "
                f"{self.pack_id!r} has modules 0..{self.modules - 1} of {self.cells} cells", throttle_duration_sec=5.0)
            return
        if self.cell_rate_hz == 0 and msg.module_id in self.samples:
            self._flush_cells()
        self.samples[msg.module_id] = msg
        if self.cell_rate_hz == 0 and len(self.samples) == self.modules:
            self._flush_cells()

    def _flush_cells(self) -> None:
        if not self.samples:
            return
        samples, self.samples = self.samples, {}
        stamp = max(seconds(m.header.stamp) for m in samples.values())
        self.record("cells", stamp, records.cell_frame(samples, self.modules, self.cells, self.sensors))

    def _on_pack_state(self, msg: PackState) -> None:
        self._keep(topics.PACK_STATE.name, msg)
        self.events(seconds(msg.header.stamp), self.watchers.pack_state(msg))

    def _on_safety(self, msg: SafetyStatus) -> None:
        self._keep(topics.SAFETY_STATUS.name, msg)
        self.events(seconds(msg.header.stamp), self.watchers.safety(msg))

    def _on_contactors(self, msg: ContactorState) -> None:
        self.events(seconds(msg.header.stamp), self.watchers.contactor_state(msg))

    def _on_fault_log(self, msg: FaultLog) -> None:
        self.events(seconds(msg.header.stamp), self.watchers.fault_log(msg))

    # --- telemetry timers -----------------------------------------------------------------------
    def _take(self, key: str) -> object | None:
        if key not in self.fresh:
            return None
        self.fresh.discard(key)
        return self.latest[key]

    def _summary(self) -> None:
        state = self._take(topics.PACK_STATE.name)
        if state is None:
            return
        f = records.finite
        body = {"state": state_name(state.operating_state), "state_reason": state.state_reason,
                "pack_voltage_v": f(state.pack_voltage_v), "pack_current_a": f(state.pack_current_a),
                "sum_of_cells_v": f(state.sum_of_cells_v),
                "min_cell_v": f(state.min_cell_voltage_v), "min_cell_at": [state.min_cell_voltage_module, state.min_cell_voltage_cell],
                "max_cell_v": f(state.max_cell_voltage_v), "max_cell_at": [state.max_cell_voltage_module, state.max_cell_voltage_cell],
                "mean_cell_v": f(state.mean_cell_voltage_v),
                "min_temp_degc": f(state.min_temperature_degc), "max_temp_degc": f(state.max_temperature_degc),
                "mean_temp_degc": f(state.mean_temperature_degc),
                "contactors": [state.main_plus_closed, state.main_minus_closed, state.precharge_closed],
                "module_status": list(state.module_status)}
        safety = self.latest.get(topics.SAFETY_STATUS.name)
        if safety is not None:
            body["safety_level"] = level_name(safety.level)
        sensor = self.latest.get(topics.PACK_MEASUREMENT.name)
        if sensor is not None:
            body |= {"dc_link_voltage_v": f(sensor.dc_link_voltage_v),
                     "insulation_resistance_ohm": f(sensor.insulation_resistance_ohm), "hvil_closed": sensor.hvil_closed}
        estimate = self.latest.get(topics.CELL_STATES.name)
        if estimate is not None:
            body |= {"pack_soc": f(estimate.pack_soc), "pack_soh": f(estimate.pack_soh)}
        self.record("summary", seconds(state.header.stamp), body)

    def _estimates(self) -> None:
        msg = self._take(topics.CELL_STATES.name)
        if msg is None:
            return
        fl = records.floats
        self.record("estimates", seconds(msg.header.stamp), {
            "soc": fl(msg.soc, 5), "soc_std": fl(msg.soc_std, 5), "soh": fl(msg.soh, 5),
            "capacity_ah": fl(msg.capacity_ah, 4), "resistance_ohm": fl(msg.internal_resistance_ohm, 7),
            "pack_soc": records.finite(msg.pack_soc), "pack_soh": records.finite(msg.pack_soh)})

    def _limits(self) -> None:
        current = self._take(topics.CURRENT_LIMITS.name)
        if current is None:
            return
        body = {"max_charge_current_a": records.finite(current.max_charge_current_a),
                "max_discharge_current_a": records.finite(current.max_discharge_current_a),
                "charge_reason": current.charge_reason, "discharge_reason": current.discharge_reason}
        power = self.latest.get(topics.POWER_LIMITS.name)
        if power is not None:
            fl = records.floats
            body["sop"] = {"horizons_s": fl(power.horizons_s), "charge_a": fl(power.max_charge_current_a, 3),
                           "discharge_a": fl(power.max_discharge_current_a, 3),
                           "charge_w": fl(power.max_charge_power_w, 1), "discharge_w": fl(power.max_discharge_power_w, 1)}
        self.record("limits", seconds(current.header.stamp), body)

    def _housekeeping(self) -> None:
        self.outbox.touch()
        self._report_drops()
        peers = len(self.announcer.peers)
        if peers != self.components_seen:
            self.components_seen = peers
            self.birth_due = time.monotonic() + 2.0
        if self.birth_due and time.monotonic() >= self.birth_due:
            self.birth_due = 0.0
            self._birth()

    def _report_drops(self) -> None:
        drops = self.outbox.take_drops()
        if drops:
            self.events(time.time(), [{"type": "gap", "reason": "outbox_full", "dropped": drops.count,
                                       "first_seq": drops.first_seq, "last_seq": drops.last_seq,
                                       "dropped_total": self.outbox.dropped_total}])
            self.get_logger().warning(f"outbox full: {drops.count} telemetry records dropped (oldest first, "
                                      f"sequences {drops.first_seq}..{drops.last_seq}); events are kept")

    def _birth(self) -> None:
        c = self.config
        components = [{"node": p.node_name, "kind": p.kind, "vendor": p.vendor, "implementation": p.implementation,
                       "version": p.version, "interface_version": p.interface_version,
                       "hardware_id": p.hardware_id, "host": p.host}
                      for p in sorted(self.announcer.peers.values(), key=lambda p: p.node_name)]
        self.record("birth", time.time(), {
            "pack": {"name": c.name, "chemistry": c.chemistry, "modules": c.modules,
                     "cells_per_module": c.cells_per_module, "nominal_capacity_ah": c.nominal_capacity_ah,
                     "temperature_sensors": [list(s) for s in c.temperature_sensors], "limits": c.limits},
            "components": components,
            "encoding": {"cells": "v_01mv: 0.1 mV integers, t_001c: 0.01 degC integers, module-major, null = NaN",
                         "cell_rate_hz": self.cell_rate_hz}})

    # --- MQTT side --------------------------------------------------------------------------------
    def _on_link_state(self, text: str) -> None:
        if text:
            self.get_logger().error(f"MQTT: {text}; still recording to the outbox "
                                    f"({sum(self.outbox.counts())} records waiting)")
        else:
            self.get_logger().info("MQTT: connected")

    def _on_connected(self) -> None:
        self.forwarder.restart_sending()
        self.link.publish(self.topic("status"), json.dumps(
            {"online": True, "wall": records.wall_now(), "next_seq": self.outbox.next_seq()}).encode(), retain=True)

    def _on_mqtt(self, msg) -> None:
        try:
            self.forwarder.on_ack(msg.payload)
        except (ValueError, KeyError, TypeError) as exc:
            self.get_logger().error(f"malformed ack on {msg.topic} ignored: {exc}")

    def _on_command(self, msg) -> None:
        try:
            self._command(msg)
        except Exception:  # noqa: BLE001 - a bad command must not end the command session
            self.get_logger().error(f"remote command on {msg.topic} failed:\n{traceback.format_exc()}")

    def _command(self, msg) -> None:
        props = msg.properties
        expiry = getattr(props, "MessageExpiryInterval", None) if props else None
        cmd = commands.check(msg.topic, self.topic("cmd"), msg.payload, bool(msg.retain), expiry,
                             self.command_users, self.command_max_age_s)
        reply = (getattr(props, "ResponseTopic", None), getattr(props, "CorrelationData", None)) if props else (None, None)
        if not cmd.accepted:
            self._answer(cmd, reply, False, cmd.answer)
            return
        if cmd.command == "request_state":
            client, request = self.request_state, RequestState.Request(state=commands.STATES[cmd.argument])
        else:
            client, request = self.reset_faults, ResetFaults.Request()
        if not client.wait_for_service(timeout_sec=2.0):  # on the command session's thread, not the executor
            self._answer(cmd, reply, False, f"service {client.srv_name} is not available")
            return
        future = client.call_async(request)  # answered by the executor; this session's thread waits
        deadline = time.monotonic() + COMMAND_TIMEOUT_S
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        result = future.result() if future.done() else None
        if result is None:
            future.cancel()
            self._answer(cmd, reply, False, f"no answer from {client.srv_name} within {COMMAND_TIMEOUT_S:g} s")
            return
        self._answer(cmd, reply, bool(getattr(result, "accepted", getattr(result, "success", False))), result.reason)

    def _answer(self, cmd: commands.Command, reply: tuple, success: bool, answer: str) -> None:
        audit = CommandAudit(origin=ORIGIN, user=cmd.user, peer=f"mqtt:{cmd.user}", command=cmd.command,
                             argument=cmd.argument, success=success, answer=answer)
        audit.header.stamp = self.get_clock().now().to_msg()
        self.audit.publish(audit)
        self.events(time.time(), [{"type": "command", "user": cmd.user, "command": cmd.command,
                                   "argument": cmd.argument, "success": success, "answer": answer}])
        text = f"remote command {cmd.command}({cmd.argument}) from {cmd.user!r}: {'done' if success else 'refused'}: {answer}"
        if success:
            self.get_logger().info(text)
        else:
            self.get_logger().warning(text)
        topic, correlation = reply
        if topic and self.command_link:
            props = Properties(PacketTypes.PUBLISH)
            if correlation:
                props.CorrelationData = correlation
            self.command_link.publish(topic, json.dumps({"command": cmd.command, "argument": cmd.argument,
                                                         "success": success, "answer": answer}).encode(),
                                      properties=props)

    def before_exit(self) -> None:
        self._report_drops()  # in the outbox for the next start if it cannot be sent now
        self.forwarder.pump()
        self.outbox.touch()
        if self.command_link:
            self.command_link.close()
        self.link.close(goodbye=(self.topic("status"), json.dumps({"online": False}).encode()))
        self.outbox.close()


def _utc(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def main(args: list[str] | None = None) -> int:
    return run_main(lambda: CloudBridge(), args)


if __name__ == "__main__":
    sys.exit(main())
