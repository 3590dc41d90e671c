"""Remote commands through the cloud bridge (docs/cloud.md, Remote commands), against a real
mosquitto: valid request_state and reset_faults reach the services and are answered by MQTT 5
request/response; malformed, unauthorised, retained, expired, stale and expiry-less commands are
refused; every attempt is audited on /bms/command_audit and as an event."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bms_bridge.servers import start_broker, stop_process
from bms_common import topics
from bms_common.testing import RosHarness, params, start_node, wait_for
from bms_interfaces.msg import CommandAudit
from bms_interfaces.srv import RequestState, ResetFaults

SITE, PACK = "cmd_site", "demo"
ROOT = f"bms/v1/{SITE}/{PACK}"


@pytest.fixture(scope="module")
def broker():
    root = Path(tempfile.mkdtemp(prefix="bms-cloud-cmd-"))
    root.chmod(0o755)
    proc, info = start_broker(root / "mosquitto")
    yield info
    stop_process(proc)
    shutil.rmtree(root, ignore_errors=True)


class Operator:
    """An MQTT 5 client that sends commands and collects the replies by correlation data."""

    def __init__(self, info, user: str) -> None:
        self.user = user
        self.replies: dict[bytes, dict] = {}
        self.events: list[dict] = []
        self.acks: dict[int, int] = {}
        self.ready = threading.Event()
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{user}", protocol=mqtt.MQTTv5)
        client.username_pw_set(user, info.users[user])
        client.on_connect = lambda c, *_: c.subscribe([(f"{ROOT}/reply/{user}/#", 1), (f"{ROOT}/event/command", 1)])
        client.on_subscribe = lambda *_: self.ready.set()
        client.on_message = self._reply
        client.on_publish = lambda _c, _u, mid, reason, _p: self.acks.__setitem__(mid, reason.value)
        client.connect("127.0.0.1", info.port)
        client.loop_start()
        self.client = client
        wait_for(self.ready.is_set, 30, f"{user}'s reply subscription")

    def _reply(self, _client, _userdata, msg) -> None:
        if msg.topic.endswith("/event/command"):
            self.events.append(json.loads(msg.payload))
            return
        self.replies[bytes(msg.properties.CorrelationData)] = json.loads(msg.payload)

    def send(self, command: str, body: dict | bytes, tag: str, *, as_user: str | None = None, retain: bool = False,
             expiry_s: int | None = 30) -> int:
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = f"{ROOT}/reply/{self.user}/{tag}"
        props.CorrelationData = tag.encode()
        if expiry_s is not None:
            props.MessageExpiryInterval = expiry_s
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        info = self.client.publish(f"{ROOT}/cmd/{as_user or self.user}/{command}", payload, qos=1, retain=retain,
                                   properties=props)
        return info.mid

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def utc(offset_s: float = 0.0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=offset_s)).isoformat().replace("+00:00", "Z")


def test_remote_commands_are_checked_answered_and_audited(ros: RosHarness, broker, tmp_path: Path):
    requested: list[int] = []

    def request_state(request, response):
        requested.append(request.state)
        response.accepted, response.reason, response.current_state = True, "going to DRIVE", request.state
        return response

    def reset_faults(_request, response):
        response.success, response.reason = True, "no latched fault remains"
        return response

    ros.node.create_service(RequestState, topics.REQUEST_STATE, request_state)
    ros.node.create_service(ResetFaults, topics.RESET_FAULTS, reset_faults)
    audits = ros.collect(CommandAudit, topics.COMMAND_AUDIT.name, topics.COMMAND_AUDIT.qos)
    outbox = tmp_path / "outbox.sqlite"
    bridge = start_node(tmp_path, "bms_bridge", "cloud_bridge", *params(
        site=SITE, pack="demo", broker_port=broker.port, username="bridge", password=broker.users["bridge"],
        outbox=str(outbox), ack_mode="broker", commands_enabled=True), "-p", "command_users:=[operator]")
    operator = Operator(broker, "operator")
    viewer = Operator(broker, "viewer")
    try:
        wait_for(lambda: "remote commands: listening on" in bridge.output(), 60, "the bridge's command subscription")
        operator.send("request_state", {"argument": "DRIVE", "issued_utc": utc()}, "ok1")
        wait_for(lambda: b"ok1" in operator.replies, 30, "the answer to a valid request_state")
        assert operator.replies[b"ok1"]["success"] and requested == [2]
        operator.send("reset_faults", {"issued_utc": utc()}, "ok2")
        refused = {
            "malformed": operator.send("request_state", b"{not json", "malformed"),
            "retained": operator.send("request_state", {"argument": "DRIVE", "issued_utc": utc()}, "retained",
                                      retain=True),
            "expired": operator.send("request_state", {"argument": "DRIVE", "issued_utc": utc(-2),
                                                       "expires_utc": utc(-1)}, "expired"),
            "stale": operator.send("request_state", {"argument": "DRIVE", "issued_utc": utc(-60)}, "stale"),
            "no_expiry": operator.send("request_state", {"argument": "DRIVE", "issued_utc": utc()}, "no_expiry",
                                       expiry_s=None),
            "bad_argument": operator.send("request_state", {"argument": "FLY", "issued_utc": utc()}, "bad_argument"),
            "unknown": operator.send("open_contactors", {"issued_utc": utc()}, "unknown"),
        }
        viewer.send("request_state", {"argument": "DRIVE", "issued_utc": utc()}, "viewer")
        forged = viewer.send("request_state", {"argument": "DRIVE", "issued_utc": utc()}, "forged", as_user="operator")
        wait_for(lambda: all(tag.encode() in operator.replies for tag in refused) and b"ok2" in operator.replies
                 and b"viewer" in viewer.replies, 30, "answers to every command")
        wait_for(lambda: forged in viewer.acks, 10, "the broker's answer to a forged user")
    finally:
        viewer.close()
    answers = {tag: operator.replies[tag.encode()]["answer"] for tag in refused}
    assert all(not operator.replies[tag.encode()]["success"] for tag in refused), answers
    assert "malformed" in answers["malformed"] and "retained" in answers["retained"]
    assert "expired" in answers["expired"] and "stale" in answers["stale"]
    assert "Expiry" in answers["no_expiry"] and "FLY" in answers["bad_argument"]
    assert "unknown command" in answers["unknown"]
    assert operator.replies[b"ok2"]["success"]
    assert not viewer.replies[b"viewer"]["success"] and "may not command" in viewer.replies[b"viewer"]["answer"]
    assert viewer.acks[forged] == 135  # MQTT 5: not authorized, said by the broker (ACL %u)
    assert requested == [2], "no refused command reached the master"
    wait_for(lambda: len(audits) >= len(refused) + 3, 30, "an audit per command")
    by_user = [(a.user, a.command, a.success) for a in list(audits)]
    assert by_user.count(("operator", "request_state", True)) == 1
    assert ("operator", "reset_faults", True) in by_user and ("viewer", "request_state", False) in by_user
    assert sum(1 for a in list(audits) if not a.success) == len(refused) + 1
    assert all(a.origin == "cloud_bridge" for a in list(audits))
    wait_for(lambda: len(operator.events) >= len(audits), 30, "a command event per audit")
    bridge.stop()
    assert sorted((e["body"]["user"], e["body"]["success"]) for e in operator.events) == \
        sorted((a.user, a.success) for a in list(audits))
    operator.close()
